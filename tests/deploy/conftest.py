"""Fixtures of the deployment tests: the real helm and the chart rendered with every values
file (tests/deploy/deploy_support.py)."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import VALUES_FILES, Obj, ensure_tool, render


@pytest.fixture(scope="session")
def helm() -> str:
    return ensure_tool("helm", "helm")


@pytest.fixture(scope="session")
def rendered(helm: str) -> dict[str, list[Obj]]:
    """Every values file -> its rendered objects (values.yaml alone = the chart defaults)."""
    return {v: render(helm, () if v == "values.yaml" else (v,)) for v in VALUES_FILES}


@pytest.fixture(params=VALUES_FILES)
def objects(request: pytest.FixtureRequest, rendered: dict[str, list[Obj]]) -> list[Obj]:
    result: list[Obj] = rendered[request.param]
    return result
