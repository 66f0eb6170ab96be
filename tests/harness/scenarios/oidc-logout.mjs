// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) through openid-client's
// buildEndSessionUrl: with the ID token as id_token_hint the browser is signed out at once and
// sent to the post_logout_redirect_uri with state; without a hint the user confirms first.
// Afterwards the grant of the session (no refresh token) is inactive, and prompt=none answers
// login_required.
import { authorize, client, describe, discover, redeem, required } from '../lib/oidc.mjs';

export default async function logout(options, io) {
  required(options, 'clientId', 'clientSecret', 'redirectUri', 'postLogoutRedirectUri');
  const config = await discover(options);
  const tokens = await redeem(config, await authorize(config, io, { redirectUri: options.redirectUri, scope: 'openid profile' }));
  const before = await client.tokenIntrospection(config, tokens.access_token);
  const state = client.randomState();
  const url = client.buildEndSessionUrl(config, {
    post_logout_redirect_uri: options.postLogoutRedirectUri,
    state,
    ...(options.hint === 'no' ? {} : { id_token_hint: tokens.id_token }),
  });
  const trip = await io.ask('browser', { url: url.href });
  const after = await client.tokenIntrospection(config, tokens.access_token);
  let silent;
  try {
    await redeem(config, await authorize(config, io, { redirectUri: options.redirectUri, params: { prompt: 'none' } }));
  } catch (error) {
    silent = describe(error);
  }
  return { hasRefreshToken: 'refresh_token' in tokens, before, trip, sentState: state, after, silent };
}
