// Pushed authorization requests (RFC 9126) as openid-client does them: `start` pushes the
// request with buildAuthorizationUrlWithPAR and returns the browser URL (the test signs in);
// `finish` redeems the callback (state, nonce, PKCE, ID token checks) and calls userinfo.
import * as client from 'openid-client';

export async function configuration({ baseUrl, clientId, clientSecret, auth }) {
  return client.discovery(new URL(baseUrl), clientId, clientSecret, auth, {
    execute: [client.allowInsecureRequests],
  });
}

export async function start(config, { redirectUri, scope = 'openid email' }) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, verifier, state, nonce };
}

export async function finish(config, { callback, verifier, state, nonce }, options = {}) {
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce },
    undefined,
    options,
  );
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, options);
  return { sub: claims.sub, tokenType: tokens.token_type, userinfo, tokens };
}

export default async function adv(options) {
  const config = await configuration({ ...options, auth: client.ClientSecretBasic(options.clientSecret) });
  if (options.step === 'start') {
    const started = await start(config, options);
    return { ...started, parEndpoint: config.serverMetadata().pushed_authorization_request_endpoint };
  }
  const { sub, tokenType, userinfo } = await finish(config, options);
  return { sub, tokenType, userinfo };
}
