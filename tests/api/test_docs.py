"""/docs works without internet: every asset it references is served by the service itself,
and the docs CSP allows this origin only."""

from __future__ import annotations

import re

from swagger_ui_bundle import swagger_ui_path

from tests.support.api import SQLITE_ONLY, Api

pytestmark = SQLITE_ONLY
_REFERENCE = re.compile(r"""(?:src|href)="([^"]*)\"""")


async def test_docs_reference_only_same_origin_assets_and_they_are_served(api: Api) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    # No inline script: every <script> has a src (the CSP would refuse inline code).
    assert page.count("<script") == page.count("<script src=") == 2, page
    assert "style=" not in page
    assert "<style" not in page
    references = _REFERENCE.findall(page)
    assert len(references) == 4, references  # stylesheet, icon, Swagger UI, its initialiser
    for url in references:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert asset.headers["content-type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "image/png",
        ), url
    bundle = next(u for u in references if u.endswith("/swagger-ui-bundle.js"))
    served = (await api.client.get(bundle)).content
    assert served == (swagger_ui_path / "swagger-ui-bundle.js").read_bytes()
    spec_url = re.search(r'data-openapi-url="([^"]+)"', page)
    assert spec_url is not None
    assert (await api.client.get(spec_url.group(1))).json()["openapi"].startswith("3.1")


async def test_docs_csp_allows_this_origin_only(api: Api) -> None:
    for path in ("/docs", "/docs/init.js"):
        csp = (await api.client.get(path)).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["img-src"] == "'self' data:"
        assert directives["connect-src"] == "'self'"
        assert "http" not in csp, csp
        assert "unsafe" not in csp, csp
    # The API keeps its strict policy; a path that merely starts with /docs is not the docs.
    for path in ("/openapi.json", "/docsx"):
        csp = (await api.client.get(path)).headers["content-security-policy"]
        assert csp == "default-src 'none'; frame-ancestors 'none'", path


async def test_only_the_listed_assets_are_served(api: Api) -> None:
    page = (await api.client.get("/docs")).text
    css = next(u for u in _REFERENCE.findall(page) if u.endswith(".css"))
    base = css.rsplit("/", 1)[0]
    for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "nope.js"):
        r = await api.client.get(f"{base}/{name}")
        assert r.status_code == 404, name
        assert r.headers["content-type"] == "application/problem+json"
    assert (await api.client.get(css)).headers["cache-control"] == (
        "public, max-age=31536000, immutable"
    )


async def test_docs_are_not_in_the_openapi_document(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/docs")]
