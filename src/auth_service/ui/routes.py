"""All hosted pages, as one router the app includes when ``ui.enabled``."""

from __future__ import annotations

from fastapi import APIRouter

from auth_service.ui import (
    account,
    assets,
    consent,
    device,
    end_session,
    federation,
    mfa,
    oauth,
    recovery,
    registration,
    security,
    signin,
)

router = APIRouter(include_in_schema=False)
for module in (
    signin,
    federation,
    mfa,
    registration,
    recovery,
    account,
    security,
    assets,
    oauth,
    consent,
    device,
    end_session,
):
    router.include_router(module.router)

# Where the body middleware accepts form posts (the /v1 API stays JSON-only).
FORM_PATHS = (
    "/login",
    "/logout",
    "/register",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/account",
    "/consent",
    "/device",
    "/oauth2/authorize",
    "/oauth2/logout",
)
