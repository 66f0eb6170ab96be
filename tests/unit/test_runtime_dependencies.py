"""Every third-party module the service imports is a declared runtime dependency.

`make run` installs only the runtime dependencies; a module that happens to be present because
a dev tool pulled it in would pass every test and still crash `make run` on a fresh machine.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

SRC = Path(__file__).resolve().parents[2] / "src" / "auth_service"
# Installed with a declared dependency and part of its public contract.
TRANSITIVE_OK = {
    "starlette": "fastapi",
    "pydantic_core": "pydantic",  # its error and schema types are pydantic's validator API
    "h11": "uvicorn",  # a hard dependency; uvicorn's h11 protocol speaks its events
}


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "auth_service"}


def _declared_runtime_distributions() -> set[str]:
    """Read pyproject.toml itself: installed metadata may be older than the file."""
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    return {Requirement(line).name.lower().replace("_", "-") for line in project["dependencies"]}


def test_every_imported_module_is_a_runtime_dependency() -> None:
    declared = _declared_runtime_distributions()
    owners = metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_top_level_modules()):
        if module in TRANSITIVE_OK:
            assert TRANSITIVE_OK[module] in declared
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert dists, f"{module} is imported by src/ but not installed at all"
        if not dists & declared:
            missing.append(f"{module} (from {', '.join(sorted(dists))})")
    assert not missing, "imported but not in [project].dependencies: " + "; ".join(missing)
