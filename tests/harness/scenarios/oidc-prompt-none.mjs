// prompt=none (OIDC Core 3.1.2.1): without a session the answer is login_required at the redirect
// URI, with state and iss as openid-client checks them before it reports the error; after a
// sign-in the same request comes back with a code and no page at all, for the same sign-in
// (auth_time, sid).
import { authorize, discover, describe, redeem, required, summary } from '../lib/oidc.mjs';

export default async function promptNone(options, io) {
  required(options, 'clientId', 'redirectUri');
  const config = await discover(options);
  const silently = { redirectUri: options.redirectUri, params: { prompt: 'none' } };

  const noSession = await authorize(config, io, silently);
  let loginRequired;
  try {
    await redeem(config, noSession);
    throw new Error('prompt=none without a session answered a code');
  } catch (error) {
    loginRequired = describe(error);
  }
  const signedIn = await authorize(config, io, { redirectUri: options.redirectUri });
  const first = await redeem(config, signedIn);
  const silent = await authorize(config, io, silently);
  const second = await redeem(config, silent);
  return {
    loginRequired,
    pages: [noSession.pages, signedIn.pages, silent.pages],
    first: summary(first).claims,
    second: summary(second).claims,
  };
}
