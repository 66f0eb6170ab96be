"""A short, stable digest of the effective configuration, secrets left out.

Reload results and audit events carry it; ``auth_config_info{hash}`` exports it so a
dashboard can tell which configuration each instance runs and an alert can spot skew.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from auth_service.config.settings import Settings


def _without_secrets(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        # Rotating a secret is not a configuration change worth a new hash; whether it is set is.
        return "<set>"
    if isinstance(value, BaseModel):
        return {k: _without_secrets(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_without_secrets(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def config_hash(settings: Settings) -> str:
    """A short, stable hash of the effective settings with every secret left out."""
    canonical = json.dumps(
        _without_secrets(settings), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
