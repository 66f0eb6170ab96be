"""The parameters of a protocol request, independent of the web framework.

RFC 6749 section 3.1 and 3.2: parameters sent without a value are treated as omitted, and
a parameter must not be sent twice (a duplicate is ``invalid_request``, never "first one
wins": two layers disagreeing on which one counts is how parameter pollution attacks work).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auth_service.audit.context import RequestContext
from auth_service.oauth.errors import InvalidRequest

MAX_VALUE_LENGTH = 4096
# Parameters that may repeat (RFC 8707 section 2: one resource parameter per resource;
# RFC 8693 section 2.1: audience likewise).
REPEATABLE = frozenset({"resource", "audience"})


@dataclass(frozen=True)
class Params:
    """Protocol parameters (query or form), as received."""

    items: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Params:
        return cls(tuple(pairs))

    def get(self, name: str, *, max_length: int | None = MAX_VALUE_LENGTH) -> str | None:
        """The value of ``name``, None when absent or empty. Raises InvalidRequest when it is
        sent twice or is absurdly long (over ``max_length``; None: as long as the body may
        be, for a caller that judges the length itself)."""
        values = [v for k, v in self.items if k == name and v != ""]
        if len(values) > 1 and name not in REPEATABLE:
            raise InvalidRequest(f"{name} is sent more than once")
        if not values:
            return None
        if max_length is not None and len(values[0]) > max_length:
            raise InvalidRequest(f"{name} is too long")
        return values[0]

    def all(self, name: str) -> list[str]:
        values = [v for k, v in self.items if k == name and v != ""]
        if any(len(v) > MAX_VALUE_LENGTH for v in values):
            raise InvalidRequest(f"{name} is too long")
        return values

    def require(self, name: str, *, max_length: int | None = MAX_VALUE_LENGTH) -> str:
        value = self.get(name, max_length=max_length)
        if value is None:
            raise InvalidRequest(f"{name} is required")
        return value

    def as_dict(self) -> dict[str, str]:
        """Every parameter once (duplicates refused), for storing a validated request."""
        return {k: v for k, _ in self.items if (v := self.get(k)) is not None}


@dataclass(frozen=True)
class EndpointRequest:
    """A request to a client-authenticated endpoint (token, introspection, revocation)."""

    params: Params
    authorization: str | None
    context: RequestContext
    dpop: tuple[str, ...] = ()  # the DPoP headers (RFC 9449)
