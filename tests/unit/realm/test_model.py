"""The realm file's models are its loader and its JSON Schema: the committed schema matches
them, the example validates under both, and a refused key is named by its path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from auth_service.realm.model import SCHEMA_PATH, RealmError, load, parse

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "realm" / "realm.yaml"


def test_the_committed_schema_is_generated_from_the_models() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_realm_schema.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_example_validates_under_the_schema_and_the_loader() -> None:
    schema = json.loads((REPO / SCHEMA_PATH).read_text())
    data = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(data, schema)
    realm = load(EXAMPLE)
    assert [c.client_id for c in realm.clients or ()] == ["web", "cli"]
    # The editor's line points at the committed schema.
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/realm.schema.json"
    assert (EXAMPLE.parent / first.split("$schema=")[1]).resolve() == REPO / SCHEMA_PATH


def _problems(data: object) -> list[str]:
    with pytest.raises(RealmError) as caught:
        parse(data)
    return caught.value.problems


def test_an_unknown_key_is_named_by_its_path_with_the_likely_one() -> None:
    clients = [
        {"client_id": f"c{i}", "name": "n", "type": "public", "redirect_uris": ["https://a/cb"]}
        for i in range(3)
    ]
    clients[2]["redirect_uri"] = clients[2].pop("redirect_uris")
    assert _problems({"version": 1, "clients": clients}) == [
        'clients[2].redirect_uri: unknown key "redirect_uri" '
        "(did you mean clients[2].redirect_uris?)"
    ]
    assert _problems({"version": 1, "rolez": []}) == [
        'rolez: unknown key "rolez" (did you mean roles?)'
    ]
    secret = {"file": "x", "value": "plain"}
    problems = _problems(
        {
            "version": 1,
            "clients": [{"client_id": "w", "name": "n", "type": "confidential"}],
            "connectors": [
                {
                    "id": "g",
                    "name": "G",
                    "type": "google",
                    "client_id": "i",
                    "client_secret": secret,
                }
            ],
        }
    )
    assert problems == ['connectors[0].client_secret.value: unknown key "value"']


def test_a_secret_is_only_ever_a_reference() -> None:
    base = {"client_id": "w", "name": "n", "type": "confidential"}
    literal = _problems({"version": 1, "clients": [{**base, "client_secret": "s3cret"}]})
    assert literal[0].startswith("clients[0].client_secret: ")
    assert "s3cret" not in " ".join(literal)
    two = _problems(
        {"version": 1, "clients": [{**base, "client_secret": {"file": "a", "env": "B"}}]}
    )
    assert two == [
        "clients[0].client_secret: a secret reference has exactly one of file, env or keep"
    ]


def test_an_event_type_outside_the_audit_catalogue_is_refused() -> None:
    hook = {"url": "https://crm.example.com/h", "event_types": ["user.registered", "user.made_up"]}
    assert _problems({"version": 1, "webhooks": [hook]}) == [
        "webhooks[0].event_types[1]: 'user.made_up' is not an audit event type "
        "(src/auth_service/audit/events.py)"
    ]


def test_duplicates_and_a_missing_version_are_refused() -> None:
    assert _problems({"roles": []}) == ["version: Field required"]
    twice = _problems({"version": 1, "roles": [{"name": "a"}, {"name": "a"}]})
    assert twice == ["roles[1].name: 'a' is declared twice"]
    assert _problems(["not", "a", "mapping"])[0].startswith("(top level): ")
