// A browser app signing in through auth-service as a PUBLIC client (no secret): authorization
// code + PKCE with oauth4webapi, then UserInfo with the access token. Tokens stay in this
// page's memory; only the one-time PKCE verifier, state and nonce wait in sessionStorage for
// the redirect back.
import * as oauth from "/vendor/oauth4webapi.js";

const $ = (id) => document.getElementById(id);
const config = await (await fetch("/config.json")).json();
const issuer = new URL(config.issuer);
const client = { client_id: config.client_id };
const clientAuth = oauth.None();
// oauth4webapi refuses http:// endpoints unless told; only for a loopback development issuer.
const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
const options = issuer.protocol === "http:" && loopback ? { [oauth.allowInsecureRequests]: true } : {};

function show(status) {
  $("status").textContent = status;
}

async function discover() {
  const response = await oauth.discoveryRequest(issuer, { ...options, algorithm: "oidc" });
  return oauth.processDiscoveryResponse(issuer, response);
}

async function signIn(as) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  sessionStorage.setItem("pkce", JSON.stringify({ verifier, state, nonce }));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  location.assign(url);
}

async function callback(as) {
  const pending = JSON.parse(sessionStorage.getItem("pkce") || "null");
  sessionStorage.removeItem("pkce");
  if (!pending) throw new Error("no sign-in was started from this tab");
  // Checks state and iss (RFC 9207), and that the response is no error.
  const params = oauth.validateAuthResponse(as, client, new URL(location.href), pending.state);
  history.replaceState(null, "", "/");
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, clientAuth, params, config.redirect_uri, pending.verifier, options,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: pending.nonce,
    requireIdToken: true,
  });
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  const userinfo = await oauth.processUserInfoResponse(
    as, client, claims.sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, options),
  );
  $("name").textContent = userinfo.name ?? "(no name)";
  $("email").textContent = userinfo.email ?? "(no email)";
  $("sub").textContent = userinfo.sub;
  $("profile").hidden = false;
  $("sign-out").hidden = false;
  show("Signed in.");
}

try {
  const as = await discover();
  $("sign-in").addEventListener("click", () => signIn(as));
  $("sign-out").addEventListener("click", () => location.assign("/"));
  if (location.pathname === "/callback") {
    await callback(as);
  } else {
    show("You are not signed in.");
    $("sign-in").hidden = false;
  }
} catch (error) {
  show(`Sign-in failed: ${error.message}`);
  console.error(error);
}
