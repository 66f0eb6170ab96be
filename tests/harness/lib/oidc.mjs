// What the OpenID Connect scenarios share: a relying party on openid-client 6 that discovers the
// provider, sends the browser (the test's Playwright, through `io.ask('browser')`) to the
// authorization endpoint, and redeems the answer with every check the library has.
//
// http is allowed to loopback addresses only (`allowInsecureRequests` for 127.0.0.1, localhost,
// [::1]); any other plain-http URL is refused before a request is made.
import * as client from 'openid-client';
import { decodeProtectedHeader } from 'jose';

export const DEFAULT_SCOPE = 'openid profile email offline_access';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function usage(message) {
  return Object.assign(new Error(message), { name: 'UsageError' });
}

/** Fail with a usage error unless every named option was given. */
export function required(options, ...names) {
  for (const name of names) {
    if (typeof options[name] !== 'string') {
      throw usage(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
    }
  }
}

/** A check of the scenario itself: fails it with `message` unless `condition`. */
export function expect(condition, message, details) {
  if (!condition) {
    const suffix = details === undefined ? '' : `: ${JSON.stringify(details)}`;
    throw Object.assign(new Error(`${message}${suffix}`), { name: 'ExpectationFailed' });
  }
}

/** The library extensions that allow plain http, for a loopback URL only. */
export function loopbackOnly(url) {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'https:') return [];
  if (protocol === 'http:' && LOOPBACK.has(hostname)) return [client.allowInsecureRequests];
  throw usage(`plain http is allowed to loopback addresses only, not ${hostname}`);
}

/** openid-client's Configuration for a registered client, from discovery. A confidential
 *  client authenticates with client_secret_basic, a public one with none. ID tokens are
 *  verified against the JWKS too (`enableNonRepudiationChecks`: by default openid-client
 *  trusts the TLS connection to the token endpoint and checks the claims only). */
export async function discover({ baseUrl, clientId, clientSecret, alg = 'RS256', tamper }) {
  const auth = clientSecret ? client.ClientSecretBasic(clientSecret) : client.None();
  return client.discovery(
    new URL(baseUrl),
    clientId,
    { id_token_signed_response_alg: alg },
    auth,
    {
      execute: [...loopbackOnly(baseUrl), client.enableNonRepudiationChecks],
      ...(tamper === 'id-token-signature' ? { [client.customFetch]: flippingIdTokenSignatures } : {}),
    },
  );
}

/** A man in the middle of the token endpoint, for proving the checks are on: one bit of
 *  every ID token's signature flipped on its way to the library. */
async function flippingIdTokenSignatures(url, options) {
  const response = await fetch(url, options);
  const body = response.headers.get('content-type')?.startsWith('application/json') ? await response.clone().json() : {};
  if (typeof body.id_token !== 'string') return response;
  const [header, payload, signature] = body.id_token.split('.');
  const raw = Buffer.from(signature, 'base64url');
  raw[raw.length >> 1] ^= 0x01;
  body.id_token = [header, payload, raw.toString('base64url')].join('.');
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(JSON.stringify(body), { status: response.status, headers });
}

/** Send the browser to the authorization endpoint with PKCE (S256), state and (unless
 *  `nonce: false`) a nonce; what came back to the redirect URI, with what to check it by. */
export async function authorize(config, io, { redirectUri, scope = DEFAULT_SCOPE, nonce = true, params = {} }) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const expectedNonce = nonce ? client.randomNonce() : undefined;
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(expectedNonce ? { nonce: expectedNonce } : {}),
    ...params,
  });
  const trip = await io.ask('browser', { url: url.href });
  return { callback: new URL(trip.url), pages: trip.pages, verifier, state, nonce: expectedNonce };
}

/** The authorization code grant with openid-client's checks: state, iss (RFC 9207), PKCE,
 *  the ID token (signature by the JWKS, alg, iss, aud, exp, iat, nonce present exactly when
 *  sent, auth_time against `maxAge`). */
export function redeem(config, auth, { maxAge } = {}) {
  return client.authorizationCodeGrant(config, auth.callback, {
    pkceCodeVerifier: auth.verifier,
    expectedState: auth.state,
    expectedNonce: auth.nonce,
    idTokenExpected: true,
    ...(maxAge === undefined ? {} : { maxAge }),
  });
}

/** What the tests assert on about a token response (the tokens themselves included). */
export function summary(tokens) {
  const out = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
  };
  if (tokens.id_token) {
    out.id_token = tokens.id_token;
    out.id_token_header = decodeProtectedHeader(tokens.id_token);
    out.claims = tokens.claims();
  }
  return out;
}

/** The RFC error (or library check) a refused call ended with. */
export function describe(error) {
  const out = { name: error?.name, code: error?.code, message: error?.message };
  for (const key of ['error', 'error_description', 'status']) {
    if (error?.[key] !== undefined && typeof error[key] !== 'object') out[key] = error[key];
  }
  // WWWAuthenticateChallengeError: the error is in the Bearer challenge (RFC 6750 section 3).
  if (Array.isArray(error?.cause)) {
    const challenge = error.cause.find((c) => c.scheme === 'bearer') ?? error.cause[0];
    if (challenge?.parameters?.error) out.error = challenge.parameters.error;
  }
  return out;
}

/** `promise` must fail: how. */
export async function refused(promise, what) {
  try {
    await promise;
  } catch (error) {
    return describe(error);
  }
  throw Object.assign(new Error(`${what} was expected to be refused and was not`), { name: 'ExpectationFailed' });
}

export { client };
