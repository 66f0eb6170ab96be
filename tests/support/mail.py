"""Reading delivered mail: decoded bodies and the one-time tokens in their links."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable

# Read from the raw message rather than the decoded body: tokens are URL-safe base64, which
# quoted-printable never escapes, so only soft line breaks and the ``=3D`` of ``token=`` need
# undoing, and a message whose body is not encoded the way its header says still reads right.
_TOKEN = re.compile(r"token=(?:3D)?([A-Za-z0-9_-]{20,})")


def decode_mail(raw: bytes) -> str:
    """Headers and the decoded text body (bodies are quoted-printable on the wire)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers = "".join(f"{k}: {v}\n" for k, v in message.items())
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return headers + "\n" + body.get_content()


def mail_token(mails: Iterable[str], link: str) -> str:
    """The token of the first mail that links to ``link`` (``/reset-password``...)."""
    for raw in mails:
        text = re.sub(r"=\r?\n", "", raw)  # quoted-printable soft line breaks
        if link in text:
            match = _TOKEN.search(text[text.index(link) :])
            if match:
                return match.group(1)
    raise AssertionError(f"no mail with a {link} link")


def tokens_in_mail(text: str) -> list[str]:
    """Every one-time token a mail links to."""
    return _TOKEN.findall(re.sub(r"=\r?\n", "", text))
