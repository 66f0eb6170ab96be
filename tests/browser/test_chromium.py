"""The browser test tools work here: Chromium, axe-core and a virtual WebAuthn authenticator."""

from __future__ import annotations

import json

from playwright.async_api import Page

from tests.support.axe import axe_violations
from tests.support.live_server import LiveServer
from tests.support.net import free_port
from tests.support.webauthn_virtual import add_virtual_authenticator

FORM = """<!doctype html><html lang="en"><head><title>Sign in</title></head>
<body><main><h1>Sign in</h1><form>{field}<button>Sign in</button></form></main></body></html>"""


async def _serve(page: Page, html: str) -> None:
    """Open ``html`` as a page served with our CSP: no inline or foreign script, as axe meets it."""
    url = f"http://localhost:{free_port()}/"
    headers = {"Content-Security-Policy": "default-src 'self'"}
    await page.route(
        url, lambda route: route.fulfill(content_type="text/html", headers=headers, body=html)
    )
    await page.goto(url)


async def test_axe_finds_an_unlabeled_input_and_passes_the_labeled_one(page: Page) -> None:
    await _serve(page, FORM.format(field='<input name="email" type="email">'))
    assert "label" in {v["id"] for v in await axe_violations(page)}

    labeled = '<label for="email">Email</label><input id="email" name="email" type="email">'
    await _serve(page, FORM.format(field=labeled))
    assert await axe_violations(page) == []


async def test_chromium_reads_the_live_servers_jwks(page: Page, live_server: LiveServer) -> None:
    response = await page.goto(f"{live_server.url}/.well-known/jwks.json")
    assert response is not None
    assert response.ok
    jwks = json.loads(await page.locator("body").inner_text())
    assert {"ES256", "RS256"} <= {key["alg"] for key in jwks["keys"]}


CREATE_PASSKEY = """async () => {
  const credential = await navigator.credentials.create({ publicKey: {
    challenge: new TextEncoder().encode("a test challenge, never reused"),
    rp: { id: "localhost", name: "auth-service tests" },
    user: { id: new Uint8Array([1, 2, 3, 4]), name: "ada@example.com", displayName: "Ada" },
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
  }});
  return { type: credential.type, id: credential.id,
           attachment: credential.authenticatorAttachment };
}"""


async def test_virtual_authenticator_creates_a_passkey_on_localhost(page: Page) -> None:
    # WebAuthn needs a secure context with a domain: http://localhost is one.
    await _serve(page, "<!doctype html><title>relying party</title>")
    authenticator = await add_virtual_authenticator(page)

    credential = await page.evaluate(CREATE_PASSKEY)

    assert credential["type"] == "public-key"
    assert credential["attachment"] == "platform"
    [stored] = await authenticator.credentials()
    assert stored["rpId"] == "localhost"
    assert stored["isResidentCredential"] is True
