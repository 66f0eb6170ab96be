// An upstream OpenID Connect provider for the federation tests: panva's oidc-provider 9 with
// its development interactions (a login form that takes any login name, then a consent page).
//   node tests/harness/upstream-idp.mjs --port 0 --client-id ID --client-secret S \
//        --redirect-uri URL [--redirect-uri URL ...]
// Prints one JSON line when it listens: {"issuer": "http://127.0.0.1:<port>"}; runs until killed.
// The account of login name L: sub L, email L (or L@upstream.test), email_verified true
// unless L starts with "unverified", name "Upstream L".
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

function options(argv) {
  const found = { redirectUri: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (key === 'redirectUri') found.redirectUri.push(argv[i + 1]);
    else found[key] = argv[i + 1];
  }
  return found;
}

const opts = options(process.argv.slice(2));

function account(login) {
  const email = login.includes('@') ? login : `${login}@upstream.test`;
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        email,
        email_verified: !login.startsWith('unverified'),
        name: `Upstream ${login.split('@')[0]}`,
      };
    },
  };
}

const server = createServer();
await new Promise((resolve) => server.listen(Number(opts.port ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: opts.clientId,
      client_secret: opts.clientSecret,
      redirect_uris: opts.redirectUri,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Every claim in the ID token too, so the test sees mapping without userinfo as well.
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => account(sub),
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['upstream-idp-test-only-cookie-key'] },
  async loadExistingGrant(ctx) {
    // First party for the test: the consent is implied, no extra page.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (_ctx, error) => process.stderr.write(`${error.stack}\n`));
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
