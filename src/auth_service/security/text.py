"""Text accepted at the edge: no control characters, in any field that can reach storage.

PostgreSQL refuses NUL in text (asyncpg: "invalid byte sequence 0x00"), so a NUL that got past
the schema became a 500; the other C0 controls and DEL are stored but can forge log lines, mail
headers and terminal output where they are shown. No field of the API needs them: a display
name is one line (tab and newline are refused too), and a password is what a person types
(NIST SP 800-63B section 5.1.1.2 asks for printing characters and space). So every string of
every request schema and query parameter is one of the types below, and a control character
is a 422 naming the field before any service runs.

The rule is also in the JSON Schema (``pattern``), so OpenAPI clients and the fuzzer know it;
the validator gives the readable reason.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

# C0 controls (U+0000-U+001F) and DEL (U+007F). C1 controls (U+0080-U+009F) are stored and
# shown harmlessly as text, so they are left to the fields' own rules.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# The same rule as an ECMA-262 pattern for the OpenAPI document.
NO_CONTROLS_PATTERN = r"^[^\x00-\x1f\x7f]*$"
REASON = "must not contain control characters (U+0000 to U+001F, U+007F)"


def refuse_controls(value: str) -> str:
    """Return ``value`` unchanged, or fail validation if it holds a control character."""
    if CONTROL_CHARACTERS.search(value):
        raise PydanticCustomError("control_character", REASON)
    return value


# A label someone reads: no control characters and at least one visible character.
LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def refuse_blank(value: str) -> str:
    """Return ``value`` unchanged, or fail validation if it is only white space."""
    if not value.strip():
        raise PydanticCustomError("blank", "must contain a visible character")
    return value


class _DocumentedRule:
    """Adds the rule to the JSON Schema of the field (validation is ``refuse_controls``)."""

    def __init__(self, pattern: str = NO_CONTROLS_PATTERN) -> None:
        self._pattern = pattern

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self._pattern
        return json_schema


_CHECK = AfterValidator(refuse_controls)
_RULE = _DocumentedRule()

# Length constraints are checked by pydantic before the validator runs, so an oversized value
# is refused for its length without being scanned.
PlainText = Annotated[str, _CHECK, _RULE]
"""Any text without control characters (no length limit of its own)."""

EmailText = Annotated[str, StringConstraints(min_length=1, max_length=320), _CHECK, _RULE]
"""An email address as submitted (RFC 5321 path limit); its syntax is checked by the service."""

PasswordText = Annotated[str, StringConstraints(min_length=1, max_length=4096), _CHECK, _RULE]
"""A password as submitted; the password policy gives the precise reasons."""

NameText = Annotated[str, StringConstraints(max_length=200), _CHECK, _RULE]
"""A display name: one line, up to 200 characters."""

LabelText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    _CHECK,
    AfterValidator(refuse_blank),
    _DocumentedRule(LABEL_PATTERN),
]
"""A short label a person gives a thing (a passkey): one line, something visible, 64 at most."""

TokenText = Annotated[str, StringConstraints(min_length=1, max_length=512), _CHECK, _RULE]
"""An opaque token from a link or a login response (refresh, reset, verification)."""
