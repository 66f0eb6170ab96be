// The authorization code flow as openid-client runs it: discovery, PKCE (S256), state, nonce;
// the ID token validated for the client's registered algorithm (`--alg`, RS256 or ES256);
// then UserInfo, whose `sub` must be the ID token's.
// `--nonce no` sends none: openid-client then requires the ID token to carry none.
// `--tamper id-token-signature` flips a bit of the ID token's signature on its way to the library.
import { authorize, client, discover, redeem, required, summary } from '../lib/oidc.mjs';

export default async function codeFlow(options, io) {
  required(options, 'clientId', 'redirectUri');
  const config = await discover(options);
  const auth = await authorize(config, io, {
    redirectUri: options.redirectUri,
    nonce: options.nonce !== 'no',
  });
  const tokens = await redeem(config, auth);
  const result = summary(tokens);
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, result.claims.sub);
  return {
    pages: auth.pages,
    callback: Object.fromEntries(auth.callback.searchParams),
    sentNonce: auth.nonce ?? null,
    tokens: result,
    userinfo,
  };
}
