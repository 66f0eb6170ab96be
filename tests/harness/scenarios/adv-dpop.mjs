// DPoP (RFC 9449) as openid-client does it (getDPoPHandle over oauth4webapi): a public
// client's code flow (`start` pushes the request, `finish` redeems it) with a DPoP key; the
// tokens come back bound, userinfo and a refresh work with the same handle; then the server
// must refuse the bound access token as Bearer, a proof by another key, a replayed proof, a
// proof for another URL and a stale one. Each outcome is returned by name.
import * as client from 'openid-client';
import { SignJWT, exportJWK } from 'jose';
import { start } from './adv-par.mjs';

async function configuration({ baseUrl, clientId }) {
  return client.discovery(new URL(baseUrl), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
}

async function outcome(promise) {
  try {
    const value = await promise;
    return { ok: true, value };
  } catch (error) {
    const body = error.error || !error.response ? error : await error.response.json().catch(() => ({}));
    return { ok: false, status: error.status, error: body.error ?? error.code, description: body.error_description };
  }
}

// A proof made by hand with the holder's key, for the cases openid-client never produces.
async function handProof(keyPair, { htm, htu, token, iat, nonce }) {
  const ath = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))).toString('base64url');
  return new SignJWT({ htm, htu, ath, jti: crypto.randomUUID(), iat, ...(nonce ? { nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .sign(keyPair.privateKey);
}

async function rawUserinfo(url, token, proof) {
  const response = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
  const body = await response.json().catch(() => ({}));
  return {
    status: response.status,
    error: body.error,
    challenge: response.headers.get('www-authenticate'),
    nonce: response.headers.get('dpop-nonce'),
  };
}

async function finish(config, options) {
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(options.callback),
    { pkceCodeVerifier: options.verifier, expectedState: options.state, expectedNonce: options.nonce },
    undefined,
    { DPoP },
  );
  const sub = tokens.claims().sub;
  const token = tokens.access_token;
  const userinfoUrl = config.serverMetadata().userinfo_endpoint;
  const results = { sub, tokenType: tokens.token_type };
  results.userinfo = await outcome(client.fetchUserInfo(config, token, sub, { DPoP }));
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  results.refreshedTokenType = refreshed.token_type;
  results.refreshedUserinfo = await outcome(client.fetchUserInfo(config, refreshed.access_token, sub, { DPoP }));
  // The negatives, on the refreshed token.
  const fresh = refreshed.access_token;
  results.asBearer = await outcome(client.fetchUserInfo(config, fresh, sub));
  const other = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  results.otherKey = await outcome(client.fetchUserInfo(config, fresh, sub, { DPoP: other }));
  const now = Math.floor(Date.now() / 1000);
  // A server that wants nonces says so (and gives one) to a proof without.
  const probe = await rawUserinfo(userinfoUrl, fresh, await handProof(keyPair, { htm: 'GET', htu: userinfoUrl, token: fresh, iat: now }));
  results.nonceAsked = probe.error === 'use_dpop_nonce';
  const nonce = probe.nonce ?? undefined;
  const proof = await handProof(keyPair, { htm: 'GET', htu: userinfoUrl, token: fresh, iat: now, nonce });
  results.firstUse = await rawUserinfo(userinfoUrl, fresh, proof);
  results.replayed = await rawUserinfo(userinfoUrl, fresh, proof);
  results.wrongHtu = await rawUserinfo(
    userinfoUrl,
    fresh,
    await handProof(keyPair, { htm: 'GET', htu: `${options.baseUrl}/v1/users/me`, token: fresh, iat: now, nonce }),
  );
  results.staleIat = await rawUserinfo(
    userinfoUrl,
    fresh,
    await handProof(keyPair, { htm: 'GET', htu: userinfoUrl, token: fresh, iat: now - 3600, nonce }),
  );
  const otherRefresh = await outcome(client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: other }));
  results.refreshOtherKey = otherRefresh;
  return results;
}

export default async function adv(options) {
  const config = await configuration(options);
  if (options.step === 'start') return start(config, options);
  return finish(config, options);
}
