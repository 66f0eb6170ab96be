// DPoP (RFC 9449) at the JSON API (/v1) with oauth4webapi 3: the client signs in at
// POST /v1/auth/login with a proof by its own key (made with jose: oauth4webapi proves only
// token and resource requests), then calls GET /v1/users/me through
// `protectedResourceRequest` with a DPoP handle of the same key. The same token without
// DPoP is refused, and oauth4webapi parses the challenge (both schemes). Returned by name.
import * as oauth from 'oauth4webapi';
import { SignJWT, exportJWK } from 'jose';
import { required } from '../lib/oidc.mjs';

async function loginProof(keyPair, htu) {
  const claims = { htm: 'POST', htu, jti: crypto.randomUUID(), iat: Math.floor(Date.now() / 1000) };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .sign(keyPair.privateKey);
}

export default async function apiDpop(options) {
  required(options, 'email', 'password');
  const keyPair = await oauth.generateKeyPair('ES256');
  const loginUrl = `${options.baseUrl}/v1/auth/login`;
  const login = await fetch(loginUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: await loginProof(keyPair, loginUrl) },
    body: JSON.stringify({ email: options.email, password: options.password }),
  });
  const tokens = await login.json();
  if (login.status !== 200) throw new Error(`sign-in refused: ${login.status} ${JSON.stringify(tokens)}`);
  const DPoP = oauth.DPoP({ client_id: 'auth-service-json-api' }, keyPair);
  const http = { [oauth.allowInsecureRequests]: true, DPoP };
  const meUrl = new URL(`${options.baseUrl}/v1/users/me`);
  const me = await oauth.protectedResourceRequest(tokens.access_token, 'GET', meUrl, new Headers(), null, http);
  const results = { tokenType: tokens.token_type, meStatus: me.status, me: await me.json() };
  try {
    await oauth.protectedResourceRequest(tokens.access_token, 'GET', meUrl, new Headers(), null, {
      [oauth.allowInsecureRequests]: true,
    });
    results.asBearer = { refused: false };
  } catch (error) {
    results.asBearer = {
      refused: error instanceof oauth.WWWAuthenticateChallengeError,
      status: error.response?.status,
      challenges: error.cause,
    };
  }
  return results;
}
