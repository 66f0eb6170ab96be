"""Secrets the suite sent or received, so that the session can prove none was logged
(the check is tests/support/log_secrets.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx

SECRETS: set[str] = set()
_SECRET_KEYS = {
    "password",
    "current_password",
    "new_password",
    "refresh_token",
    "access_token",
    "token",
}
# Values too short or too common to search for without false positives.
_MIN_LENGTH = 10
# Responses read: when there were some but no secret came of them, the collection is broken.
seen = {"responses": 0}


def _walk(data: Any) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _SECRET_KEYS and isinstance(value, str) and len(value) >= _MIN_LENGTH:
                SECRETS.add(value)
            else:
                _walk(value)
    elif isinstance(data, list):
        for item in data:
            _walk(item)


def _parse(content: bytes) -> None:
    if not content or len(content) > 100_000:
        return
    try:
        _walk(json.loads(content))
    except (ValueError, UnicodeDecodeError):
        return


async def _request(request: httpx.Request) -> None:
    try:
        content = request.content
    except httpx.RequestNotRead:  # a streamed body (an NDJSON import): not read here
        return
    _parse(content)


async def _response(response: httpx.Response) -> None:
    await response.aread()
    seen["responses"] += 1
    _parse(response.content)


# httpx event hooks of the API tests' client: every password and token it carries is collected.
EVENT_HOOKS = {"request": [_request], "response": [_response]}


def remember(*values: str) -> None:
    """Secrets a test handled outside the API client (tokens read from mail)."""
    SECRETS.update(v for v in values if len(v) >= _MIN_LENGTH)


def leaked(text: str) -> list[str]:
    """The collected secrets that occur in ``text``."""
    return sorted(s for s in SECRETS if s in text)
