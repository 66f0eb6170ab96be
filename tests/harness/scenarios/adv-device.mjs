// The device authorization grant (RFC 8628) as openid-client 6 does it: the device asks for
// codes with initiateDeviceAuthorization and polls with pollDeviceAuthorizationGrant (which
// honours `interval` and `slow_down`); meanwhile it asks the test to be the user, who enters
// the user code on /device, signs in and allows. Then the ID token is checked and UserInfo
// called, like a code flow's.
import * as client from 'openid-client';
import { discover, expect, required } from '../lib/oidc.mjs';

export default async function device(options, io) {
  required(options, 'baseUrl', 'clientId');
  const config = await discover(options);
  const scope = options.scope ?? 'openid profile email offline_access';
  const started = await client.initiateDeviceAuthorization(config, { scope });
  expect(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(started.user_code), 'an easy user code', started.user_code);
  // Polling starts now, as a device would; the user answers while it waits.
  const polling = client.pollDeviceAuthorizationGrant(config, started);
  polling.catch(() => {}); // awaited below; an early failure must not be unhandled meanwhile
  const user = await io.ask('device', {
    userCode: started.user_code,
    verificationUri: started.verification_uri,
    verificationUriComplete: started.verification_uri_complete,
    expiresIn: started.expires_in,
    interval: started.interval,
  });
  const tokens = await polling;
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return {
    deviceAuthorizationEndpoint: config.serverMetadata().device_authorization_endpoint,
    user,
    interval: started.interval,
    expiresIn: started.expires_in,
    tokenType: tokens.token_type,
    scope: tokens.scope,
    hasRefreshToken: typeof tokens.refresh_token === 'string',
    claims,
    userinfo,
  };
}
