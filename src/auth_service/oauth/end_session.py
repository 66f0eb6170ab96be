"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

``id_token_hint`` says which client and user ask; ``post_logout_redirect_uri`` must be one
the client registered (exact match) and is only honoured when the client is known (from the
hint or ``client_id``), so the endpoint is never an open redirector; ``state`` is passed
back. A request without a hint we can read, or whose user is not the one signed in, gets a
confirmation page first (section 2: the OP SHOULD ask the user). Logging out ends the
browser session; the grants made in it that hold no refresh token end with it, and its
clients with a ``backchannel_logout_uri`` are sent a logout token (``oauth.backchannel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from auth_service.audit.context import RequestContext
from auth_service.oauth import jose
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidRequest
from auth_service.oauth.id_token import IdTokenHint, IdTokens
from auth_service.oauth.request import Params
from auth_service.oauth.subjects import Subjects
from auth_service.sessions.service import BrowserSession, SessionService


@dataclass(frozen=True)
class LogoutRequest:
    client: Client | None
    hint: IdTokenHint | None
    post_logout_redirect_uri: str | None
    state: str | None
    ui_locales: str | None
    subjects: Subjects | None = None

    def needs_confirmation(self, session: BrowserSession | None) -> bool:
        if session is None:
            return False  # nobody to sign out: nothing to confirm
        if self.hint is None:
            return True
        user_id = session.identity.id
        # The hint's sub is the one its client sees (pairwise for a pairwise client).
        if self.client is not None and self.subjects is not None:
            return self.hint.subject != self.subjects.of(self.client, user_id)
        return self.hint.subject != str(user_id)

    def redirect_url(self) -> str | None:
        """Where the browser goes afterwards (None: our own signed-out page)."""
        if self.post_logout_redirect_uri is None:
            return None
        if self.state is None:
            return self.post_logout_redirect_uri
        joiner = "&" if "?" in self.post_logout_redirect_uri else "?"
        return self.post_logout_redirect_uri + joiner + urlencode({"state": self.state})

    def params(self) -> dict[str, str]:
        """What the confirmation form carries over (the hint is not needed any more)."""
        carried = {
            "client_id": self.client.client_id if self.client else None,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
        }
        return {k: v for k, v in carried.items() if v is not None}


class EndSession:
    def __init__(
        self,
        id_tokens: IdTokens,
        clients: ClientService,
        sessions: SessionService,
        subjects: Subjects | None = None,
    ) -> None:
        self._id_tokens = id_tokens
        self._clients = clients
        self._sessions = sessions
        self._subjects = subjects

    async def request(self, params: Params) -> LogoutRequest:
        """The checked request. Raises InvalidRequest (shown as a page, never redirected)."""
        hint = None
        raw_hint = params.get("id_token_hint")
        if raw_hint is not None:
            try:
                hint = await self._id_tokens.read_hint(raw_hint)
            except jose.JoseError:
                hint = None  # not ours, or tampered with: ask the user instead
        client_id = params.get("client_id")
        if hint is not None and client_id is not None and client_id != hint.client_id:
            raise InvalidRequest("client_id does not match the id_token_hint")
        client = await self._clients.find(client_id or (hint.client_id if hint else None))
        uri = params.get("post_logout_redirect_uri")
        if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
        return LogoutRequest(
            client, hint, uri, params.get("state"), params.get("ui_locales"), self._subjects
        )

    async def log_out(self, session: BrowserSession, ctx: RequestContext) -> None:
        """End the browser session: the revoker ends the grants that depended on it and
        the back-channel logout of its clients (``sessions.revocation``)."""
        await self._sessions.end_browser_session(session, ctx)
