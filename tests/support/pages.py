"""The hosted pages over HTTP without a browser: read a form, post it as a browser would.

Browser journeys (tests/browser) prove the pages in Chromium; these helpers let the API-level
suite cover every page on both databases, fast.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx

ORIGIN = "http://testserver"


class _Forms(HTMLParser):
    """Every form of a page: its action and the values of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.labels: list[str] = []
        self.buttons: list[str] = []
        self._in_label = self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a.get("name", "")] = a.get("value", "")
        elif tag == "label":
            self._in_label = True
            self.labels.append("")
        elif tag == "button":
            self._in_button = True
            self.buttons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = False
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_label:
            self.labels[-1] += data.strip()
        if self._in_button:
            self.buttons[-1] += data.strip()


def parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def form(html: str, action: str) -> dict[str, str]:
    """The fields (with their values) of the page's form that posts to ``action``."""
    for found in parse(html).forms:
        if found["action"] == action:
            return dict(found["fields"])
    raise AssertionError(f"no form posting to {action}")


def alert(html: str) -> str:
    match = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else ""


async def submit(
    client: httpx.AsyncClient,
    page: str,
    action: str,
    values: dict[str, str],
    *,
    origin: str | None = ORIGIN,
    **kw: Any,
) -> httpx.Response:
    """GET ``page``, fill its ``action`` form with ``values`` and POST it (same origin)."""
    r = await client.get(page)
    assert r.status_code == 200, (page, r.status_code, r.text[:300])
    data = form(r.text, action)
    data.update(values)
    headers = {"origin": origin} if origin else {}
    return await client.post(action, data=data, headers=headers, **kw)
