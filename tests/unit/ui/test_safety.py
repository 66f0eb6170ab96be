"""Where a browser may be sent back to, and the anti-forgery token."""

from __future__ import annotations

import pytest

from auth_service.ui.safety import AntiForgery, has_control_characters, safe_return_to

PUBLIC = "https://id.example.com"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/account", "/account"),
        ("/account?tab=1#x", "/account?tab=1#x"),
        ("https://id.example.com/account?x=1", "/account?x=1"),
        ("https://id.example.com", None),
        ("https://evil.example/account", None),
        ("http://id.example.com/account", None),  # another scheme is another origin
        ("https://id.example.com.evil.example/", None),
        ("https://id.example.com@evil.example/", None),
        ("//evil.example", None),
        ("///evil.example", None),
        ("\\\\evil.example", None),
        ("/\\evil.example", None),
        ("/\t/evil.example", None),
        ("/\n/evil.example", None),
        (" /account", None),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("account", None),
        ("", None),
        (None, None),
        ("/" + "a" * 3000, None),
    ],
)
def test_safe_return_to(candidate: str | None, expected: str | None) -> None:
    assert safe_return_to(candidate, PUBLIC) == expected


def test_tokens_are_bound_to_the_browser() -> None:
    forgery = AntiForgery(b"k" * 32)
    token = forgery.token("a:browser-one")
    assert forgery.valid("a:browser-one", token)
    assert not forgery.valid("a:browser-two", token)
    assert not forgery.valid("a:browser-one", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not forgery.valid("a:browser-one", None)
    assert not AntiForgery(b"x" * 32).valid("a:browser-one", token)


@pytest.mark.parametrize(
    ("origin", "fetch_site", "ok"),
    [
        ("https://id.example.com", "same-origin", True),
        (None, None, True),  # an old browser: the token alone decides
        (None, "none", True),  # typed into the address bar, a bookmark
        ("https://evil.example", None, False),
        (None, "cross-site", False),
        (None, "same-site", False),  # a sibling subdomain is not us
        ("null", "same-origin", True),  # Origin of a post from a no-referrer page
        ("null", "cross-site", False),
    ],
)
def test_same_site(origin: str | None, fetch_site: str | None, ok: bool) -> None:
    assert AntiForgery.same_site(origin, fetch_site, {"https://id.example.com"}) is ok


def test_control_characters() -> None:
    assert has_control_characters("a\x00b")
    assert has_control_characters("tab\there")
    assert has_control_characters("del\x7f")
    assert not has_control_characters("Grüße, señor — 日本")
