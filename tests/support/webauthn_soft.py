"""A small software WebAuthn authenticator for the API tests: real bytes, no mock.

It answers the options our server sends (``publicKey`` of the JSON API) with what a browser
would return from ``navigator.credentials.create()`` / ``.get()`` (RegistrationResponseJSON,
AuthenticationResponseJSON), signed with its own P-256 keys, so py_webauthn verifies them as
it would a real authenticator's: client data, RP id hash, flags (UP, UV, BE/BS), sign counts,
``none`` or ``packed`` (self) attestation (W3C WebAuthn Level 3, sections 6.1, 6.5, 8.2).

    authenticator = SoftAuthenticator(origin="http://localhost:8000")
    credential = authenticator.create(options["publicKey"])          # register
    assertion = authenticator.get(options["publicKey"])              # sign in
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes.fromhex("a11ce0de" * 4)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    origin: str
    user_verification: bool = True  # can it verify the user (and will it, when asked)?
    attestation: str = "none"  # or "packed" (self attestation)
    synced: bool = False  # backup eligible and backed up: a multi-device passkey
    counter_step: int = 1  # 0: a counter that never moves (allowed when it stays 0)
    credentials: list[Credential] = field(default_factory=list)

    def _flags(self, *, attested: bool, uv: bool) -> int:
        flags = UP | (UV if uv else 0) | (AT if attested else 0)
        if self.synced:
            flags |= BE | BS
        return flags

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict[str, Any], *, uv: bool | None = None) -> dict[str, Any]:
        """RegistrationResponseJSON for ``options`` (PublicKeyCredentialCreationOptionsJSON)."""
        rp_id = options["rp"]["id"]
        user_handle = unb64url(options["user"]["id"])
        credential = Credential(
            os.urandom(32), ec.generate_private_key(ec.SECP256R1()), rp_id, user_handle
        )
        verified = self.user_verification if uv is None else uv
        client_data = self._client_data("webauthn.create", options["challenge"])
        attested = AAGUID + struct.pack(">H", len(credential.id)) + credential.id
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(attested=True, uv=verified)])
            + struct.pack(">I", credential.sign_count)
            + attested
            + credential.cose_public_key()
        )
        statement: dict[str, Any] = {}
        if self.attestation == "packed":
            signed = auth_data + hashlib.sha256(client_data).digest()
            statement = {"alg": -7, "sig": credential.key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        attestation_object = cbor2.dumps(
            {"fmt": self.attestation, "attStmt": statement, "authData": auth_data}
        )
        self.credentials.append(credential)
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        uv: bool | None = None,
        credential: Credential | None = None,
        origin: str | None = None,
    ) -> dict[str, Any]:
        """AuthenticationResponseJSON for ``options`` (PublicKeyCredentialRequestOptionsJSON):
        the first credential of the RP that ``allowCredentials`` admits (any, when empty)."""
        rp_id = options["rpId"]
        allowed = {unb64url(c["id"]) for c in options.get("allowCredentials") or []}
        chosen = credential or next(
            c for c in self.credentials if c.rp_id == rp_id and (not allowed or c.id in allowed)
        )
        chosen.sign_count += self.counter_step
        verified = self.user_verification if uv is None else uv
        client = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": options["challenge"],
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(attested=False, uv=verified)])
            + struct.pack(">I", chosen.sign_count)
        )
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(chosen.id),
            "rawId": b64url(chosen.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(chosen.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
