"""The realm file (``realm.yaml``): these pydantic models ARE its loader and its JSON Schema
(``schemas/realm.schema.json`` is generated from them by ``scripts/gen_realm_schema.py``).

A section left out of the file is not managed (apply never touches that kind of object); a
section given, even empty, is the whole truth for its kind (``--prune`` deletes the rest).
Secrets are never written in the file: a secret field holds a reference (SecretRef).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from auth_service.audit import events
from auth_service.federation.connectors import ConnectorType
from auth_service.oauth.client_metadata import ClientType

SCHEMA_PATH = "schemas/realm.schema.json"
SCHEMA_ID = "https://auth-service.dev/schemas/realm.schema.json"

Text = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class RealmError(Exception):
    """The realm file cannot be used; ``problems`` are one line each, ``path: what``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_event_type(value: str) -> str:
    if value not in events.catalogue():
        raise ValueError(f"{value!r} is not an audit event type (src/auth_service/audit/events.py)")
    return value


class SecretRef(BaseModel):
    """Where apply reads a secret: ``{file: PATH}`` (a mounted secret; relative to the realm
    file; one trailing newline dropped) or ``{env: NAME}``; ``{keep: true}`` keeps the
    current secret (what ``export`` writes: the database cannot give a secret back)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [{"required": ["file"]}, {"required": ["env"]}, {"required": ["keep"]}]
        },
    )

    file: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")] | None = None
    keep: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [k for k in ("file", "env", "keep") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret reference has exactly one of file, env or keep")
        return self

    def shown(self) -> str:
        """How the plan names the reference (never the secret)."""
        if self.file is not None:
            return f"file {self.file}"
        return f"env {self.env}" if self.env is not None else "kept"


class RoleDecl(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.:-]{0,62}$")]
    description: Annotated[str, StringConstraints(max_length=200)] | None = None


class ClientDecl(_Strict):
    """An OAuth client (docs/oidc.md); fields left out take the same defaults as
    ``auth-service clients create``."""

    client_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]{1,64}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: ClientType
    redirect_uris: list[Uri] = []
    post_logout_redirect_uris: list[Uri] = []
    grant_types: list[Text] = Field(default_factory=lambda: ["authorization_code"])
    scope: Text = "openid"
    resources: list[Uri] = []
    first_party: bool = False
    token_endpoint_auth_method: Text | None = None
    id_token_signed_response_alg: Text = "RS256"  # noqa: S105 - an algorithm name
    require_pushed_authorization_requests: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: Uri | None = None
    client_secret: SecretRef | None = Field(
        default=None, description="client_secret_* methods: where the secret is (never itself)"
    )


class ConnectorDecl(_Strict):
    """An upstream identity provider (docs/federation.md)."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    type: ConnectorType
    client_id: Text
    issuer: Uri | None = None
    scope: Text | None = None
    trust_email: bool = False
    allow_signup: bool = True
    enabled: bool = True
    client_secret: SecretRef | None = None
    # oauth2 connectors: the provider's endpoints; any type: claim mapping, groups -> roles,
    # and whether the upstream tokens are kept (docs/federation.md).
    authorization_url: Uri | None = None
    token_url: Uri | None = None
    userinfo_url: Uri | None = None
    claims: dict[Text, Text] | None = None
    group_roles: dict[Text, Text] | None = None
    store_tokens: bool = False


# Checked against the audit catalogue by the loader, not listed in the schema: the
# catalogue grows with every feature, and the committed schema should not have to follow.
EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_event_type),
]


class WebhookDecl(_Strict):
    """A webhook subscription, known by its URL (one subscription per URL in a file)."""

    url: Uri
    event_types: list[EventType] = Field(min_length=1, max_length=100)
    description: Annotated[str, StringConstraints(max_length=200)] = ""
    enabled: bool = True
    secret: SecretRef | None = Field(
        default=None, description="whsec_... signing secret; left out: one is generated"
    )


class AdminDecl(_Strict):
    """A bootstrap administrator: created when missing (with ``password`` when given, else
    without one until a reset), given the admin role when it lacks it; never demoted or
    deleted by apply, and an existing account's password is never changed."""

    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    password: SecretRef | None = None


class RealmFile(_Strict):
    """What ``auth-service apply -f`` reads and ``auth-service export`` writes."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="auth-service realm",
        json_schema_extra={"$id": SCHEMA_ID},
    )

    version: Literal[1] = Field(description="the format of this file")
    roles: list[RoleDecl] | None = None
    clients: list[ClientDecl] | None = None
    connectors: list[ConnectorDecl] | None = None
    webhooks: list[WebhookDecl] | None = None
    admins: list[AdminDecl] | None = None

    @model_validator(mode="after")
    def _unique(self) -> RealmFile:
        problems: list[str] = []
        for section, key in (
            ("roles", "name"),
            ("clients", "client_id"),
            ("connectors", "id"),
            ("webhooks", "url"),
            ("admins", "email"),
        ):
            seen: set[str] = set()
            for i, item in enumerate(getattr(self, section) or ()):
                value = str(getattr(item, key)).lower() if key == "email" else getattr(item, key)
                if value in seen:
                    problems.append(f"{section}[{i}].{key}: {value!r} is declared twice")
                seen.add(value)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def schema() -> dict[str, Any]:
    """The JSON Schema of the realm file (draft 2020-12)."""
    doc = RealmFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **doc}


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at ``loc`` (the parent of an unknown key) accepts."""
    model: Any = RealmFile
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def problems_of(exc: ValidationError) -> list[str]:
    """One ``path: what`` line per error, the path as in the file (``clients[2].name``)."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-after"))
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            line = f'{_path(loc)}: unknown key "{key}"'
            close = difflib.get_close_matches(key, _known_keys(loc[:-1]), n=1)
            if close:
                line += f" (did you mean {_path((*loc[:-1], close[0]))}?)"
            lines.append(line)
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{_path(loc)}: {message}" if loc else message)
    return lines


def parse(data: Any) -> RealmFile:
    """The realm of a parsed document. Raises RealmError naming each problem's path."""
    if not isinstance(data, dict):
        raise RealmError(["(top level): a realm file is a mapping (version: 1, roles: ...)"])
    try:
        return RealmFile.model_validate(data)
    except ValidationError as exc:
        raise RealmError(problems_of(exc)) from None


def load(path: Path) -> RealmFile:
    """Read and check a realm file (YAML or JSON). Raises RealmError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RealmError([f"cannot read {path}: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RealmError([f"{path} is not valid YAML{where}"]) from None
    return parse(data)
