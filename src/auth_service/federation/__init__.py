"""Upstream identity providers: connectors (OpenID Connect and presets), the relying-party
side of the authorization code flow, and the identities linked to local accounts."""
