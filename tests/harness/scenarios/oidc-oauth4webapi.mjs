// The same provider through oauth4webapi 3's lower-level calls, for a public client (`none`
// client authentication, PKCE alone; `--client-secret` makes it client_secret_basic): discovery;
// the authorization response validated (state, iss); the code exchanged
// and the ID token checked (claims, nonce, and its signature against the JWKS); UserInfo;
// refresh with rotation; revocation, after which the refresh token is refused.
import * as oauth from 'oauth4webapi';
import { loopbackOnly, refused, required } from '../lib/oidc.mjs';

export default async function oauth4webapi(options, io) {
  required(options, 'clientId', 'redirectUri');
  const issuer = new URL(options.baseUrl);
  const http = { [oauth.allowInsecureRequests]: loopbackOnly(options.baseUrl).length > 0 };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http));
  const client = { client_id: options.clientId, id_token_signed_response_alg: options.alg ?? 'RS256' };
  const auth = options.clientSecret ? oauth.ClientSecretBasic(options.clientSecret) : oauth.None();

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  for (const [name, value] of Object.entries({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: options.redirectUri,
    scope: 'openid email offline_access',
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(name, value);
  }
  const trip = await io.ask('browser', { url: url.href });
  const params = oauth.validateAuthResponse(as, client, new URL(trip.url), state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, auth, params, options.redirectUri, verifier, http,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: nonce,
    requireIdToken: true,
  });
  await oauth.validateApplicationLevelSignature(as, response, http);
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  const userinfo = await oauth.processUserInfoResponse(
    as, client, claims.sub, await oauth.userInfoRequest(as, client, tokens.access_token, http),
  );
  const refreshed = await oauth.processRefreshTokenResponse(
    as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, http),
  );
  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, http),
  );
  const afterRevocation = await refused(
    oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, http)
      .then((r) => oauth.processRefreshTokenResponse(as, client, r)),
    'a revoked refresh token',
  );
  return {
    pages: trip.pages,
    issuer: as.issuer,
    claims,
    userinfo,
    rotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshedClaims: oauth.getValidatedIdTokenClaims(refreshed) ?? null,
    afterRevocation,
  };
}
