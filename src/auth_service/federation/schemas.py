"""API shapes of connectors (``/v1/admin/connectors``); the client secret is write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from auth_service.federation.connectors import Connector, ConnectorSpec, ConnectorType
from auth_service.security.text import PlainText

# The slug rule (a-z, 0-9, - and _) is the service's: a 422 invalid-connector names it.
ConnectorId = Annotated[PlainText, StringConstraints(min_length=1, max_length=64)]
Label = Annotated[PlainText, StringConstraints(min_length=1, max_length=100)]
Url = Annotated[PlainText, StringConstraints(min_length=1, max_length=512)]
Secret = Annotated[PlainText, StringConstraints(min_length=1, max_length=512)]
Path = Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]
ClaimName = Literal["subject", "email", "email_verified", "name", "groups"]
GroupName = Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]
RoleName = Annotated[PlainText, StringConstraints(min_length=1, max_length=64)]
Claims = Annotated[
    dict[ClaimName, Path],
    Field(description="userinfo field of each claim: a dotted path or a JSON pointer"),
]
GroupRoles = Annotated[
    dict[GroupName, RoleName],
    Field(description="upstream group to local role, granted and revoked at each sign-in"),
]


class ConnectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ConnectorId
    name: Label
    type: ConnectorType
    client_id: Url
    issuer: Url | None = None
    client_secret: Secret | None = Field(default=None, description="write-only")
    scope: Url | None = None
    trust_email: bool = False
    allow_signup: bool = True
    authorization_url: Url | None = Field(default=None, description="oauth2 only")
    token_url: Url | None = Field(default=None, description="oauth2 only")
    userinfo_url: Url | None = Field(default=None, description="oauth2 only")
    claims: Claims | None = None
    store_tokens: bool = Field(default=False, description="keep upstream tokens (encrypted)")
    group_roles: GroupRoles | None = None

    def spec(self) -> ConnectorSpec:
        return ConnectorSpec(**self.model_dump())


class ConnectorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label | None = None
    issuer: Url | None = None
    client_id: Url | None = None
    client_secret: Secret | None = Field(default=None, description="write-only")
    scope: Url | None = None
    trust_email: bool | None = None
    allow_signup: bool | None = None
    enabled: bool | None = None
    authorization_url: Url | None = None
    token_url: Url | None = None
    userinfo_url: Url | None = None
    claims: Claims | None = None
    store_tokens: bool | None = None
    group_roles: GroupRoles | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude={"client_secret"})
        return {k: v for k, v in given.items() if v is not None}


class ConnectorOut(BaseModel):
    id: str
    name: str
    type: ConnectorType
    issuer: str
    client_id: str
    client_secret_set: bool
    scope: str
    trust_email: bool
    allow_signup: bool
    enabled: bool
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    claims: dict[str, str] = Field(description="the claim mapping in force")
    store_tokens: bool
    group_roles: dict[str, str]
    redirect_uri: str = Field(description="register this at the provider")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, connector: Connector, redirect_uri: str) -> ConnectorOut:
        return cls(
            id=connector.id,
            name=connector.name,
            type=connector.type,
            issuer=connector.issuer,
            client_id=connector.client_id,
            client_secret_set=connector.has_secret,
            scope=connector.scope,
            trust_email=connector.trust_email,
            allow_signup=connector.allow_signup,
            enabled=connector.enabled,
            authorization_url=_endpoint(connector, "authorization_url"),
            token_url=_endpoint(connector, "token_url"),
            userinfo_url=_endpoint(connector, "userinfo_url"),
            claims=connector.claims,
            store_tokens=connector.store_tokens,
            group_roles=connector.group_roles,
            redirect_uri=redirect_uri,
            created_at=connector.created_at,
            updated_at=connector.updated_at,
        )


def _endpoint(connector: Connector, name: str) -> str | None:
    if connector.type in (ConnectorType.oauth2, ConnectorType.github):
        return connector.endpoint(name)
    return None  # discovered from the issuer
