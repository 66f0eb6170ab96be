"""Generate schemas/realm.schema.json (the realm file of `auth-service apply`) from the pydantic
models that load it (auth_service.realm.model).

python scripts/gen_realm_schema.py          # rewrite the file
python scripts/gen_realm_schema.py --check  # exit 1 when the committed file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from auth_service.realm.model import SCHEMA_PATH, schema

TARGET = Path(__file__).resolve().parents[1] / SCHEMA_PATH


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(
                f"{SCHEMA_PATH} is stale: run python scripts/gen_realm_schema.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
