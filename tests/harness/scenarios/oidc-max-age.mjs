// max_age (OIDC Core 3.1.2.1): a sign-in older than max_age is repeated, and the ID token's
// auth_time says so (openid-client checks auth_time against maxAge); a sign-in young enough is
// not repeated, and auth_time stays.
import { authorize, discover, redeem, required } from '../lib/oidc.mjs';

export default async function maxAge(options, io) {
  required(options, 'clientId', 'redirectUri');
  const config = await discover(options);
  const first = await redeem(config, await authorize(config, io, { redirectUri: options.redirectUri }));
  // auth_time counts whole seconds: wait until the first sign-in is more than a second old.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const old = await authorize(config, io, { redirectUri: options.redirectUri, params: { max_age: '1' } });
  const again = await redeem(config, old, { maxAge: 1 });
  const young = await authorize(config, io, { redirectUri: options.redirectUri, params: { max_age: '3600' } });
  const kept = await redeem(config, young, { maxAge: 3600 });
  return {
    pages: [old.pages, young.pages],
    authTimes: [first.claims().auth_time, again.claims().auth_time, kept.claims().auth_time],
  };
}
