"""Redirect URIs: registration rules and matching (RFC 6749 section 3.1.2, RFC 8252).

Matching is exact string comparison (OAuth 2.1 section 2.3.1, RFC 9700 section 4.1.3),
with one exception: a native app's loopback redirect (``http://127.0.0.1`` or
``http://[::1]``) matches on any port, because the app listens on whatever port the
operating system gives it (RFC 8252 section 7.3). ``localhost`` gets no such exception: it
can resolve elsewhere (RFC 8252 section 8.3).
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})  # as urlsplit's hostname gives them
# http is allowed only where nobody else can listen: the device itself.
_HTTP_HOSTS = LOOPBACK_HOSTS | {"localhost"}
MAX_URI_LENGTH = 2000


def registration_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI, or None when it can."""
    if len(uri) > MAX_URI_LENGTH:
        return "is too long"
    if any(ch <= " " or ch in '"<>\\^`{|}' or ch == "\x7f" for ch in uri):
        return "contains a character a URI may not"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "is not a URI"
    if not parts.scheme:
        return "must be an absolute URI"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment"
    if "*" in uri:
        return "must not contain wildcards"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if parts.hostname else "must name a host"
    if scheme == "http":
        if parts.hostname not in _HTTP_HOSTS or "@" in parts.netloc:
            return "must use https (http only for 127.0.0.1, [::1] or localhost)"
        return None
    if scheme in ("javascript", "data", "file", "vbscript"):
        return "uses a scheme that is never a redirect"
    # A private-use scheme of a native app (RFC 8252 section 7.1), e.g. com.example.app:/cb
    return None if "." in scheme else "private-use schemes must be reverse domain names"


def _loopback_without_port(uri: str) -> tuple[str, str, str, str] | None:
    parts = urlsplit(uri)
    # No fragment (section 3.1.2: a redirect URI has none; registered ones never do).
    if parts.scheme != "http" or "@" in parts.netloc or "#" in uri:
        return None
    if parts.hostname not in LOOPBACK_HOSTS:
        return None
    return (parts.scheme, parts.hostname, parts.path, parts.query)


def matches(presented: str, registered: list[str]) -> bool:
    """Whether ``presented`` is one of the ``registered`` redirect URIs (exactly, or a
    loopback one on another port)."""
    if presented in registered:
        return True
    try:
        candidate = _loopback_without_port(presented)
        if candidate is None:
            return False
        return any(_loopback_without_port(r) == candidate for r in registered)
    except ValueError:
        return False
