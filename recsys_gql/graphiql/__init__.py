"""GraphiQL served from this server: Strawberry's own page, with no request leaving the host.

Strawberry's ``static/graphiql.html`` loads React, GraphiQL and its explorer plugin from
unpkg.com, so without internet access ``/graphql`` is a blank page. Here the same template is
read from the installed strawberry package (so a Strawberry upgrade carries its page along),
rendered once per app (:class:`GraphiQLPage`), and each
``https://unpkg.com/<package>@<version>/<file>`` becomes
``/graphiql/assets/<package>@<version>/<file>``, served from ``node_modules`` next to this
file, which ``npm ci --prefix recsys_gql/graphiql`` fills from the committed lockfile.

Every asset must be the very file Strawberry's page names: the installed package must have
the version in the URL and the file must match the template's ``integrity`` hash (the
attribute is recomputed from the local file). When anything is missing or different, the
page says what to run instead of rendering blank; the GraphQL endpoint is unaffected.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from strawberry.http.ides import get_graphql_ide_html

__all__ = [
    "ASSETS_PATH",
    "INSTALL_COMMAND",
    "Asset",
    "GraphiQLPage",
    "Rendered",
    "assets_route",
    "render",
]

log = logging.getLogger("recsys_gql.graphiql")

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
"""Where ``npm ci --prefix recsys_gql/graphiql`` installs the assets (read at each request)."""

PACKAGE_JSON = HERE / "package.json"
ASSETS_PATH = "/graphiql/assets"
INSTALL_COMMAND = "npm ci --prefix recsys_gql/graphiql"
UPDATE_COMMAND = "npm install --prefix recsys_gql/graphiql"

CACHE_FOREVER = "public, max-age=31536000, immutable"
"""Asset URLs carry the package version and the file is checked against Strawberry's hash."""

MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}

AUTH_HINT = """\
# Authentication: open the "Headers" tab below the query editor and
# enter a JSON object; it is sent with every request, e.g.
#
#     {"Authorization": "Bearer <token>"}
#
# Subscriptions run over a WebSocket, with those headers as the payload of
# connection_init (a token is required), e.g.
#
#     subscription { recommendationsUpdated(first: 5) { movie { title } } }
#
# Try it on this server:
#
#     { movie(id: 1) { title genres } }
#
"""

