// panva's oidc-provider 9 for bench/oidc/run.py: the in-memory adapter (its default), one
// confidential client with client_credentials, introspection on. Started by the bench with
// tests/harness/node_modules.
//
//   node oidc-provider.mjs --port 18180 --client-id ID --client-secret S --format opaque|jwt
//
// --format jwt: RFC 9068 access tokens signed with ES256 for the resource
// https://api.bench.invalid (resourceIndicators), like auth-service's; opaque: the provider's
// default, a random handle stored in the adapter.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

// The packages come from the test harness's node_modules (npm ci from its lockfile), which an
// ES module outside tests/harness does not see by itself.
const harness = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "tests", "harness");
const load = async (name) =>
  import(pathToFileURL(createRequire(join(harness, "package.json")).resolve(name)).href);
const jose = await load("jose");
const { default: Provider } = await load("oidc-provider");

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    format: { type: "string", default: "opaque" },
    audience: { type: "string", default: "https://api.bench.invalid" },
  },
});
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const jwt = args.format === "jwt";

async function key(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid: `bench-${alg}`, alg, use: "sig" };
}

const resourceServer = {
  scope: "api:read",
  audience: args.audience,
  accessTokenFormat: "jwt",
  jwt: { sign: { alg: "ES256" } },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args["client-id"],
      client_secret: args["client-secret"],
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "api:read",
    },
  ],
  jwks: { keys: [await key("RS256"), await key("ES256")] },
  scopes: ["api:read"],
  // The same lifetime as auth-service's access tokens (oauth.access_token_ttl_seconds).
  ttl: { ClientCredentials: 900, AccessToken: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: jwt,
      defaultResource: () => args.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => resourceServer,
    },
  },
});
// Errors are the clients' problem in a benchmark: keep the log quiet.
provider.on("server_error", (_ctx, err) => console.error("server_error", err));

provider.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ ready: true, issuer, format: args.format, pid: process.pid }));
});
