"""Admin API: users, audit events, key rotation, OAuth clients, identity-provider connectors.
Requires the ``admin`` role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from auth_service.accounts.importing import ImportReport, Rejected
from auth_service.accounts.schemas import AdminUserOut
from auth_service.admin.schemas import (
    AdminUserCreate,
    AdminUserPatch,
    AuditEventOut,
    AuditPage,
    RejectedLine,
    Rfc3339,
    RotateResponse,
    UserImportReport,
    UserPage,
)
from auth_service.federation.schemas import ConnectorId, ConnectorIn, ConnectorOut, ConnectorPatch
from auth_service.oauth.schemas import (
    ClientIn,
    ClientOut,
    ClientPatch,
    CreatedClient,
    RotatedSecret,
    RotateSecretIn,
)
from auth_service.security.text import PlainText
from auth_service.web.deps import AdminPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses
from auth_service.web.stepup import require_step_up

# Every admin route reads the database: 503 database-unavailable while it cannot serve.
router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses=problem_responses(401, 403, 503),
    dependencies=[Depends(require_step_up("admin"))],
)

IMPORT_PATH = "/v1/admin/users:import"
IMPORT_MEDIA_TYPE = "application/x-ndjson"
# The response lists this many refused lines at most (their count is always exact): the
# report of a million bad lines must not be a million objects held in memory.
REPORTED_REJECTS = 1000

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/users", response_model=UserPage)
async def list_users(
    _: AdminPrincipal,
    services: ServicesDep,
    email: Annotated[PlainText | None, Query(max_length=320)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> UserPage:
    """Users oldest first; ``email`` filters by substring (case-insensitive)."""
    users, total = await services.accounts.users.list_users(email=email, limit=limit, offset=offset)
    return UserPage(
        items=[AdminUserOut.of(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.post(
    "/users:import",
    response_model=UserImportReport,
    responses=problem_responses(400, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                IMPORT_MEDIA_TYPE: {
                    # No type: the body is text by definition (NDJSON), which no JSON Schema
                    # type describes better than "anything"; each line is checked by the
                    # import and reported, never the request refused for its content.
                    "schema": {
                        "description": "one JSON object per line: external_id, email, "
                        "name, password_hash, password_salt (Firebase), email_verified, "
                        'locale; optionally a first line {"hash_parameters": {...}}',
                    }
                }
            },
        }
    },
)
async def import_users(
    request: Request,
    principal: AdminPrincipal,
    services: ServicesDep,
    batch_size: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> UserImportReport:
    """Import accounts from a streamed NDJSON body (`application/x-ndjson`, up to
    `server.max_import_bytes`), exactly as `auth-service users import` does: hashes kept
    (argon2, bcrypt, PBKDF2, scrypt, Firebase scrypt with a first line `{"hash_parameters":
    ...}`) and upgraded at the next sign-in; batches of `batch_size` lines, one transaction
    each; an external id imported already is skipped, so the same body can be sent again.
    The report counts the lines and lists the first refused ones with their reason. A body
    cut short (413 over the limit, a dropped connection) keeps the batches stored before."""
    report = ImportReport()
    reported: list[RejectedLine] = []

    async def refused(lines: list[Rejected]) -> None:
        room = REPORTED_REJECTS - len(reported)
        reported.extend(RejectedLine(**r.as_dict()) for r in lines[:room])

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk

    importer = services.accounts.imports
    try:
        await importer.run(chunks(), refused, batch_size=batch_size, report=report)
    finally:
        await importer.finish(report, "api", principal.context)
    return UserImportReport(
        **report.counts(),
        rejected_lines=reported,
        rejected_lines_truncated=report.rejected > len(reported),
    )


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=AdminUserOut,
    responses=problem_responses(409, 422),
)
async def create_user(
    body: AdminUserCreate, principal: AdminPrincipal, services: ServicesDep, response: Response
) -> AdminUserOut:
    """Create an account (no rate limits; the password policy applies). Without `password`
    it has none and its user is mailed a reset link to choose one: 403 `feature-disabled`
    when password reset is switched off."""
    identity = await services.accounts.registration.create_user(
        body.email,
        body.password,
        admin="admin" in body.roles,
        ctx=principal.context,
        verified=body.email_verified,
        name=body.name,
    )
    if body.password is None:
        await services.accounts.recovery.send_reset_link(identity.id, principal.context)
    response.headers["Location"] = f"{router.prefix}/users/{identity.id}"
    return AdminUserOut.of(identity)


@router.post(
    "/users/{user_id}/reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=problem_responses(404, 409),
)
async def send_password_reset(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Mail the user a password-reset link: the forgot-password mail, without its rate
    limits. 409 `user-disabled` for a disabled account, 403 `feature-disabled` when password
    reset is switched off."""
    await services.accounts.recovery.send_reset_link(user_id, principal.context)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.get("/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404))
async def get_user(user_id: uuid.UUID, _: AdminPrincipal, services: ServicesDep) -> AdminUserOut:
    return AdminUserOut.of(await services.accounts.users.get(user_id))


@router.patch(
    "/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404, 409, 422)
)
async def update_user(
    user_id: uuid.UUID, body: AdminUserPatch, principal: AdminPrincipal, services: ServicesDep
) -> AdminUserOut:
    """Disable or enable (disabling revokes every session), set roles, rename."""
    identity = await services.accounts.users.admin_update(
        user_id,
        principal.context,
        status=body.status,
        roles=list(body.roles) if body.roles is not None else None,
        name=body.name,
        set_name="name" in body.model_fields_set,
    )
    return AdminUserOut.of(identity)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
)
async def delete_user(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    await services.accounts.users.admin_delete(user_id, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/users/{user_id}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def reset_mfa(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Remove every second factor and passkey of a user (audited; the user is mailed)."""
    identity = await services.accounts.users.get(user_id)
    await services.mfa.reset(identity, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit-events", response_model=AuditPage)
async def audit_events(
    _: AdminPrincipal,
    services: ServicesDep,
    user_id: uuid.UUID | None = None,
    type: Annotated[PlainText | None, Query(max_length=64)] = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AuditPage:
    """Newest first; filter by user (actor or subject), event type and time range."""
    records, total = await services.audit.query(
        user_id=user_id, event_type=type, since=since, until=until, limit=limit, offset=offset
    )
    return AuditPage(
        items=[AuditEventOut.of(r) for r in records], total=total, limit=limit, offset=offset
    )


@router.post("/keys/rotate", response_model=RotateResponse)
async def rotate_keys(principal: AdminPrincipal, services: ServicesDep) -> RotateResponse:
    """Promote the published next key to signing; the old key stays published until expiry."""
    return RotateResponse(active_kid=await services.keys.rotate(principal.context))


# ---- OAuth clients ------------------------------------------------------------------------

ClientId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/clients",
    response_model=CreatedClient,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(422),
)
async def create_client(
    body: ClientIn, principal: AdminPrincipal, services: ServicesDep
) -> CreatedClient:
    """Register a client; ``client_secret`` (confidential clients) is in this answer only."""
    client, secret = await services.oauth.clients.create(body.spec(), principal.context)
    return CreatedClient(**ClientOut.of(client).model_dump(), client_secret=secret)


@router.get("/clients", response_model=list[ClientOut])
async def list_clients(_: AdminPrincipal, services: ServicesDep) -> list[ClientOut]:
    return [ClientOut.of(c) for c in await services.oauth.clients.list()]


@router.get("/clients/{client_id}", response_model=ClientOut, responses=problem_responses(404))
async def get_client(client_id: ClientId, _: AdminPrincipal, services: ServicesDep) -> ClientOut:
    return ClientOut.of(await services.oauth.clients.get(client_id))


@router.patch(
    "/clients/{client_id}", response_model=ClientOut, responses=problem_responses(404, 422)
)
async def update_client(
    client_id: ClientId, body: ClientPatch, principal: AdminPrincipal, services: ServicesDep
) -> ClientOut:
    client = await services.oauth.clients.update(client_id, principal.context, **body.changes())
    return ClientOut.of(client)


@router.post(
    "/clients/{client_id}/rotate-secret",
    response_model=RotatedSecret,
    responses=problem_responses(404, 422),
)
async def rotate_client_secret(
    client_id: ClientId, body: RotateSecretIn, principal: AdminPrincipal, services: ServicesDep
) -> RotatedSecret:
    """A new secret (shown once); the old ones keep working until ``overlap_seconds``."""
    rotation = await services.oauth.clients.rotate_secret(
        client_id, principal.context, overlap_seconds=body.overlap_seconds
    )
    return RotatedSecret(
        client_id=client_id,
        client_secret=rotation.secret,
        previous_secret_expires_at=rotation.previous_expires_at,
    )


@router.delete(
    "/clients/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def delete_client(
    client_id: ClientId, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Remove a client: its secrets, codes and consents go, and every grant it holds ends."""
    await services.oauth.delete_client(client_id, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- identity-provider connectors (docs/federation.md) ----------------------------------------


@router.post(
    "/connectors",
    response_model=ConnectorOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def create_connector(
    body: ConnectorIn, principal: AdminPrincipal, services: ServicesDep
) -> ConnectorOut:
    """Register an upstream identity provider; its button shows at the next page view."""
    federation = services.federation
    connector = await federation.connectors.create(body.spec(), principal.context)
    return ConnectorOut.of(connector, federation.redirect_uri(connector.id))


@router.get("/connectors", response_model=list[ConnectorOut])
async def list_connectors(_: AdminPrincipal, services: ServicesDep) -> list[ConnectorOut]:
    federation = services.federation
    found = await federation.connectors.list()
    return [ConnectorOut.of(c, federation.redirect_uri(c.id)) for c in found]


@router.get(
    "/connectors/{connector_id}", response_model=ConnectorOut, responses=problem_responses(404)
)
async def get_connector(
    connector_id: ConnectorId, _: AdminPrincipal, services: ServicesDep
) -> ConnectorOut:
    federation = services.federation
    connector = await federation.connectors.get(connector_id, enabled_only=False)
    return ConnectorOut.of(connector, federation.redirect_uri(connector.id))


@router.patch(
    "/connectors/{connector_id}",
    response_model=ConnectorOut,
    responses=problem_responses(404, 422),
)
async def update_connector(
    connector_id: ConnectorId,
    body: ConnectorPatch,
    principal: AdminPrincipal,
    services: ServicesDep,
) -> ConnectorOut:
    """Change what is given (``enabled: false`` disables it); audited."""
    federation = services.federation
    connector = await federation.connectors.update(
        connector_id, principal.context, client_secret=body.client_secret, **body.changes()
    )
    return ConnectorOut.of(connector, federation.redirect_uri(connector.id))


@router.delete(
    "/connectors/{connector_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def delete_connector(
    connector_id: ConnectorId, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Remove a connector and every identity linked through it."""
    await services.federation.connectors.delete(connector_id, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
