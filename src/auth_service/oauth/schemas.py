"""API shapes of the clients (admin API ``/v1/admin/clients``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.oauth.clients import Client
from auth_service.security.text import PlainText

UriList = list[PlainText]


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(min_length=1, max_length=200)
    type: Literal["confidential", "public"]
    redirect_uris: UriList = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: UriList = Field(default_factory=list, max_length=20)
    grant_types: list[PlainText] = Field(
        default_factory=lambda: ["authorization_code"], min_length=1, max_length=8
    )
    scope: PlainText = Field("openid", max_length=2048)
    resources: UriList = Field(default_factory=list, max_length=20)
    first_party: bool = False
    token_endpoint_auth_method: PlainText | None = Field(None, max_length=64)
    id_token_signed_response_alg: PlainText = Field("RS256", max_length=16)
    require_pushed_authorization_requests: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: PlainText | None = Field(None, max_length=2048)
    subject_type: Literal["public", "pairwise"] = "public"
    sector_identifier_uri: PlainText | None = Field(
        None, max_length=2048, description="not supported: refused (docs/oidc.md)"
    )
    backchannel_logout_uri: PlainText | None = Field(None, max_length=2048)
    backchannel_logout_session_required: bool = False
    token_exchange_audiences: UriList = Field(default_factory=list, max_length=20)

    def spec(self) -> ClientSpec:
        return ClientSpec(
            name=self.name,
            client_type=ClientType(self.type),
            redirect_uris=tuple(self.redirect_uris),
            post_logout_redirect_uris=tuple(self.post_logout_redirect_uris),
            grant_types=tuple(self.grant_types),
            scope=self.scope,
            resources=tuple(self.resources),
            first_party=self.first_party,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            id_token_signed_response_alg=self.id_token_signed_response_alg,
            require_pushed_authorization_requests=self.require_pushed_authorization_requests,
            jwks=self.jwks,
            jwks_uri=self.jwks_uri,
            subject_type=self.subject_type,
            sector_identifier_uri=self.sector_identifier_uri,
            backchannel_logout_uri=self.backchannel_logout_uri,
            backchannel_logout_session_required=self.backchannel_logout_session_required,
            token_exchange_audiences=tuple(self.token_exchange_audiences),
        )


class ClientPatch(BaseModel):
    """Fields to change; the type of a client never changes."""

    model_config = ConfigDict(extra="forbid")

    name: PlainText | None = Field(None, min_length=1, max_length=200)
    redirect_uris: UriList | None = Field(None, max_length=20)
    post_logout_redirect_uris: UriList | None = Field(None, max_length=20)
    grant_types: list[PlainText] | None = Field(None, min_length=1, max_length=8)
    scope: PlainText | None = Field(None, max_length=2048)
    resources: UriList | None = Field(None, max_length=20)
    first_party: bool | None = None
    token_endpoint_auth_method: PlainText | None = Field(None, max_length=64)
    id_token_signed_response_alg: PlainText | None = Field(None, max_length=16)
    require_pushed_authorization_requests: bool | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: PlainText | None = Field(None, max_length=2048)
    subject_type: Literal["public", "pairwise"] | None = None
    backchannel_logout_uri: PlainText | None = Field(None, max_length=2048)
    backchannel_logout_session_required: bool | None = None
    token_exchange_audiences: UriList | None = Field(None, max_length=20)

    def changes(self) -> dict[str, Any]:
        """``ClientSpec`` keyword changes of the fields that were sent."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = tuple(value) if isinstance(value, list) else value
        return out


class ClientOut(BaseModel):
    client_id: str
    name: str
    type: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scope: str
    resources: list[str]
    first_party: bool
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str
    require_pushed_authorization_requests: bool
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    subject_type: str
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    token_exchange_audiences: list[str]
    dynamically_registered: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, client: Client) -> ClientOut:
        return cls(
            client_id=client.client_id,
            name=client.name,
            type=client.client_type.value,
            redirect_uris=list(client.redirect_uris),
            post_logout_redirect_uris=list(client.post_logout_redirect_uris),
            grant_types=list(client.grant_types),
            scope=" ".join(client.scopes),
            resources=list(client.resources),
            first_party=client.first_party,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            id_token_signed_response_alg=client.id_token_signed_response_alg,
            require_pushed_authorization_requests=client.require_pushed_authorization_requests,
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            subject_type=client.subject_type,
            backchannel_logout_uri=client.backchannel_logout_uri,
            backchannel_logout_session_required=client.backchannel_logout_session_required,
            token_exchange_audiences=list(client.token_exchange_audiences),
            dynamically_registered=client.dynamically_registered,
            created_at=client.created_at,
            updated_at=client.updated_at,
        )


class CreatedClient(ClientOut):
    """A new client; ``client_secret`` is shown this once (confidential clients)."""

    client_secret: str | None


class RotateSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int | None = Field(
        None, ge=0, le=365 * 24 * 3600, description="default: oauth.secret_rotation_overlap_seconds"
    )


class RotatedSecret(BaseModel):
    client_id: str
    client_secret: str
    previous_secret_expires_at: datetime | None
