"""Secrets the suite sent or received, so tests/test_zz_log_secrets.py can prove none was logged."""

from __future__ import annotations

import json
from typing import Any

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


def collect_request_secrets(content: bytes) -> None:
    _parse(content)


def collect_response_secrets(content: bytes) -> None:
    _parse(content)


def remember(*values: str) -> None:
    SECRETS.update(v for v in values if len(v) >= _MIN_LENGTH)
