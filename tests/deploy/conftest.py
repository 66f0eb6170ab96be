"""Fixtures of the deployment tests: the real helm and the chart rendered with every values
file (tests/deploy/deploy_support.py)."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import OVERLAYS, VALUES_FILES, Obj, ensure_tool, render


@pytest.fixture(scope="session")
def helm() -> str:
    return ensure_tool("helm", "helm")


@pytest.fixture(scope="session")
def rendered(helm: str) -> dict[str, list[Obj]]:
    """Every values file -> its rendered objects (values.yaml alone = the chart defaults; an
    overlay on top of values-production.yaml)."""
    renders = {v: render(helm, () if v == "values.yaml" else (v,)) for v in VALUES_FILES}
    renders |= {o: render(helm, ("values-production.yaml", o)) for o in OVERLAYS}
    return renders


@pytest.fixture(params=VALUES_FILES + OVERLAYS)
def objects(request: pytest.FixtureRequest, rendered: dict[str, list[Obj]]) -> list[Obj]:
    result: list[Obj] = rendered[request.param]
    return result
