"""Checks on what a browser sends us: where we may send it back to, and whether a form really
comes from our own page (anti-forgery)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

MAX_RETURN_TO = 2048


def safe_return_to(candidate: str | None, public_url: str) -> str | None:
    """A same-origin path to send the browser to after a step, or None.

    Accepted: a path on our origin (``/account?tab=1``), or an absolute URL of our public
    origin (turned into its path). Refused: other origins, scheme-relative (``//evil``),
    backslashes (``/\\evil`` is ``//evil`` to browsers), any whitespace or control character
    (browsers strip tabs and newlines from URLs, turning ``/\\t/evil`` into ``//evil``), and
    every scheme but ours (``javascript:``).
    """
    if not candidate or len(candidate) > MAX_RETURN_TO:
        return None
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in candidate):
        return None
    if candidate.startswith("/") and not candidate.startswith("//"):
        return candidate
    parts = urlsplit(candidate)
    public = urlsplit(public_url)
    if (parts.scheme, parts.netloc) != (public.scheme, public.netloc) or not parts.path:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/") and not path.startswith("//") else None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class AntiForgery:
    """Synchronizer tokens: the token in a form is an HMAC of the browser's binding (its
    session cookie when signed in, else its anti-forgery cookie) under a key derived from
    the master key. Another site can make the browser post, but cannot read the token; and a
    token copied from one browser is worthless in another."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, binding: str) -> str:
        mac = hmac.new(self._key, b"csrf\x00" + binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid(self, binding: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.token(binding), token or "")

    @staticmethod
    def same_site(origin: str | None, fetch_site: str | None, allowed: set[str]) -> bool:
        """Origin and Fetch Metadata say the request comes from our own pages.

        ``Origin: null`` says nothing: browsers send it for a form posted from a page with
        ``Referrer-Policy: no-referrer`` (all of ours), same-origin or not; like an absent
        Origin it leaves the decision to Sec-Fetch-Site and the token.
        """
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False
        return origin is None or origin == "null" or origin.lower() in allowed


def has_control_characters(value: str) -> bool:
    """C0 controls (NUL included) and DEL: no form field of ours allows them, and NUL cannot
    even be stored by PostgreSQL."""
    return any(ch < " " or ch == "\x7f" for ch in value)
