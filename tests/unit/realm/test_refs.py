"""Secret references are resolved at apply time: a file relative to the realm file (one
trailing newline dropped), an environment variable, or keep; an unusable one is named by the
reference, never by a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth_service.realm.model import SecretRef
from auth_service.realm.refs import UnresolvedSecret, resolve


def test_a_file_is_read_relative_to_the_realm_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "web").write_text("s3cret value\n")
    assert resolve(SecretRef(file="secrets/web"), base=tmp_path) == "s3cret value"
    absolute = SecretRef(file=str(tmp_path / "secrets" / "web"))
    assert resolve(absolute, base=Path("/nowhere")) == "s3cret value"


def test_an_environment_variable_and_keep() -> None:
    env = {"WEB_SECRET": "from-env"}
    assert resolve(SecretRef(env="WEB_SECRET"), base=Path(), environ=env) == "from-env"
    assert resolve(SecretRef(keep=True), base=Path(), environ=env) is None
    assert resolve(None, base=Path(), environ=env) is None


def test_an_unusable_reference_names_itself_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(UnresolvedSecret, match="MISSING is not set"):
        resolve(SecretRef(env="MISSING"), base=tmp_path, environ={})
    with pytest.raises(UnresolvedSecret, match="cannot read"):
        resolve(SecretRef(file="absent"), base=tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UnresolvedSecret, match="is empty"):
        resolve(SecretRef(file="empty"), base=tmp_path)
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(UnresolvedSecret, match="not UTF-8"):
        resolve(SecretRef(file="binary"), base=tmp_path)
