"""``apply`` and ``export``: a realm file against the database, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auth_service.accounts.identity import BuiltinRole
from auth_service.audit import events
from auth_service.realm.model import RealmFile
from auth_service.realm.plan import (
    APPLY_CONTEXT,
    Action,
    Plan,
    Planner,
    client_fields,
    connector_options,
)

if TYPE_CHECKING:
    from auth_service.services import Services


def _keep() -> dict[str, Any]:
    """A fresh ``{keep: true}`` each time (a shared one would become a YAML alias)."""
    return {"keep": True}


async def apply(
    services: Services,
    realm: RealmFile,
    *,
    base: Path,
    dry_run: bool = False,
    prune: bool = False,
    show: Callable[[Plan], None] = lambda _plan: None,
    source: str = "",
    environ: dict[str, str] | None = None,
) -> Plan:
    """Plan the changes that make the database match ``realm``, ``show`` the plan, then make
    them: all in ONE transaction (Database.atomic), so a failure part way leaves nothing
    applied, and a dry run (or a plan without changes) writes nothing.

    ``environ`` resolves ``{env: NAME}`` references (default: the process environment).

    Raises RealmError (the file does not fit the database: every problem, before any write)
    or whatever the first failing service operation raises (everything is rolled back).
    """
    async with services.db.atomic(commit=not dry_run) as _conn:
        planner = Planner(services, realm, base=base, prune=prune, environ=environ)
        plan = await planner.plan()
        show(plan)
        if dry_run or not plan.writes:
            return plan
        await plan.carry_out()
        await services.audit.record(
            events.REALM_APPLIED,
            APPLY_CONTEXT,
            details={
                "source": source[:200],
                "created": plan.count(Action.create),
                "updated": plan.count(Action.update),
                "deleted": plan.count(Action.delete),
            },
        )
    return plan


def _drop_defaults(item: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in defaults or defaults[k] != v}


async def export(services: Services) -> dict[str, Any]:
    """The database as a realm document (apply of it changes nothing). Secrets are written as
    ``{keep: true}``: the database holds only digests or sealed values it will not print."""
    roles = await services.accounts.roles.all()
    doc: dict[str, Any] = {"version": 1}
    doc["roles"] = [
        {"name": r.name, **({"description": r.description} if r.description else {})} for r in roles
    ]
    clients: list[dict[str, Any]] = []
    for c in await services.oauth.clients.list():
        if c.dynamically_registered:
            continue
        spec = c.spec().with_defaults()
        item: dict[str, Any] = {
            "client_id": c.client_id,
            "type": spec.client_type.value,
            **client_fields(spec),  # the fields the plan compares, in the file's format
        }
        item = _drop_defaults(
            item,
            {
                "post_logout_redirect_uris": [],
                "resources": [],
                "first_party": False,
                "id_token_signed_response_alg": "RS256",
                "require_pushed_authorization_requests": False,
                "jwks": None,
                "jwks_uri": None,
            },
        )
        if (spec.token_endpoint_auth_method or "").startswith("client_secret_"):
            item["client_secret"] = _keep()
        clients.append(item)
    doc["clients"] = clients
    connectors: list[dict[str, Any]] = []
    store = services.federation.connectors
    for k in await store.list():
        item = {
            "id": k.id,
            "name": k.name,
            "type": k.type.value,
            "client_id": k.client_id,
            "issuer": k.issuer,
            "scope": k.scope,
            "trust_email": k.trust_email,
            "allow_signup": k.allow_signup,
            "enabled": k.enabled,
            # Only what is set: a realm file stays as short as the operator's.
            **{key: v for key, v in connector_options(k).items() if v},
        }
        if k.has_secret:
            item["client_secret"] = _keep()
        connectors.append(item)
    doc["connectors"] = connectors
    doc["webhooks"] = [
        _drop_defaults(
            {
                "url": w.url,
                "event_types": sorted(w.event_types),
                "description": w.description,
                "enabled": w.enabled,
                "secret": _keep(),
            },
            {"description": ""},
        )
        for w in await services.webhooks.subscriptions()
    ]
    admins = await services.accounts.roles.holders(BuiltinRole.admin.value)
    doc["admins"] = [{"email": email, "password": _keep()} for email in admins]
    return doc
