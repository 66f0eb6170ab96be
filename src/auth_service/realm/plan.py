"""The plan of an apply: for each declared (and, with ``--prune``, undeclared) object, what
changes, computed from the domain services' own reads and carried out by their own
operations, so apply writes no SQL of its own and audits every change as they do."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auth_service.accounts.errors import UserNotFound
from auth_service.accounts.identity import BuiltinRole
from auth_service.audit.context import RequestContext
from auth_service.federation.connectors import (
    DEFAULT_SCOPE,
    PRESET_ISSUERS,
    Connector,
    ConnectorSpec,
    check_issuer,
)
from auth_service.federation.errors import InvalidConnector
from auth_service.oauth.client_metadata import ClientSpec
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import InvalidClientMetadata
from auth_service.problems import ServiceError
from auth_service.realm.model import (
    AdminDecl,
    ClientDecl,
    ConnectorDecl,
    RealmError,
    RealmFile,
    RoleDecl,
    WebhookDecl,
)
from auth_service.realm.refs import UnresolvedSecret, resolve
from auth_service.security.random import constant_time_equals
from auth_service.webhooks.service import Subscription, WebhookSpec

if TYPE_CHECKING:
    from auth_service.services import Services

APPLY_CONTEXT = RequestContext(request_id="apply", user_agent="auth-service apply")
SECRET_CHANGED = "(secret changed)"  # noqa: S105 - what the plan shows instead of a secret


class Action(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    unchanged = "unchanged"
    kept = "kept"  # not in the file, left alone (no --prune)


SIGNS = {
    Action.create: "+",
    Action.update: "~",
    Action.delete: "-",
    Action.unchanged: "=",
    Action.kept: "!",
}


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: Any
    new: Any
    secret: bool = False

    def line(self) -> str:
        if self.secret:
            return f"{self.name}: {self.new}"
        return f"{self.name}: {_json(self.old)} -> {_json(self.new)}"


Step = Callable[[], Awaitable[None]]


@dataclass
class Change:
    kind: str
    key: str
    action: Action
    fields: list[FieldChange] = field(default_factory=list)
    step: Step | None = None

    def lines(self) -> list[str]:
        head = f"{SIGNS[self.action]} {self.action.value} {self.kind} {self.key}"
        if self.action is Action.kept:
            head += " (not in the file; --prune deletes it)"
        return [head, *(f"    {f.line()}" for f in self.fields)]


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def writes(self) -> bool:
        return any(c.step is not None for c in self.changes)

    def summary(self) -> str:
        if not self.writes:
            return "No changes: the database matches the file."
        return (
            f"Plan: {self.count(Action.create)} to create, {self.count(Action.update)} to "
            f"update, {self.count(Action.delete)} to delete, "
            f"{self.count(Action.unchanged)} unchanged."
        )

    def render(self) -> str:
        lines = [line for change in self.changes for line in change.lines()]
        return "\n".join([*lines, self.summary()])

    async def carry_out(self) -> None:
        """Make every change in order. Raises StepFailed naming the change a service refused
        (the caller's transaction then undoes the ones before it)."""
        for change in self.changes:
            if change.step is None:
                continue
            try:
                await change.step()
            except (ServiceError, ValueError) as exc:
                raise StepFailed(change, exc) from exc


class StepFailed(Exception):
    """A service refused one change of the plan; ``change`` says which, the message why."""

    def __init__(self, change: Change, cause: Exception) -> None:
        reason = str(cause) or (type(cause).__doc__ or type(cause).__name__).split("\n")[0]
        super().__init__(f"{change.action.value} {change.kind} {change.key}: {reason}")
        self.change = change


def _created(values: dict[str, Any]) -> list[FieldChange]:
    """The fields a creation shows: those with a value."""
    return [FieldChange(k, None, v) for k, v in values.items() if v not in (None, [], "")]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class Planner:
    """Compares a realm file with the database through ``services``."""

    def __init__(
        self,
        services: Services,
        realm: RealmFile,
        *,
        base: Path,
        prune: bool = False,
        environ: dict[str, str] | None = None,
    ) -> None:
        self._s = services
        self._realm = realm
        self._base = base
        self._prune = prune
        self._environ = environ
        self._problems: list[str] = []
        self._ctx = APPLY_CONTEXT

    def _secret(self, path: str, ref: Any) -> str | None:
        try:
            return resolve(ref, base=self._base, environ=self._environ)
        except UnresolvedSecret as exc:
            self._problems.append(f"{path}: {exc}")
            return None

    async def plan(self) -> Plan:
        """Every change, in the order apply makes them (roles before the admins holding
        them, deletions last). Raises RealmError with every problem found."""
        plan = Plan()
        deletions: list[Change] = []
        r = self._realm
        if r.roles is not None:
            await self._roles(r.roles, plan.changes, deletions)
        if r.connectors is not None:
            await self._connectors(r.connectors, plan.changes, deletions)
        if r.clients is not None:
            await self._clients(r.clients, plan.changes, deletions)
        if r.webhooks is not None:
            await self._webhooks(r.webhooks, plan.changes, deletions)
        if r.admins is not None:
            await self._admins(r.admins, plan.changes)
        if self._problems:
            raise RealmError(self._problems)
        plan.changes.extend(deletions)
        return plan

    def _gone(self, kind: str, key: str, step: Step) -> Change:
        if self._prune:
            return Change(kind, key, Action.delete, step=step)
        return Change(kind, key, Action.kept)

    # ---- roles ------------------------------------------------------------------------------

    async def _roles(
        self, decls: Sequence[RoleDecl], out: list[Change], gone: list[Change]
    ) -> None:
        roles = self._s.accounts.roles
        current = {r.name: r for r in await roles.all()}
        for decl in decls:
            now = current.get(decl.name)
            name, description = decl.name, decl.description
            if now is None:
                out.append(
                    Change(
                        "role",
                        name,
                        Action.create,
                        [FieldChange("description", None, description)] if description else [],
                        partial(roles.create, name, description, self._ctx),
                    )
                )
            elif (now.description or None) != (description or None):
                out.append(
                    Change(
                        "role",
                        name,
                        Action.update,
                        [FieldChange("description", now.description, description)],
                        partial(roles.describe, name, description, self._ctx),
                    )
                )
            else:
                out.append(Change("role", name, Action.unchanged))
        declared = {d.name for d in decls}
        for name, view in current.items():
            if name not in declared and not view.builtin:
                gone.append(self._gone("role", name, partial(roles.delete, name, self._ctx)))

    # ---- clients ----------------------------------------------------------------------------

    async def _clients(
        self, decls: Sequence[ClientDecl], out: list[Change], gone: list[Change]
    ) -> None:
        clients = self._s.oauth.clients
        current = {c.client_id: c for c in await clients.list() if not c.dynamically_registered}
        for i, decl in enumerate(decls):
            path = f"clients[{i}]"
            try:
                spec = clients.check(_client_spec(decl))
            except InvalidClientMetadata as exc:
                self._problems.append(f"{path}: {exc}")
                continue
            secret = self._secret(f"{path}.client_secret", decl.client_secret)
            has_secret = (spec.token_endpoint_auth_method or "").startswith("client_secret_")
            if decl.client_secret is not None and not has_secret:
                self._problems.append(
                    f"{path}.client_secret: a client authenticating with "
                    f"{spec.token_endpoint_auth_method} has no secret"
                )
                continue
            found = current.get(decl.client_id) or await clients.find(decl.client_id)
            if found is None:
                if has_secret and secret is None:
                    self._problems.append(
                        f"{path}.client_secret: a new client needs {{file: ...}} or {{env: ...}}"
                    )
                    continue
                shown = _created(client_fields(spec))
                if secret is not None:
                    shown.append(FieldChange("client_secret", None, "(set)", secret=True))
                out.append(
                    Change(
                        "client",
                        decl.client_id,
                        Action.create,
                        shown,
                        partial(self._create_client, spec, decl.client_id, secret),
                    )
                )
                continue
            await self._client_update(path, decl, found, spec, secret, out)
        declared = {d.client_id for d in decls}
        for client_id in current:
            if client_id not in declared:
                gone.append(
                    self._gone(
                        "client",
                        client_id,
                        partial(self._s.oauth.delete_client, client_id, self._ctx),
                    )
                )

    async def _create_client(self, spec: ClientSpec, client_id: str, secret: str | None) -> None:
        await self._s.oauth.clients.create(spec, self._ctx, client_id=client_id, secret=secret)

    async def _client_update(
        self,
        path: str,
        decl: ClientDecl,
        found: Client,
        spec: ClientSpec,
        secret: str | None,
        out: list[Change],
    ) -> None:
        clients = self._s.oauth.clients
        if found.client_type is not spec.client_type:
            self._problems.append(
                f"{path}.type: {decl.client_id} is {found.client_type.value}; a client's type "
                "cannot change (delete it and declare a new client_id)"
            )
            return
        old, new = client_fields(found.spec().with_defaults()), client_fields(spec)
        diff = [FieldChange(k, old[k], new[k]) for k in new if old[k] != new[k]]
        rotate = secret is not None and await clients.authenticate(decl.client_id, secret) is None
        if rotate:
            diff.append(FieldChange("client_secret", None, SECRET_CHANGED, secret=True))
        if not diff:
            out.append(Change("client", decl.client_id, Action.unchanged))
            return
        changes = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name in new}
        changed = {k: v for k, v in changes.items() if old.get(k) != new.get(k)}

        async def step() -> None:
            if changed:
                await clients.update(decl.client_id, self._ctx, **changed)
            if rotate:
                await clients.rotate_secret(decl.client_id, self._ctx, secret=secret)

        out.append(Change("client", decl.client_id, Action.update, diff, step))

    # ---- connectors -------------------------------------------------------------------------

    async def _connectors(
        self, decls: Sequence[ConnectorDecl], out: list[Change], gone: list[Change]
    ) -> None:
        store = self._s.federation.connectors
        current = {c.id: c for c in await store.list()}
        for i, decl in enumerate(decls):
            path = f"connectors[{i}]"
            secret = self._secret(f"{path}.client_secret", decl.client_secret)
            wanted = self._connector_fields(path, decl)
            if wanted is None:
                continue
            found = current.get(decl.id)
            if found is None:
                shown = _created(wanted)
                if secret is not None:
                    shown.append(FieldChange("client_secret", None, "(set)", secret=True))
                out.append(
                    Change(
                        "connector",
                        decl.id,
                        Action.create,
                        shown,
                        partial(self._create_connector, decl, secret),
                    )
                )
                continue
            if found.type is not decl.type:
                self._problems.append(
                    f"{path}.type: {decl.id} is {found.type.value}; a connector's type cannot "
                    "change (delete it and declare a new id)"
                )
                continue
            old = _connector_fields(found)
            diff = [FieldChange(k, old[k], v) for k, v in wanted.items() if old[k] != v]
            changed = {f.name: f.new for f in diff}
            if secret is not None:
                stored = await store.client_secret(found)
                if stored is None or not constant_time_equals(stored.encode(), secret.encode()):
                    diff.append(FieldChange("client_secret", None, SECRET_CHANGED, secret=True))
                    changed["client_secret"] = secret
            if not diff:
                out.append(Change("connector", decl.id, Action.unchanged))
                continue
            out.append(
                Change(
                    "connector",
                    decl.id,
                    Action.update,
                    diff,
                    partial(self._update_connector, decl.id, changed),
                )
            )
        declared = {d.id for d in decls}
        for connector_id in current:
            if connector_id not in declared:
                gone.append(
                    self._gone(
                        "connector", connector_id, partial(store.delete, connector_id, self._ctx)
                    )
                )

    def _connector_fields(self, path: str, decl: ConnectorDecl) -> dict[str, Any] | None:
        issuer = decl.issuer or PRESET_ISSUERS.get(decl.type)
        if issuer is None:
            self._problems.append(f"{path}.issuer: required for type {decl.type.value}")
            return None
        try:
            issuer = check_issuer(issuer)
        except InvalidConnector as exc:
            self._problems.append(f"{path}.issuer: {exc}")
            return None
        return {
            "name": decl.name.strip(),
            "issuer": issuer,
            "client_id": decl.client_id.strip(),
            "scope": " ".join((decl.scope or DEFAULT_SCOPE).split()),
            "trust_email": decl.trust_email,
            "allow_signup": decl.allow_signup,
            "enabled": decl.enabled,
            "authorization_url": decl.authorization_url,
            "token_url": decl.token_url,
            "userinfo_url": decl.userinfo_url,
            "claims": dict(decl.claims or {}),
            "group_roles": dict(decl.group_roles or {}),
            "store_tokens": decl.store_tokens,
        }

    async def _create_connector(self, decl: ConnectorDecl, secret: str | None) -> None:
        store = self._s.federation.connectors
        spec = ConnectorSpec(
            id=decl.id,
            name=decl.name,
            type=decl.type,
            client_id=decl.client_id,
            issuer=decl.issuer,
            client_secret=secret,
            scope=decl.scope,
            trust_email=decl.trust_email,
            allow_signup=decl.allow_signup,
            authorization_url=decl.authorization_url,
            token_url=decl.token_url,
            userinfo_url=decl.userinfo_url,
            claims=dict(decl.claims) if decl.claims else None,
            store_tokens=decl.store_tokens,
            group_roles=dict(decl.group_roles) if decl.group_roles else None,
        )
        await store.create(spec, self._ctx)
        if not decl.enabled:
            await store.update(decl.id, self._ctx, enabled=False)

    async def _update_connector(self, connector_id: str, changed: dict[str, Any]) -> None:
        await self._s.federation.connectors.update(connector_id, self._ctx, **changed)

    # ---- webhooks ---------------------------------------------------------------------------

    async def _webhooks(
        self, decls: Sequence[WebhookDecl], out: list[Change], gone: list[Change]
    ) -> None:
        hooks = self._s.webhooks
        current: dict[str, Subscription] = {}
        for sub in await hooks.subscriptions():
            if sub.url in current:
                self._problems.append(
                    f"webhooks: two subscriptions post to {sub.url}; apply knows a "
                    "subscription by its URL: delete one (auth-service webhooks delete)"
                )
            current[sub.url] = sub
        for i, decl in enumerate(decls):
            secret = self._secret(f"webhooks[{i}].secret", decl.secret)
            types = sorted(set(decl.event_types))
            wanted: dict[str, Any] = {
                "event_types": types,
                "description": decl.description,
                "enabled": decl.enabled,
            }
            found = current.get(decl.url)
            if found is None:
                spec = WebhookSpec(decl.url, types, decl.description, decl.enabled)
                shown = _created(wanted)
                if secret is not None:
                    shown.append(FieldChange("secret", None, "(set)", secret=True))
                out.append(
                    Change(
                        "webhook",
                        decl.url,
                        Action.create,
                        shown,
                        partial(self._create_webhook, spec, secret),
                    )
                )
                continue
            old = {
                "event_types": sorted(found.event_types),
                "description": found.description,
                "enabled": found.enabled,
            }
            diff = [FieldChange(k, old[k], v) for k, v in wanted.items() if old[k] != v]
            rotate = secret is not None and not await hooks.signs_with(found.id, secret)
            if rotate:
                diff.append(FieldChange("secret", None, SECRET_CHANGED, secret=True))
            if not diff:
                out.append(Change("webhook", decl.url, Action.unchanged))
                continue
            spec = WebhookSpec(
                None,
                types if old["event_types"] != types else None,
                decl.description if old["description"] != decl.description else None,
                decl.enabled if old["enabled"] != decl.enabled else None,
            )
            out.append(
                Change(
                    "webhook",
                    decl.url,
                    Action.update,
                    diff,
                    partial(self._update_webhook, found.id, spec, secret if rotate else None),
                )
            )
        declared = {d.url for d in decls}
        for url, sub in current.items():
            if url not in declared:
                gone.append(self._gone("webhook", url, partial(self._delete_webhook, sub.id)))

    async def _create_webhook(self, spec: WebhookSpec, secret: str | None) -> None:
        await self._s.webhooks.create(spec, self._ctx, secret=secret)

    async def _update_webhook(self, sid: Any, spec: WebhookSpec, secret: str | None) -> None:
        if spec != WebhookSpec():
            await self._s.webhooks.update(sid, spec, self._ctx)
        if secret is not None:
            await self._s.webhooks.rotate_secret(sid, self._ctx, secret=secret)

    async def _delete_webhook(self, sid: Any) -> None:
        await self._s.webhooks.delete(sid, self._ctx)

    # ---- bootstrap admins -------------------------------------------------------------------

    async def _admins(self, decls: Sequence[AdminDecl], out: list[Change]) -> None:
        users = self._s.accounts.users
        admin = BuiltinRole.admin.value
        for i, decl in enumerate(decls):
            password = self._secret(f"admins[{i}].password", decl.password)
            try:
                found = await users.find(decl.email)
            except UserNotFound:
                shown = [FieldChange("roles", None, [admin])]
                if password is not None:
                    shown.append(FieldChange("password", None, "(set)", secret=True))
                out.append(
                    Change(
                        "admin",
                        decl.email,
                        Action.create,
                        shown,
                        partial(self._create_admin, decl.email, password),
                    )
                )
                continue
            if admin in found.roles:
                out.append(Change("admin", decl.email, Action.unchanged))
                continue
            roles = sorted({*found.roles, admin})
            out.append(
                Change(
                    "admin",
                    decl.email,
                    Action.update,
                    [FieldChange("roles", sorted(found.roles), roles)],
                    partial(self._grant_admin, found.id, roles),
                )
            )

    async def _create_admin(self, email: str, password: str | None) -> None:
        registration = self._s.accounts.registration
        await registration.create_user(email, password, admin=True, ctx=self._ctx)

    async def _grant_admin(self, user_id: Any, roles: list[str]) -> None:
        await self._s.accounts.users.admin_update(user_id, self._ctx, roles=roles)