# <script ...> and <link ...> start tags, with quoted attribute values that may contain ">".
_TAG = re.compile(r"""<(?:script|link)\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(r"""(\s)(src|href)\s*=\s*(["'])(.*?)\3""", re.IGNORECASE | re.DOTALL)
_INTEGRITY = re.compile(r"""\s+integrity\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_UNPKG = re.compile(
    r"^(?:https?:)?//unpkg\.com/(?P<package>(?:@[\w.-]+/)?[\w.-]+)@(?P<version>[\w.+-]+)"
    r"/(?P<file>[\w.@/-]+)$"
)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_EXAMPLE_QUERY_END = re.compile(r"(const EXAMPLE_QUERY = `.*?)(`;)", re.DOTALL)


@dataclass(frozen=True)
class Asset:
    """One file Strawberry's page loads from unpkg.com."""

    package: str
    version: str
    file: str
    integrity: str | None
    """The ``sha384-…`` value the template carries for it, if any."""

    @property
    def key(self) -> str:
        """The path under :data:`ASSETS_PATH`: ``<package>@<version>/<file>``."""
        return f"{self.package}@{self.version}/{self.file}"

    def local_path(self, node_modules: Path) -> Path:
        return node_modules / self.package / self.file


@dataclass(frozen=True)
class Rendered:
    """The page to serve: GraphiQL when ``problems`` is empty, the install hint otherwise."""

    html: str
    problems: tuple[str, ...]
    command: str
    """What fixes the problems (empty when there are none)."""

    @property
    def ok(self) -> bool:
        return not self.problems


@functools.cache
def _template() -> str:
    return get_graphql_ide_html("graphiql")


def required_assets(template: str | None = None) -> dict[str, Asset]:
    """The unpkg.com files the template loads, by :attr:`Asset.key` (the serving allow-list)."""
    assets: dict[str, Asset] = {}
    for tag in _TAG.finditer(template if template is not None else _template()):
        url = _URL_ATTRIBUTE.search(tag.group(0))
        match = _UNPKG.match(url.group(4).strip()) if url else None
        if match is None:
            continue
        integrity = _INTEGRITY.search(tag.group(0))
        expected = integrity.group(2) if integrity else None
        asset = Asset(match["package"], match["version"], match["file"], expected)
        if ".." not in asset.file.split("/"):
            assets[asset.key] = asset
    return assets


@functools.lru_cache(maxsize=64)
def _sha384(path: Path, size: int, mtime_ns: int) -> str:
    """``sha384-<base64>`` of a file (cached while its size and mtime stay the same)."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def _file_integrity(path: Path) -> str:
    stat = path.stat()
    return _sha384(path, stat.st_size, stat.st_mtime_ns)


def _json_field(path: Path, *keys: str) -> str | None:
    try:
        value: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _check(assets: Iterable[Asset], node_modules: Path) -> tuple[list[str], str, dict[str, str]]:
    """Problems, the command that fixes them, and each good asset's integrity value."""
    unpinned: list[Asset] = []
    problems: list[str] = []
    integrities: dict[str, str] = {}
    for asset in assets:
        pinned = _json_field(PACKAGE_JSON, "dependencies", asset.package)
        if pinned != asset.version:
            unpinned.append(asset)
            problems.append(
                f"Strawberry's page loads {asset.package}@{asset.version} but "
                f"recsys_gql/graphiql/package.json pins {pinned or 'nothing'}."
            )
            continue
        installed = _json_field(node_modules / asset.package / "package.json", "version")
        if installed != asset.version:
            found = f" (found {installed})" if installed else ""
            problems.append(f"{asset.package}@{asset.version} is not installed{found}.")
            continue
        path = asset.local_path(node_modules)
        if not path.is_file():
            problems.append(f"{asset.package}@{asset.version} has no {asset.file}.")
            continue
        integrity = _file_integrity(path)
        if asset.integrity and integrity not in asset.integrity.split():
            problems.append(
                f"node_modules/{asset.package}/{asset.file} is not the file Strawberry's page "
                f"expects ({asset.integrity}, found {integrity})."
            )
            continue
        integrities[asset.key] = integrity
    problems = list(dict.fromkeys(problems))  # one line per package, not per file
    if unpinned:
        pins = ", ".join(sorted({f'"{a.package}": "{a.version}"' for a in unpinned}))
        command = (
            f"set {pins} in recsys_gql/graphiql/package.json, then run {UPDATE_COMMAND} "
            "and commit package.json and package-lock.json"
        )
        return problems, command, integrities
    return problems, INSTALL_COMMAND if problems else "", integrities


def _rewrite_tag(tag: str, prefix: str, integrities: dict[str, str]) -> str:
    """Point one unpkg.com tag at the local copy, with the local file's integrity value."""
    url = _URL_ATTRIBUTE.search(tag)
    match = _UNPKG.match(url.group(4).strip()) if url else None
    if url is None or match is None:
        return tag
    key = f"{match['package']}@{match['version']}/{match['file']}"
    tag = tag[: url.start(4)] + html.escape(f"{prefix}/{key}") + tag[url.end(4) :]
    existing = _INTEGRITY.search(tag)
    if existing:
        return tag[: existing.start(2)] + integrities[key] + tag[existing.end(2) :]
    close = "/>" if tag.endswith("/>") else ">"
    return f'{tag[: -len(close)].rstrip()} integrity="{integrities[key]}" {close}'


def _external_urls(page: str) -> list[str]:
    found = []
    for tag in _TAG.finditer(page):
        url = _URL_ATTRIBUTE.search(tag.group(0))
        if url and _EXTERNAL.match(url.group(4).strip()):
            found.append(url.group(4).strip())
    return found


def render(node_modules: Path | None = None, *, root_path: str = "") -> Rendered:
    """Strawberry's GraphiQL page pointing at local assets, or the page saying what to run.

    ``root_path`` is the ASGI root path the app is mounted under (asset URLs are absolute).
    """
    node_modules = node_modules if node_modules is not None else NODE_MODULES
    template = _template()
    assets = required_assets(template)
    problems, command, integrities = _check(assets.values(), node_modules)
    if not assets:
        problems, command = ["Strawberry's GraphiQL page names no unpkg.com asset."], ""
    if not problems:
        prefix = root_path.rstrip("/") + ASSETS_PATH
        page = _TAG.sub(lambda m: _rewrite_tag(m.group(0), prefix, integrities), template)
        leftovers = _external_urls(page)
        if leftovers:
            problems = [f"Strawberry's GraphiQL page loads {url}." for url in leftovers]
            command = "map these URLs in recsys_gql/graphiql/__init__.py"
        else:
            page = _EXAMPLE_QUERY_END.sub(lambda m: m.group(1) + AUTH_HINT + m.group(2), page)
            return Rendered(page, (), "")
    return Rendered(_install_hint(problems, command), tuple(problems), command)


def _install_hint(problems: list[str], command: str) -> str:
    title = "GraphiQL is not installed"
    if command != INSTALL_COMMAND:
        title = "GraphiQL does not match Strawberry's page"
    items = "\n".join(f"      <li>{html.escape(problem)}</li>" for problem in problems)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>{html.escape(title)}</title>
    <style>
      body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 3rem auto;
        padding: 0 1rem; line-height: 1.5; color: #1b1f23; }}
      pre {{ background: #f3f4f6; padding: 0.75rem 1rem; border-radius: 6px;
        white-space: pre-wrap; }}
    </style>
  </head>
  <body>
    <h1>{html.escape(title)}</h1>
    <p>This server serves the GraphiQL explorer's JavaScript itself (it never loads it from
      a CDN), and those files are not in place. From the project root:</p>
    <pre id="command">{html.escape(command)}</pre>
    <p>then reload this page (no restart needed).</p>
    <p>The GraphQL API works meanwhile: POST
      <code>{{"query": "{{ movie(id: 1) {{ title }} }}"}}</code> as JSON to
      <code>/graphql</code>.</p>
    <h2>Details</h2>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


def _content_security_policy(page: str) -> str:
    """Allow only this server (and the page's own inline scripts, by hash)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(page)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )


def _page_headers(html_page: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _content_security_policy(html_page),
        "X-Content-Type-Options": "nosniff",
    }


class GraphiQLPage:
    """The explorer page of one app, rendered once (per root path) and then served as is.

    Rendering reads Strawberry's template, rewrites its asset URLs and hashes the local
    files: work a page that cannot change while the server runs needs only once. While the
    assets are missing or wrong, the page saying what to run is rendered afresh each time, so
    it turns into GraphiQL on the reload after the install, without a restart.
    """

    def __init__(self, node_modules: Path | None = None) -> None:
        self.node_modules = node_modules
        self._ready: dict[str, tuple[str, dict[str, str]]] = {}

    def response(self, request: Request | None = None) -> Response:
        """The HTML response for a browser's GET ``/graphql``."""
        root_path = str(request.scope.get("root_path", "")) if request is not None else ""
        ready = self._ready.get(root_path)
        if ready is None:
            rendered = render(self.node_modules, root_path=root_path)
            if not rendered.ok:
                problems = "; ".join(rendered.problems)
                log.warning("GraphiQL unavailable (%s): %s", problems, rendered.command)
                return HTMLResponse(rendered.html, headers=_page_headers(rendered.html))
            ready = self._ready[root_path] = (rendered.html, _page_headers(rendered.html))
        page, headers = ready
        return HTMLResponse(page, headers=headers)


def assets_route(node_modules: Path | None = None) -> Route:
    """``GET /graphiql/assets/<package>@<version>/<file>``: exactly the files the page loads.

    The path is looked up in the allow-list taken from the template (never joined onto a
    folder), so ``..`` in any encoding, directories and every other file are a 404.
    """
    fixed = node_modules

    async def serve(request: Request) -> Response:
        root = fixed if fixed is not None else NODE_MODULES
        asset = required_assets().get(request.path_params["path"])
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        path = asset.local_path(root)
        try:
            inside = path.resolve(strict=True).is_relative_to(root.resolve(strict=True))
        except OSError:
            inside = False
        if not inside or not path.is_file():
            return PlainTextResponse(
                f"Not Found: GraphiQL assets are not installed (run {INSTALL_COMMAND})",
                status_code=404,
            )
        if asset.integrity and _file_integrity(path) not in asset.integrity.split():
            # Never cache a file for a year under a URL that promises different content.
            return PlainTextResponse(
                f"Not Found: {asset.package}/{asset.file} is not the file Strawberry's page "
                f"expects (run {INSTALL_COMMAND})",
                status_code=404,
            )
        media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        headers = {"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, media_type=media_type, headers=headers)

    rendered = render(node_modules)
    if not rendered.ok:
        log.warning("GraphiQL unavailable (%s): %s", "; ".join(rendered.problems), rendered.command)
    return Route(f"{ASSETS_PATH}/{{path:path}}", serve, methods=["GET"], name="graphiql-assets")
