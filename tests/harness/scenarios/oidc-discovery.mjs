// Discovery as both libraries do it: openid-client's `discovery` (OpenID Provider metadata,
// issuer checked against the URL it was given) and oauth4webapi's for both well-known documents
// (OpenID Connect Discovery and RFC 8414); the metadata, and the JWKS it points to.
import * as oauth from 'oauth4webapi';
import { discover, expect, loopbackOnly, required } from '../lib/oidc.mjs';

export default async function discovery(options) {
  required(options, 'clientId');
  const config = await discover(options);
  const metadata = config.serverMetadata();
  const issuer = new URL(options.baseUrl);
  const http = { [oauth.allowInsecureRequests]: loopbackOnly(options.baseUrl).length > 0 };
  const documents = {};
  for (const algorithm of ['oidc', 'oauth2']) {
    const response = await oauth.discoveryRequest(issuer, { ...http, algorithm });
    documents[algorithm] = await oauth.processDiscoveryResponse(issuer, response);
  }
  expect(
    JSON.stringify(documents.oidc) === JSON.stringify(documents.oauth2),
    'openid-configuration and oauth-authorization-server differ',
  );
  const jwks = await (await fetch(metadata.jwks_uri)).json();
  return { metadata, jwks };
}
