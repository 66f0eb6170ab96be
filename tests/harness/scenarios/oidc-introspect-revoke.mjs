// Introspection (RFC 7662) and revocation (RFC 7009) as openid-client calls them: both tokens of
// a grant are active; a revoked access token is inactive and refused by UserInfo while the grant
// refreshes on; a revoked refresh token ends the grant: its tokens are inactive and it refreshes
// no more.
import { authorize, client, discover, redeem, refused, required } from '../lib/oidc.mjs';

export default async function introspectRevoke(options, io) {
  required(options, 'clientId', 'clientSecret', 'redirectUri');
  const config = await discover(options);
  const auth = await authorize(config, io, { redirectUri: options.redirectUri });
  const tokens = await redeem(config, auth);
  const sub = tokens.claims().sub;
  const introspect = (token, hint) =>
    client.tokenIntrospection(config, token, hint ? { token_type_hint: hint } : undefined);
  const active = {
    access: await introspect(tokens.access_token),
    refresh: await introspect(tokens.refresh_token, 'refresh_token'),
  };
  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
  const accessRevoked = {
    access: await introspect(tokens.access_token),
    userinfo: await refused(client.fetchUserInfo(config, tokens.access_token, sub), 'UserInfo'),
    refresh: await introspect(tokens.refresh_token),
  };
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  await client.tokenRevocation(config, refreshed.refresh_token);
  const refreshRevoked = {
    access: await introspect(refreshed.access_token),
    refresh: await introspect(refreshed.refresh_token, 'refresh_token'),
    refreshGrant: await refused(client.refreshTokenGrant(config, refreshed.refresh_token), 'a revoked refresh token'),
  };
  // Revoking what is already revoked, or nothing we know, is still a success (section 2.2).
  await client.tokenRevocation(config, refreshed.refresh_token);
  await client.tokenRevocation(config, 'not-a-token-of-ours');
  return { sub, active, accessRevoked, refreshed: Boolean(refreshed.access_token), refreshRevoked };
}
