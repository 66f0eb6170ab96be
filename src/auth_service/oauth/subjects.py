"""Subject identifiers (OpenID Connect Core 8): the ``sub`` a client sees for a user.

``public`` clients see the user's id. ``pairwise`` clients (section 8.1) see
``base64url(HMAC-SHA256(key, sector || 0x00 || user id))``: stable for a user and a sector,
different between sectors, and not linkable to the user's id or to another sector's value
without the key. The key is derived from the master key (purpose
``oauth-pairwise-subject``), so it survives restarts and is the same on every replica; the
sector is the host of the client's redirect URIs (``Client.sector``; ADR 0741).

The same value is the ``sub`` of the ID token, the access token (so introspection and
userinfo say it too) and the refresh token's introspection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from auth_service.oauth.clients import Client

PURPOSE = "oauth-pairwise-subject"


def pairwise(key: bytes, sector: str, user_id: uuid.UUID) -> str:
    """Section 8.1: the pairwise identifier of ``user_id`` in ``sector``."""
    mac = hmac.new(key, sector.encode() + b"\x00" + str(user_id).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


class Subjects:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, client: Client, user_id: uuid.UUID) -> str:
        """The ``sub`` ``client`` sees for ``user_id``."""
        sector = client.sector
        if client.subject_type != "pairwise" or sector is None:
            return str(user_id)
        return pairwise(self._key, sector, user_id)
