"""OAuth 2.1 authorization server and OpenID Connect provider (docs/oidc.md).

Modules are named after what they implement (``rfc7636`` PKCE, ``rfc7662`` introspection,
...). Grant types (``grants``) and client-authentication methods (``client_auth``) are
registries: a new one is a module, advertised in discovery from the registry.
"""
