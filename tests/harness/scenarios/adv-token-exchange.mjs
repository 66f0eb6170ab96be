// Token exchange (RFC 8693) through oauth4webapi 3's genericTokenEndpointRequest: a
// confidential client takes its own client_credentials token as the subject token and
// exchanges it for a token of another audience; oauth4webapi validates the token response
// (processGenericTokenEndpointResponse). A second exchange for an audience the client's
// policy does not list must be refused with invalid_target.
import * as oauth from 'oauth4webapi';
import { decodeJwt } from 'jose';
import { loopbackOnly, refused, required } from '../lib/oidc.mjs';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

export default async function tokenExchange(options) {
  required(options, 'clientId', 'clientSecret', 'audience', 'scope');
  const issuer = new URL(options.baseUrl);
  const http = { [oauth.allowInsecureRequests]: loopbackOnly(options.baseUrl).length > 0 };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http));
  const client = { client_id: options.clientId };
  const auth = oauth.ClientSecretBasic(options.clientSecret);

  const own = await oauth.processClientCredentialsResponse(
    as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: options.scope }, http),
  );
  const exchange = (audience) => oauth.genericTokenEndpointRequest(as, client, auth, GRANT, {
    subject_token: own.access_token,
    subject_token_type: ACCESS,
    audience,
  }, http);
  const exchanged = await oauth.processGenericTokenEndpointResponse(as, client, await exchange(options.audience));
  const elsewhere = await refused(
    exchange('https://elsewhere.example').then((r) => oauth.processGenericTokenEndpointResponse(as, client, r)),
    'an audience outside the policy',
  );
  return {
    advertised: as.grant_types_supported.includes(GRANT),
    response: { ...exchanged, access_token: undefined },
    claims: decodeJwt(exchanged.access_token),
    elsewhere,
  };
}
