// An access token verified the way a resource server would, with panva's jose and nothing but
// our JWKS: signature (ES256 only), issuer, audience and the RFC 9068 `typ` of `at+jwt`.
import { createRemoteJWKSet, jwtVerify } from 'jose';

export default async function verifyAccessToken({ baseUrl, token, issuer, audience = 'auth-service' }) {
  if (!token) throw Object.assign(new Error('--token is required'), { name: 'UsageError' });
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', baseUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: issuer ?? baseUrl,
    audience,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  return { claims: payload, header: protectedHeader };
}
