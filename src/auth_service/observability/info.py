"""Identity of the running process: build (version, commit, Python) and configuration hash.

Both are exported as ``*_info`` gauges so a dashboard can tell which build and which
configuration every instance runs, and an alert can spot skew between replicas.
"""

from __future__ import annotations

import importlib
import os
import platform

from auth_service import __version__
from auth_service.config.digest import config_hash
from auth_service.config.settings import Settings
from auth_service.observability import metrics

UNKNOWN = "unknown"
_MAX_COMMIT_LENGTH = 40


def build_commit() -> str:
    """The VCS commit of this build: ``AUTH_BUILD_COMMIT``, else a generated ``_build.py``.

    The container build writes ``auth_service/_build.py`` (``COMMIT = "..."``); a source
    checkout has neither and reports ``unknown``.
    """
    commit = os.environ.get("AUTH_BUILD_COMMIT", "").strip()
    if not commit:
        try:
            module = importlib.import_module("auth_service._build")
        except ImportError:
            return UNKNOWN
        commit = str(getattr(module, "COMMIT", "")).strip()
    # A label value comes from outside the process: keep it short and printable.
    commit = "".join(c for c in commit if c.isalnum() or c in "-._")[:_MAX_COMMIT_LENGTH]
    return commit or UNKNOWN


_applied_hash: str | None = None


def record_identity(settings: Settings) -> None:
    """Set ``auth_build_info`` and ``auth_config_info`` (at start)."""
    metrics.BUILD_INFO.labels(__version__, build_commit(), platform.python_version()).set(1)
    record_config(settings)


def record_config(settings: Settings) -> None:
    """Point ``auth_config_info`` at the hash of ``settings`` (at start, after a reload)."""
    global _applied_hash
    current = config_hash(settings)
    if _applied_hash is not None and _applied_hash != current:
        # Set to 0 rather than removed: in multiprocess mode a removed series would keep its
        # last value in this worker's file. Queries select the applied one with `== 1`.
        metrics.CONFIG_INFO.labels(_applied_hash).set(0)
    metrics.CONFIG_INFO.labels(current).set(1)
    _applied_hash = current
