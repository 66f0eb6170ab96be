"""Reading one-time tokens out of delivered mail.

Read from the raw message rather than the decoded body: tokens are URL-safe base64, which
quoted-printable never escapes, so only soft line breaks and the ``=3D`` of ``token=`` need
undoing, and a message whose body is not encoded the way its header says still reads right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"token=(?:3D)?([A-Za-z0-9_-]{20,})")


def mail_token(mails: Iterable[str], link: str) -> str:
    """The token of the first mail that links to ``link`` (``/reset-password``...)."""
    for raw in mails:
        text = re.sub(r"=\r?\n", "", raw)  # quoted-printable soft line breaks
        if link in text:
            match = _TOKEN.search(text[text.index(link) :])
            if match:
                return match.group(1)
    raise AssertionError(f"no mail with a {link} link")
