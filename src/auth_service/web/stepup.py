"""Step-up for sensitive API operations: a route asks the caller's session for an ``acr`` or
a recent ``auth_time`` (``mfa.step_up.<operation>``), answering 403 ``step-up-required``
(with ``required_acr`` / ``max_age``) when it falls short. Read from the access token's
signed claims: no database round trip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from fastapi import Depends

from auth_service.mfa.policy import check_step_up
from auth_service.web.deps import Principal, ServicesDep, fresh_principal

Operation = Literal["password_change", "factor_removal", "admin"]


def require_step_up(operation: Operation) -> Callable[..., Awaitable[None]]:
    """A dependency checking the configured rule of ``operation`` (none by default)."""

    async def check(services: ServicesDep, principal: Principal = Depends(fresh_principal)) -> None:
        rule = getattr(services.settings.mfa.step_up, operation)
        claims = principal.claims
        when = datetime.fromtimestamp(claims.auth_time, UTC) if claims.auth_time else None
        check_step_up(rule, acr=claims.acr, auth_time=when, now=datetime.now(UTC))

    return check
