"""WebAuthn ceremonies with py_webauthn (W3C Web Authentication Level 3).

Registration (section 7.1) and authentication (section 7.2) options and the verification of
their results. Stateless: the caller keeps the challenge (in a flow) between the two halves.
Every failure of a client's response is ``InvalidFactor``, whatever the library found wrong.

py_webauthn (and the pyOpenSSL, cbor2 and asn1 modules it brings, ~16 MiB) is imported by the
ceremonies that use it, not with this module: every serving worker imports this module, and
most never see a passkey (ADR 0437).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from auth_service.config.settings import Settings
from auth_service.mfa.errors import InvalidFactor

if TYPE_CHECKING:
    from webauthn.helpers.structs import AuthenticationCredential, PublicKeyCredentialDescriptor

TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 16 * 1024


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]
    attestation: str  # a webauthn AttestationConveyancePreference value

    @classmethod
    def of(cls, settings: Settings) -> RelyingParty:
        """RP id and origins from ``mfa`` settings, defaulting to the public URL's."""
        public = urlsplit(settings.server.public_url)
        mfa = settings.mfa
        origin = f"{public.scheme}://{public.netloc}"
        return cls(
            id=mfa.rp_id or (public.hostname or "localhost"),
            name=mfa.rp_name or settings.ui.product_name,
            origins=list(mfa.origins) or [origin],
            attestation=mfa.attestation,
        )


@dataclass(frozen=True)
class Registered:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    device_type: str
    backed_up: bool
    transports: list[str]


@dataclass(frozen=True)
class Asserted:
    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    device_type: str
    backed_up: bool


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _descriptors(ids: list[tuple[bytes, list[str] | None]]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    found = []
    for raw, transports in ids:
        known = [AuthenticatorTransport(t) for t in transports or () if _transport(t)]
        found.append(PublicKeyCredentialDescriptor(id=raw, transports=known or None))
    return found


def _transport(value: str) -> bool:
    from webauthn.helpers.structs import AuthenticatorTransport

    return value in {t.value for t in AuthenticatorTransport}


def registration_options(
    rp: RelyingParty,
    user_id: uuid.UUID,
    user_name: str,
    display_name: str,
    existing: list[tuple[bytes, list[str] | None]],
) -> tuple[dict[str, Any], bytes]:
    """Options for ``navigator.credentials.create()`` and their challenge.

    A discoverable credential with user verification (a passkey, usable without a password:
    section 6.1 resident keys, 5.4.6 user verification); the user handle is the user's UUID
    (random, not personal data: section 14.6.1); known credentials are excluded.
    """
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_id.bytes,
        user_name=user_name,
        user_display_name=display_name,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference(rp.attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return json.loads(options_to_json(options)), options.challenge


def verify_registration(rp: RelyingParty, credential: Any, challenge: bytes) -> Registered:
    """Section 7.1 steps: client data, origin, RP id hash, UP and UV flags, attestation."""
    from webauthn import verify_registration_response
    from webauthn.helpers.exceptions import WebAuthnException

    text = _bounded(credential)
    try:
        verified = verify_registration_response(
            credential=text,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise InvalidFactor from None
    listed = json.loads(text).get("response", {}).get("transports")
    transports = (
        [t for t in listed if isinstance(t, str) and _transport(t)][:8]
        if isinstance(listed, list)
        else []
    )
    return Registered(
        verified.credential_id,
        verified.credential_public_key,
        verified.sign_count,
        verified.aaguid,
        verified.credential_device_type.value,
        verified.credential_backed_up,
        transports,
    )


def authentication_options(
    rp: RelyingParty, allowed: list[tuple[bytes, list[str] | None]], *, require_uv: bool
) -> tuple[dict[str, Any], bytes]:
    """Options for ``navigator.credentials.get()``: with ``allowed`` empty, any discoverable
    credential of this RP (usernameless sign-in, section 5.8.3 allowCredentials empty)."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=rp.id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allowed),
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if require_uv
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return json.loads(options_to_json(options)), options.challenge


def parse_assertion(credential: Any) -> AuthenticationCredential:
    """The credential id and user handle of an assertion, before it is verified."""
    from webauthn.helpers import parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        return parse_authentication_credential_json(_bounded(credential))
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise InvalidFactor from None


def verify_assertion(
    rp: RelyingParty,
    credential: AuthenticationCredential,
    challenge: bytes,
    public_key: bytes,
    *,
    require_uv: bool,
) -> Asserted:
    """Section 7.2 steps: client data, origin, RP id hash, flags, the signature.

    The sign count is compared by the caller (after the signature is known good), so a
    regression can be audited as a possible clone (section 6.1.1) instead of failing here.
    """
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origins,
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=require_uv,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise InvalidFactor from None
    return Asserted(
        verified.credential_id,
        verified.new_sign_count,
        verified.user_verified,
        verified.credential_device_type.value,
        verified.credential_backed_up,
    )


def sign_count_regressed(stored: int, presented: int) -> bool:
    """Section 6.1.1: a counter that does not grow (when either side counts) may mean the
    authenticator was cloned."""
    return (stored > 0 or presented > 0) and presented <= stored


def _bounded(credential: Any) -> Any:
    if isinstance(credential, str) and len(credential) > MAX_CREDENTIAL_JSON:
        raise InvalidFactor
    if isinstance(credential, dict):
        if len(json.dumps(credential)) > MAX_CREDENTIAL_JSON:
            raise InvalidFactor
        return json.dumps(credential)
    if not isinstance(credential, str):
        raise InvalidFactor
    return credential
