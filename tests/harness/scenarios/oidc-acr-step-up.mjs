// acr step-up (OIDC Core 3.1.2.1 acr_values, 2 acr/amr): a user signed in with a password
// (acr aal1) sets up an authenticator app (`ask('enrol-totp')`); the client asks for the aal2
// value the provider advertises in acr_values_supported, and the browser is asked for the second
// step only. openid-client validates the ID token; the relying party then checks acr and amr as
// it must (acr_values is a voluntary claim: the provider says what it reached). A second request
// for aal2 is answered without a page. `--enrol no` skips the app: aal2 cannot be reached.
import { authorize, discover, expect, redeem, required } from '../lib/oidc.mjs';

export default async function acrStepUp(options, io) {
  required(options, 'clientId', 'redirectUri');
  const wanted = options.acr ?? 'aal2';
  const config = await discover(options);
  const advertised = config.serverMetadata().acr_values_supported ?? [];
  expect(advertised.includes(wanted), `${wanted} is not in acr_values_supported`, advertised);
  const signIn = await authorize(config, io, { redirectUri: options.redirectUri });
  const first = (await redeem(config, signIn)).claims();
  if (options.enrol !== 'no') await io.ask('enrol-totp');
  const params = { acr_values: wanted };
  const stepUp = await authorize(config, io, { redirectUri: options.redirectUri, params });
  const stepped = (await redeem(config, stepUp)).claims();
  const again = await authorize(config, io, { redirectUri: options.redirectUri, params });
  const kept = (await redeem(config, again)).claims();
  const reached = (claims) => ({
    acr: claims.acr,
    amr: claims.amr,
    auth_time: claims.auth_time,
    sid: claims.sid,
    satisfied: claims.acr === wanted,
  });
  return {
    advertised,
    pages: [signIn.pages, stepUp.pages, again.pages],
    claims: [reached(first), reached(stepped), reached(kept)],
  };
}
