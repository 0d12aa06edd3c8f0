"""The people's page: the single-page app in this folder, served at ``/`` by the API server.

The sources (Preact + TypeScript, typed GraphQL operations generated from ``schema.graphql``)
are built by Vite into ``dist/``, never committed: :data:`BUILD_COMMAND` (which ``make serve``
and ``make test`` run when the build is missing or older than its sources). The page talks
only to this server's ``/graphql``; its Content-Security-Policy forbids anything else.

When ``dist/`` has not been built, ``/`` answers 503 with the command to run; the API and
GraphiQL are unaffected. ``dist`` is looked up at each request, so building while the server
runs is enough.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["BUILD_COMMAND", "CONTENT_SECURITY_POLICY", "DIST", "web_routes"]

HERE = Path(__file__).resolve().parent
DIST = HERE / "dist"
"""Where ``npm run build --prefix recsys_gql/web`` writes the page."""

BUILD_COMMAND = "npm ci --prefix recsys_gql/web && npm run build --prefix recsys_gql/web"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
"""Nothing but this server: no CDN, no outside fonts, no inline script."""

CACHE_FOREVER = "public, max-age=31536000, immutable"
"""Vite puts a content hash in every asset's file name."""

NOT_BUILT = """\
<!doctype html>
<html lang="en">
  <head><meta charset="utf-8"><title>The web page is not built</title></head>
  <body style="font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto">
    <h1>The web page is not built yet</h1>
    <p>The API is running; its page for people has not been built. From the repository, run:</p>
    <pre>{command}</pre>
    <p>(<code>make serve</code> does it for you), then reload. Meanwhile the GraphQL API and
      its explorer are at <a href="graphql">/graphql</a>.</p>
  </body>
</html>
"""


def web_routes(dist: Path | None = None) -> list[Route]:
    """``GET /`` (the page) and ``GET /assets/<file>`` (its hashed scripts and styles)."""
    fixed = dist

    async def index(_: Request) -> Response:
        root = fixed if fixed is not None else DIST
        page = root / "index.html"
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if not page.is_file():
            body = NOT_BUILT.format(command=html.escape(BUILD_COMMAND))
            return HTMLResponse(body, status_code=503, headers=headers)
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return FileResponse(page, media_type="text/html; charset=utf-8", headers=headers)

    async def asset(request: Request) -> Response:
        root = (fixed if fixed is not None else DIST) / "assets"
        try:
            path = (root / request.path_params["path"]).resolve(strict=True)
            inside = path.is_relative_to(root.resolve(strict=True)) and path.is_file()
        except OSError:
            inside = False
        if not inside:
            return PlainTextResponse("Not Found", status_code=404)
        headers = {"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, headers=headers)

    return [
        Route("/", index, methods=["GET"], name="web-index"),
        Route("/assets/{path:path}", asset, methods=["GET"], name="web-assets"),
    ]
