"""A virtual WebAuthn authenticator in Chromium (DevTools protocol), for passkey tests.

    authenticator = await add_virtual_authenticator(page)
    await page.goto("http://localhost:8000/account")  # a secure context: localhost, not an IP

WebAuthn needs a secure context and a domain for the RP ID: serve the page from
``http://localhost:<port>``; ``127.0.0.1`` is secure but an IP address is no valid RP ID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.async_api import CDPSession, Page


@dataclass(frozen=True)
class VirtualAuthenticator:
    id: str
    cdp: CDPSession

    async def credentials(self) -> list[dict[str, Any]]:
        """The credentials it holds (``credentialId``, ``rpId``, ``userHandle``, ``signCount``)."""
        reply = await self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(reply["credentials"])

    async def set_user_verified(self, verified: bool) -> None:
        await self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": verified}
        )


async def add_virtual_authenticator(
    page: Page,
    *,
    protocol: str = "ctap2",
    transport: str = "internal",
    has_resident_key: bool = True,
    has_user_verification: bool = True,
    is_user_verified: bool = True,
) -> VirtualAuthenticator:
    """Attach an authenticator that answers every ceremony of ``page`` without a prompt."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    reply = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": protocol,
                "transport": transport,
                "hasResidentKey": has_resident_key,
                "hasUserVerification": has_user_verification,
                "isUserVerified": is_user_verified,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualAuthenticator(id=reply["authenticatorId"], cdp=cdp)