def _client_spec(decl: ClientDecl) -> ClientSpec:
    return ClientSpec(
        name=decl.name,
        client_type=decl.type,
        redirect_uris=tuple(decl.redirect_uris),
        post_logout_redirect_uris=tuple(decl.post_logout_redirect_uris),
        grant_types=tuple(decl.grant_types),
        scope=decl.scope,
        resources=tuple(decl.resources),
        first_party=decl.first_party,
        token_endpoint_auth_method=decl.token_endpoint_auth_method,
        id_token_signed_response_alg=decl.id_token_signed_response_alg,
        require_pushed_authorization_requests=decl.require_pushed_authorization_requests,
        jwks=decl.jwks,
        jwks_uri=decl.jwks_uri,
    )


def client_fields(spec: ClientSpec) -> dict[str, Any]:
    """A client's declarable fields, as the plan compares and shows them."""
    return {
        "name": spec.name,
        "redirect_uris": list(spec.redirect_uris),
        "post_logout_redirect_uris": list(spec.post_logout_redirect_uris),
        "grant_types": list(spec.grant_types),
        "scope": spec.scope,
        "resources": list(spec.resources),
        "first_party": spec.first_party,
        "token_endpoint_auth_method": spec.token_endpoint_auth_method,
        "id_token_signed_response_alg": spec.id_token_signed_response_alg,
        "require_pushed_authorization_requests": spec.require_pushed_authorization_requests,
        "jwks": spec.jwks,
        "jwks_uri": spec.jwks_uri,
    }


def _connector_fields(c: Connector) -> dict[str, Any]:
    return {
        "name": c.name,
        "issuer": c.issuer,
        "client_id": c.client_id,
        "scope": c.scope,
        "trust_email": c.trust_email,
        "allow_signup": c.allow_signup,
        "enabled": c.enabled,
        **connector_options(c),
    }


def connector_options(c: Connector) -> dict[str, Any]:
    """The type-specific settings as a realm file declares them (``options`` of the row)."""
    return {
        "authorization_url": c.options.get("authorization_url"),
        "token_url": c.options.get("token_url"),
        "userinfo_url": c.options.get("userinfo_url"),
        "claims": dict(c.options.get("claims", {})),
        "group_roles": c.group_roles,
        "store_tokens": c.store_tokens,
    }
