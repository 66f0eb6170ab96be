"""Secret references of a realm file, resolved when apply runs (ADR 0930): never stored in
the file, never printed, never in audit details."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from auth_service.realm.model import SecretRef


class UnresolvedSecret(Exception):
    """A reference that names no readable secret; the message names the reference only."""


def resolve(
    ref: SecretRef | None, *, base: Path, environ: Mapping[str, str] | None = None
) -> str | None:
    """The secret ``ref`` points at; None for no reference or ``{keep: true}``.

    A file is read relative to ``base`` (the realm file's folder) and loses one trailing
    line break (``echo secret > file``); an empty secret is refused.
    """
    if ref is None or ref.keep:
        return None
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env)
        if value is None:
            raise UnresolvedSecret(f"environment variable {ref.env} is not set")
    else:
        path = base / str(ref.file)
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UnresolvedSecret(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UnresolvedSecret(f"{path} is not UTF-8 text") from None
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise UnresolvedSecret(f"the secret in {ref.shown()} is empty")
    return value
