// The client credentials grant (RFC 6749 section 4.4) by openid-client: an access token for the
// client itself, verified as a resource server would (jose, our JWKS, typ at+jwt), active at
// introspection with the client as subject; no refresh token, no ID token; user scopes refused.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { client, discover, refused, required } from '../lib/oidc.mjs';

export default async function clientCredentials(options) {
  required(options, 'clientId', 'clientSecret', 'scope');
  const config = await discover(options);
  const tokens = await client.clientCredentialsGrant(config, { scope: options.scope });
  const { issuer, jwks_uri: jwksUri } = config.serverMetadata();
  const { payload, protectedHeader } = await jwtVerify(
    tokens.access_token,
    createRemoteJWKSet(new URL(jwksUri)),
    { issuer, audience: options.clientId, typ: 'at+jwt' },
  );
  return {
    response: {
      token_type: tokens.token_type,
      scope: tokens.scope,
      expires_in: tokens.expiresIn(),
      has_refresh_token: 'refresh_token' in tokens,
      has_id_token: 'id_token' in tokens,
    },
    header: protectedHeader,
    claims: payload,
    introspection: await client.tokenIntrospection(config, tokens.access_token),
    userScope: await refused(client.clientCredentialsGrant(config, { scope: 'openid' }), 'a user scope'),
  };
}
