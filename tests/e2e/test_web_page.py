"""``/`` serves the built web page with a strict policy, or says how to build it (never a 500)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from recsys_gql.web import BUILD_COMMAND, CONTENT_SECURITY_POLICY, web_routes


def client(dist: Path) -> TestClient:
    return TestClient(Starlette(routes=web_routes(dist)))


def test_unbuilt_page_says_what_to_run(tmp_path: Path) -> None:
    response = client(tmp_path / "dist").get("/")
    assert response.status_code == 503
    assert "npm ci --prefix recsys_gql/web" in response.text
    assert BUILD_COMMAND.replace("&", "&amp;") in response.text
    assert client(tmp_path / "dist").get("/assets/index.js").status_code == 404


def test_built_page_and_assets_are_served(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<script type="module" src="./assets/app-1.js"></script>')
    (dist / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")
    web = client(dist)

    page = web.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-cache"

    script = web.get("/assets/app-1.js")
    assert script.status_code == 200
    assert script.text == "console.log(1)"
    assert "immutable" in script.headers["cache-control"]
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }

    for path in (
        "/assets/../index.html",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/",
        "/assets/x.js",
    ):
        assert web.get(path).status_code == 404, path


def test_the_app_mounts_the_page_beside_graphql() -> None:
    from recsys_gql.app import create_app
    from recsys_gql.settings import Settings

    paths = {getattr(route, "path", None) for route in create_app(Settings()).routes}
    assert {"/", "/assets/{path:path}", "/graphql"} <= paths
