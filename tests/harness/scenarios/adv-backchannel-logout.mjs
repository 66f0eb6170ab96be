// OpenID Connect Back-Channel Logout 1.0 from the relying party's side: a back-channel logout
// endpoint (section 2.5) that validates each logout token as section 2.6 asks, with panva's
// `jose` (signature by the provider's JWKS, the client's ID-token algorithm, `typ`
// logout+jwt, iss, aud, iat, jti never seen before, `events`, sub or sid, no `nonce`), and an
// openid-client relying party that signs in twice: the first session ends by RP-initiated
// logout (buildEndSessionUrl), the second by the test revoking it over the API
// (`io.ask('revoke', { sid })`). The result: the ID tokens' sid and sub, and every logout
// token the endpoint received with its verdict.
import { createServer } from 'node:http';
import * as jose from 'jose';
import { authorize, client, discover, expect, redeem, required } from '../lib/oidc.mjs';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Section 2.6, steps 1 to 10 (as a relying party can check them). */
function validator({ issuer, jwks, clientId, alg, seen }) {
  return async (token) => {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer,
      audience: clientId,
      algorithms: [alg],
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
      requiredClaims: ['iat', 'jti', 'events'],
    });
    const event = payload.events?.[EVENT];
    expect(event !== null && typeof event === 'object' && !Array.isArray(event), 'events lacks the back-channel logout member', payload.events);
    expect(!('nonce' in payload), 'a logout token must not carry nonce');
    expect(typeof payload.sub === 'string' || typeof payload.sid === 'string', 'neither sub nor sid');
    expect(typeof payload.sid === 'string', 'sid is required by this client (backchannel_logout_session_required)');
    expect(!seen.has(payload.jti), 'jti replayed', payload.jti);
    seen.add(payload.jti);
    return { header: protectedHeader, claims: payload };
  };
}

/** The RP's back-channel logout endpoint on loopback: 200 for a valid token, 400 otherwise. */
async function endpoint() {
  const received = [];
  const waiters = [];
  let validate = async () => {
    throw new Error('not ready');
  };
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded');
    const token = form ? new URLSearchParams(body).get('logout_token') : null;
    try {
      expect(req.method === 'POST' && token, 'a form POST with logout_token is expected');
      received.push({ ok: true, ...(await validate(token)) });
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    } catch (error) {
      received.push({ ok: false, error: { name: error.name, code: error.code, message: error.message } });
      res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'invalid_request' }));
    }
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/backchannel-logout`,
    received,
    set validate(fn) {
      validate = fn;
    },
    async until(count, seconds = 20) {
      const deadline = Date.now() + seconds * 1000;
      while (received.length < count) {
        const left = deadline - Date.now();
        expect(left > 0, `expected ${count} logout tokens within ${seconds}s`, received);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, Math.min(left, 500));
        });
      }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

export default async function backchannelLogout(options, io) {
  required(options, 'redirectUri', 'postLogoutRedirectUri');
  const alg = options.alg ?? 'ES256';
  const rp = await endpoint();
  try {
    const { clientId, clientSecret } = await io.ask('client', { backchannelLogoutUri: rp.url, alg });
    const config = await discover({ ...options, clientId, clientSecret, alg });
    const metadata = config.serverMetadata();
    rp.validate = validator({
      issuer: metadata.issuer,
      jwks: jose.createRemoteJWKSet(new URL(metadata.jwks_uri)),
      clientId,
      alg,
      seen: new Set(),
    });
    const sessions = [];
    const signIn = async () => {
      const tokens = await redeem(config, await authorize(config, io, { redirectUri: options.redirectUri, scope: 'openid' }));
      const { sid, sub } = tokens.claims();
      sessions.push({ sid, sub });
      return tokens;
    };

    const first = await signIn();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: first.id_token,
      post_logout_redirect_uri: options.postLogoutRedirectUri,
    });
    await io.ask('browser', { url: url.href });
    await rp.until(1);

    await signIn();
    await io.ask('revoke', { sid: sessions[1].sid });
    await rp.until(2);
    return {
      supported: {
        backchannel_logout_supported: metadata.backchannel_logout_supported,
        backchannel_logout_session_supported: metadata.backchannel_logout_session_supported,
      },
      clientId,
      sessions,
      received: rp.received,
    };
  } finally {
    await rp.close();
  }
}
