// Refresh with rotation, then reuse detection, as openid-client sees them: a refresh gives a new
// refresh token and a new ID token (same subject, same auth_time, no nonce); the old refresh
// token replayed is refused, and so is the rotated one after it (the whole grant is revoked),
// and the grant's last access token is inactive at introspection and refused by UserInfo.
import { authorize, client, discover, redeem, refused, required, summary } from '../lib/oidc.mjs';

export default async function refresh(options, io) {
  required(options, 'clientId', 'clientSecret', 'redirectUri');
  const config = await discover(options);
  const auth = await authorize(config, io, { redirectUri: options.redirectUri });
  const first = await redeem(config, auth);
  const rotated = await client.refreshTokenGrant(config, first.refresh_token);
  const sub = first.claims().sub;
  const beforeReuse = await client.tokenIntrospection(config, rotated.access_token);
  const replayed = await refused(client.refreshTokenGrant(config, first.refresh_token), 'the spent refresh token');
  const afterReuse = await refused(client.refreshTokenGrant(config, rotated.refresh_token), 'the rotated refresh token');
  return {
    first: summary(first),
    rotated: summary(rotated),
    beforeReuse,
    replayed,
    afterReuse,
    accessAfterReuse: await client.tokenIntrospection(config, rotated.access_token),
    refreshAfterReuse: await client.tokenIntrospection(config, rotated.refresh_token),
    userinfoAfterReuse: await refused(client.fetchUserInfo(config, rotated.access_token, sub), 'UserInfo'),
  };
}
