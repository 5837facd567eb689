"""The UI routes without a browser: what `/`, `/static/` and `/docs` serve, and that nothing points off this server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from app.api.ui import STATIC_DIR, openapi_config, ui_router

PAGE_MODULES = STATIC_DIR / "js"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@get("/v1/models", sync_to_thread=False)
def _models() -> dict[str, object]:
    return {"object": "list", "data": [{"id": "tiny.en", "object": "model"}]}


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    app = Litestar([ui_router(), _models], openapi_config=openapi_config("STT appliance", "1.2.3"))
    with TestClient(app) as c:
        yield c


def test_index_is_the_page_with_a_strict_policy(client: TestClient[Litestar]) -> None:
    res = client.get("/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert "<form" in res.text and 'id="file"' in res.text
    csp = res.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert not EXTERNAL.search(res.text)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/static/js/main.js", "text/javascript"),
        ("/static/mic-worklet.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "javascript"),
        ("/static/vendor/swagger-ui/swagger-ui-standalone-preset.js", "javascript"),
        ("/static/vendor/swagger-ui/swagger-ui.css", "text/css"),
    ],
)
def test_static_files_are_served(client: TestClient[Litestar], path: str, kind: str) -> None:
    res = client.get(path)
    assert res.status_code == 200
    assert kind in res.headers["content-type"]
    assert len(res.content) > 100


def test_static_does_not_escape_its_folder(client: TestClient[Litestar]) -> None:
    assert client.get("/static/../api/ui.py").status_code == 404
    assert client.get("/static/%2e%2e/api/ui.py").status_code == 404


def test_docs_load_swagger_from_us(client: TestClient[Litestar]) -> None:
    res = client.get("/docs")
    assert res.status_code == 200
    html = res.text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    assert "/static/vendor/swagger-ui/swagger-ui-standalone-preset.js" in html
    assert not EXTERNAL.search(html), "the docs page loads something from another host"
    assert "jsdelivr" not in html and "unpkg" not in html


def test_schema_lists_the_api_but_not_the_page(client: TestClient[Litestar]) -> None:
    schema = client.get("/docs/openapi.json").json()
    assert schema["info"] == {"title": "STT appliance", "version": "1.2.3"}
    assert "/v1/models" in schema["paths"]
    assert "/" not in schema["paths"]
    assert not any(p.startswith("/static") for p in schema["paths"])


def test_page_needs_no_external_assets_on_disk() -> None:
    for path in (STATIC_DIR / "index.html", STATIC_DIR / "style.css", *PAGE_MODULES.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name


def test_the_page_is_es_modules_each_served_as_javascript(client: TestClient[Litestar]) -> None:
    """index.html loads one module; every module it imports (and theirs) is a file here, served as JavaScript
    (a browser refuses a module of another type), and every module in the folder is in that graph."""
    page = client.get("/").text
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="module" src="/static/js/main.js">']
    seen: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        res = client.get(f"/static/js/{name}")
        assert res.status_code == 200, name
        assert res.headers["content-type"].split(";")[0] == "text/javascript", name
        todo += re.findall(r'^import [^;]+ from "\./([\w-]+\.js)";$', res.text, re.M)
    assert seen == {path.name for path in PAGE_MODULES.glob("*.js")}
