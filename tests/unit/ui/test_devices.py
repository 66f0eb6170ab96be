from __future__ import annotations

import pytest

from auth_service.ui.devices import describe

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/156.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_LINUX, "Chrome · Linux"),
        (SAFARI_IPHONE, "Safari · iPhone"),
        (EDGE_WINDOWS, "Edge · Windows"),
        (
            "Mozilla/5.0 (Windows NT 10.0; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox · Windows",
        ),
        ("python-httpx/0.29.0", "python-httpx"),
        ("curl/8.5.0", "curl"),
        ("<script>", None),
        ("", None),
        (None, None),
    ],
)
def test_describe(agent: str | None, expected: str | None) -> None:
    assert describe(agent) == expected
