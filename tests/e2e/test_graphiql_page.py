"""The local GraphiQL page and its asset route, without a browser.

The page is Strawberry's own template with every unpkg.com URL pointing at this server; the
asset route serves exactly the files the page names; with the assets missing (or not the
versions Strawberry expects) the page says what to run, and the API still serves GraphQL.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import strawberry
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from recsys_gql import graphiql
from recsys_gql.api.schema import build_schema
from recsys_gql.api.view import RecsysGraphQL
from recsys_gql.app import create_app
from recsys_gql.settings import Settings
from tests.api.conftest import running
from tests.e2e.conftest import require_assets

REPO = Path(__file__).resolve().parents[2]
STRAWBERRY_TEMPLATE = Path(strawberry.__file__).parent / "static" / "graphiql.html"
TAG = re.compile(r"""<(?:script|link)\b(?:[^>"']|"[^"]*"|'[^']*')*>""")
URL = re.compile(r"""\s(?:src|href)="([^"]*)\"""")
INTEGRITY = re.compile(r"""\sintegrity="([^"]*)\"""")


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def tag_urls(page: str) -> list[tuple[str, str | None]]:
    """(URL, integrity) of every <script src> and <link href> in a page."""
    found = []
    for tag in TAG.findall(page):
        url, integrity = URL.search(tag), INTEGRITY.search(tag)
        if url:
            found.append((url.group(1), integrity.group(1) if integrity else None))
    return found


def ide_request(root_path: str = "") -> Request:
    """A browser's GET /graphql."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/graphql",
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"accept", b"text/html")],
    }
    return Request(scope)


async def ide_page(root_path: str = "") -> Response:
    """What a new app's GraphQL view answers a browser's GET /graphql with."""
    view = RecsysGraphQL(build_schema(), graphql_ide="graphiql")
    return await view.render_graphql_ide(ide_request(root_path))


@pytest.fixture(scope="module")
def client_without_lifespan() -> TestClient:
    require_assets()
    return TestClient(create_app(Settings(graphiql=True)))


@contextmanager
def raw_server() -> Iterator[tuple[str, int]]:
    """The real app under uvicorn with the lifespan off: paths reach it exactly as sent."""
    config = uvicorn.Config(
        create_app(Settings(graphiql=True)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn exited"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def copy_assets(target: Path, keys: list[str] | None = None, *, origin: Path | None = None) -> Path:
    """A node_modules holding only the files the page needs (and their package.json), copied
    from ``origin`` (the installed ones by default)."""
    origin = origin if origin is not None else graphiql.NODE_MODULES
    for asset in graphiql.required_assets().values():
        for relative in (asset.file, "package.json"):
            source = origin / asset.package / relative
            destination = target / asset.package / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    return target


# --- the page -------------------------------------------------------------------------------


async def test_page_loads_nothing_from_outside() -> None:
    require_assets()
    response = await ide_page()
    page = bytes(response.body).decode()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "unpkg.com" not in page
    assert "Strawberry GraphiQL" in page  # Strawberry's own template, not a copy
    urls = tag_urls(page)
    assets = [(url, integrity) for url, integrity in urls if not url.startswith("data:")]
    assert len(assets) == len(graphiql.required_assets()) == 7
    for url, integrity in assets:
        assert not re.match(r"^(https?:)?//", url), url
        assert url.startswith("/graphiql/assets/"), url
        asset = graphiql.required_assets()[url.removeprefix("/graphiql/assets/")]
        # The recomputed integrity is the local file's, and equals Strawberry's own value.
        assert integrity == sha384(asset.local_path(graphiql.NODE_MODULES).read_bytes())
        assert integrity == asset.integrity


async def test_page_mirrors_every_unpkg_url_of_strawberrys_template() -> None:
    require_assets()
    template = STRAWBERRY_TEMPLATE.read_text(encoding="utf-8")
    remote = [url for url, _ in tag_urls(template) if "unpkg.com" in url]
    assert len(remote) == 7
    page = bytes((await ide_page()).body).decode()
    for url in remote:
        path = urlsplit(url).path
        assert f'"/graphiql/assets{path}"' in page, url


async def test_page_under_a_root_path_points_below_it() -> None:
    require_assets()
    page = bytes((await ide_page(root_path="/api")).body).decode()
    assert '"/api/graphiql/assets/graphiql@3.8.3/graphiql.min.js"' in page


async def test_page_csp_allows_only_this_server() -> None:
    require_assets()
    response = await ide_page()
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "https:" not in csp
    assert "*" not in csp
    inline = re.findall(r"<script>(.*?)</script>", bytes(response.body).decode(), re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


async def test_page_shows_how_to_send_a_bearer_token() -> None:
    require_assets()
    page = bytes((await ide_page()).body).decode()
    assert '{"Authorization": "Bearer <token>"}' in page
    assert "isHeadersEditorEnabled: true" in page


# --- the asset route ------------------------------------------------------------------------


def test_assets_are_served_with_type_and_long_cache(client_without_lifespan: TestClient) -> None:
    for key, asset in graphiql.required_assets().items():
        response = client_without_lifespan.get(f"/graphiql/assets/{key}")
        assert response.status_code == 200, key
        kind = "text/javascript" if key.endswith(".js") else "text/css"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8", key
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert sha384(response.content) == asset.integrity
        head = client_without_lifespan.head(f"/graphiql/assets/{key}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(response.content))


TRAVERSALS = [
    "/graphiql/assets/../../pyproject.toml",
    "/graphiql/assets/%2e%2e/%2e%2e/pyproject.toml",
    "/graphiql/assets/%2E%2E%2F%2E%2E%2Fpyproject.toml",
    "/graphiql/assets/..%2f..%2f..%2fpyproject.toml",
    "/graphiql/assets/..%5c..%5c..%5cpyproject.toml",
    "/graphiql/assets/%252e%252e/%252e%252e/pyproject.toml",
    "/graphiql/assets/react@18.2.0/../../../../pyproject.toml",
    "/graphiql/assets/react@18.2.0/%2e%2e/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/graphiql/assets/graphiql@3.8.3/..%2f..%2f..%2f..%2fpyproject.toml",
    "/graphiql/assets//etc/passwd",
    "/graphiql/assets/%2fetc%2fpasswd",
]
NOT_ALLOWED = [
    "/graphiql/assets/",
    "/graphiql/assets/graphiql@3.8.3/",
    "/graphiql/assets/graphiql@3.8.3",
    "/graphiql/assets/graphiql@3.8.3/package.json",  # a real file, but not one the page loads
    "/graphiql/assets/graphiql@3.8.3/graphiql.min.js.map",
    "/graphiql/assets/graphiql@3.8.4/graphiql.min.js",  # another version than the page's
    "/graphiql/assets/graphiql/graphiql.min.js",
    "/graphiql/assets/.package-lock.json",
]


@pytest.mark.parametrize("path", TRAVERSALS + NOT_ALLOWED)
def test_only_the_pages_files_are_served_through_the_client(
    client_without_lifespan: TestClient, path: str
) -> None:
    response = client_without_lifespan.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert "[project]" not in response.text
    assert "root:" not in response.text


def test_traversal_sent_verbatim_over_http_is_404() -> None:
    """Through uvicorn with raw request lines, so no client normalises the dots away."""
    require_assets()
    with raw_server() as (host, port):
        for path in TRAVERSALS + NOT_ALLOWED:
            connection = http.client.HTTPConnection(host, port, timeout=10)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read().decode(errors="replace")
            finally:
                connection.close()
            assert response.status in (404, 400), (path, response.status)
            assert "[project]" not in body, path
            assert "root:" not in body, path
        good = http.client.HTTPConnection(host, port, timeout=10)
        good.request("GET", "/graphiql/assets/js-cookie@3.0.5/dist/js.cookie.min.js")
        assert good.getresponse().status == 200
        good.close()


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/assets/../../pyproject.toml",
        "/graphiql/assets/react@18.2.0/../../../../pyproject.toml",
        "/graphiql/assets/graphiql@3.8.3/../../../../../../../../etc/passwd",
    ],
)
async def test_traversal_in_the_asgi_path_is_404(path: str) -> None:
    """The decoded ASGI path a server may hand over, ``..`` and all."""
    require_assets()
    app = create_app(Settings(graphiql=True))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 404
    assert b"[project]" not in b"".join(m.get("body", b"") for m in sent)


def test_no_asset_route_when_graphiql_is_off() -> None:
    app = create_app(Settings(graphiql=False))
    assert all("graphiql" not in getattr(route, "path", "") for route in app.routes)
    response = TestClient(app).get("/graphiql/assets/react@18.2.0/umd/react.production.min.js")
    assert response.status_code == 404


# --- when the assets are missing or not the ones Strawberry expects -------------------------


async def test_missing_assets_page_says_what_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "node_modules")
    response = await ide_page()
    page = bytes(response.body).decode()
    assert response.status_code == 200
    assert "GraphiQL is not installed" in page
    assert '<pre id="command">npm ci --prefix recsys_gql/graphiql</pre>' in page
    assert "<script" not in page  # a readable page, not a blank one
    assert "unpkg.com" not in page
    assert "https://" not in page
    app = create_app(Settings(graphiql=True))  # the app still builds
    asset = TestClient(app).get("/graphiql/assets/graphiql@3.8.3/graphiql.min.js")
    assert asset.status_code == 404
    assert "npm ci --prefix recsys_gql/graphiql" in asset.text


async def test_only_the_served_files_are_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_assets()
    monkeypatch.setattr(graphiql, "NODE_MODULES", copy_assets(tmp_path / "node_modules"))
    assert graphiql.render().ok
    page = bytes((await ide_page()).body).decode()
    assert "GraphiQL is not installed" not in page


async def test_the_page_is_rendered_once_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    require_assets()
    renders: list[str] = []
    real_render = graphiql.render

    def counting_render(*args: Any, **kwargs: Any) -> graphiql.Rendered:
        renders.append(kwargs.get("root_path", ""))
        return real_render(*args, **kwargs)

    monkeypatch.setattr(graphiql, "render", counting_render)
    view = RecsysGraphQL(build_schema(), graphql_ide="graphiql")
    pages = [await view.render_graphql_ide(ide_request()) for _ in range(3)]
    assert renders == [""]
    assert len({bytes(page.body) for page in pages}) == 1
    assert (
        pages[0].headers["Content-Security-Policy"] == pages[2].headers["Content-Security-Policy"]
    )
    await view.render_graphql_ide(ide_request("/api"))  # another mount point: its own page
    assert renders == ["", "/api"]


async def test_a_missing_install_is_checked_again_at_every_reload(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The hint page says "reload this page (no restart needed)": it must not be kept."""
    require_assets()
    installed_assets = graphiql.NODE_MODULES
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "node_modules")
    view = RecsysGraphQL(build_schema(), graphql_ide="graphiql")
    missing = bytes((await view.render_graphql_ide(ide_request())).body).decode()
    assert "GraphiQL is not installed" in missing
    copy_assets(tmp_path / "node_modules", origin=installed_assets)  # the operator runs npm ci
    installed = bytes((await view.render_graphql_ide(ide_request())).body).decode()
    assert "GraphiQL is not installed" not in installed
    assert "Strawberry GraphiQL" in installed


async def test_a_changed_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_assets()
    node_modules = copy_assets(tmp_path / "node_modules")
    with (node_modules / "react/umd/react.production.min.js").open("a") as handle:
        handle.write("\n/* tampered */\n")
    monkeypatch.setattr(graphiql, "NODE_MODULES", node_modules)
    page = bytes((await ide_page()).body).decode()
    assert "GraphiQL is not installed" in page
    assert "node_modules/react/umd/react.production.min.js is not the file" in page
    assert "npm ci --prefix recsys_gql/graphiql" in page
    app = create_app(Settings(graphiql=True))
    changed = TestClient(app).get("/graphiql/assets/react@18.2.0/umd/react.production.min.js")
    assert changed.status_code == 404
    assert "is not the file Strawberry's page expects" in changed.text


async def test_a_wrong_installed_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_assets()
    node_modules = copy_assets(tmp_path / "node_modules")
    manifest = node_modules / "js-cookie/package.json"
    manifest.write_text(json.dumps({"name": "js-cookie", "version": "3.0.1"}))
    monkeypatch.setattr(graphiql, "NODE_MODULES", node_modules)
    page = bytes((await ide_page()).body).decode()
    assert "js-cookie@3.0.5 is not installed (found 3.0.1)." in page


async def test_a_strawberry_upgrade_asks_for_new_pins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pins = json.loads(graphiql.PACKAGE_JSON.read_text())
    pins["dependencies"]["graphiql"] = "3.0.0"
    package_json = tmp_path / "package.json"
    package_json.write_text(json.dumps(pins))
    monkeypatch.setattr(graphiql, "PACKAGE_JSON", package_json)
    rendered = graphiql.render()
    assert not rendered.ok
    assert rendered.problems == (
        "Strawberry's page loads graphiql@3.8.3 but recsys_gql/graphiql/package.json pins 3.0.0.",
    )
    assert "GraphiQL does not match Strawberry&#x27;s page" in rendered.html
    assert rendered.command.startswith(
        'set "graphiql": "3.8.3" in recsys_gql/graphiql/package.json'
    )
    assert "npm install --prefix recsys_gql/graphiql" in rendered.command


def test_pins_match_strawberrys_page() -> None:
    """package.json pins exactly the versions Strawberry's installed page loads."""
    pins = json.loads(graphiql.PACKAGE_JSON.read_text())["dependencies"]
    wanted = {a.package: a.version for a in graphiql.required_assets().values()}
    assert pins == wanted


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_server_without_assets_still_serves_graphql(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "missing")
    with running(api_settings) as server:
        page = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"}, timeout=30)
        assert page.status_code == 200
        assert "npm ci --prefix recsys_gql/graphiql" in page.text
        answer = server.graphql("{ movie(id: 1) { title } }")
        assert answer == {"data": {"movie": {"title": "Toy Story"}}}
