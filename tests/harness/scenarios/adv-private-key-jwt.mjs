// private_key_jwt (RFC 7523) as openid-client does it, with a key made here by jose:
// `keys` makes the client's key pair (the test registers the public JWK Set with the CLI);
// `start` / `finish` run a code flow with a pushed request, every request to the server
// authenticated with PrivateKeyJwt; `negatives` tries client_credentials with a good
// assertion, then a replayed jti, a wrong aud, an expired one and an unknown kid, and
// returns each outcome.
import * as client from 'openid-client';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import { finish, start } from './adv-par.mjs';

async function configuration({ baseUrl, clientId, privateJwk }, options) {
  const jwk = JSON.parse(privateJwk);
  const key = await importJWK(jwk, 'ES256');
  return client.discovery(
    new URL(baseUrl),
    clientId,
    undefined,
    client.PrivateKeyJwt({ key, kid: jwk.kid }, options),
    { execute: [client.allowInsecureRequests] },
  );
}

async function outcome(promise) {
  try {
    const tokens = await promise;
    return { ok: true, tokenType: tokens.token_type };
  } catch (error) {
    // A 401 with a challenge is a WWWAuthenticateChallengeError: the RFC error is in its body.
    const body = error.error || !error.response ? error : await error.response.json().catch(() => ({}));
    return { ok: false, error: body.error ?? error.code, status: error.status, description: body.error_description };
  }
}

async function negatives(options) {
  const fixedJti = `jti-${Date.now()}`;
  const tamper = (change) => ({ [client.modifyAssertion]: (_header, payload) => Object.assign(payload, change) });
  const results = {};
  results.good = await outcome(client.clientCredentialsGrant(await configuration(options)));
  const replaying = await configuration(options, tamper({ jti: fixedJti }));
  results.firstUse = await outcome(client.clientCredentialsGrant(replaying));
  results.replayed = await outcome(client.clientCredentialsGrant(replaying));
  results.wrongAud = await outcome(
    client.clientCredentialsGrant(await configuration(options, tamper({ aud: 'https://attacker.example' }))),
  );
  const past = Math.floor(Date.now() / 1000) - 600;
  results.expired = await outcome(
    client.clientCredentialsGrant(await configuration(options, tamper({ iat: past - 60, nbf: past - 60, exp: past }))),
  );
  const unknownKid = { ...JSON.parse(options.privateJwk), kid: 'not-registered' };
  results.unknownKid = await outcome(
    client.clientCredentialsGrant(await configuration({ ...options, privateJwk: JSON.stringify(unknownKid) })),
  );
  return results;
}

export default async function adv(options) {
  if (options.step === 'keys') {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = `k-${Date.now()}`;
    const pub = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'ES256' };
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
    return { jwks: { keys: [pub] }, privateJwk: JSON.stringify(priv) };
  }
  if (options.step === 'negatives') return negatives(options);
  const config = await configuration(options);
  if (options.step === 'start') return start(config, options);
  const { sub, tokenType, userinfo } = await finish(config, options);
  return { sub, tokenType, userinfo };
}
