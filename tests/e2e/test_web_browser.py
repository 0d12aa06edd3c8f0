"""The web page in headless Debian Chromium against live servers on the real artifacts.

``recsys_gql/web/e2e/flow.mjs`` (Node, ``playwright-core`` with ``executablePath``) signs up,
rates five animated family films 5 stars through the page, reads "For you", moves the α
slider and a genre chip, searches by description, opens the movie, looks at the page on a
phone-sized screen and meets a 429 on a second server whose read limit is tiny. This module
starts the servers, runs the script and asserts on what it saw. Screenshots go to
``reports/screenshots/web-*.png``.

Node, the built page, ``playwright-core`` and Chromium are optional locally (skip, with the
command to run) and required under ``CI=true`` (fail), like the GraphiQL tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from recsys_gql.settings import Settings
from recsys_gql.web import BUILD_COMMAND, DIST
from tests.api.conftest import Server, running
from tests.e2e.conftest import CHROMIUM, unavailable

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "recsys_gql" / "web"
FLOW = WEB / "e2e" / "flow.mjs"
SCREENSHOTS = REPO / "reports" / "screenshots"

# [what to type in the title search, the exact title the catalog shows, the genre filter]
# (the title search is a substring match in id order: "Up" alone matches 157 titles)
FAMILY = [
    ["Toy Story", "Toy Story", ""],
    ["Finding Nemo", "Finding Nemo", ""],
    ["Monsters", "Monsters, Inc.", "Animation"],
    ["Up", "Up", "Animation"],
    ["Toy Story 2", "Toy Story 2", ""],
]
DESCRIPTION = ["a rat who dreams of becoming a chef in a Paris restaurant", "Ratatouille"]
FAMILY_GENRES = {"Animation", "Children"}


def require_tools() -> str:
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js is not installed (the web page's end-to-end test runs in Node)")
    if not (DIST / "index.html").is_file():
        unavailable(f"the web page is not built: run {BUILD_COMMAND}")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        unavailable("playwright-core is not installed: run npm ci --prefix recsys_gql/web")
    if not CHROMIUM.is_file():
        unavailable(f"no {CHROMIUM} (apt-get install -y chromium)")
    return node


def run_flow(node: str, web: Server, limited: Server) -> dict[str, object]:
    env = {
        **os.environ,
        "WEB_URL": web.url,
        "LIMITED_URL": limited.url,
        "SCREENSHOTS": str(SCREENSHOTS),
        "CHROMIUM": str(CHROMIUM),
        "FAMILY": json.dumps(FAMILY),
        "DESCRIPTION": json.dumps(DESCRIPTION),
    }
    done = subprocess.run(
        [node, str(FLOW)], cwd=WEB, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"flow.mjs failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    seen: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def genres_of(meta: str) -> set[str]:
    """``"1995 · Animation, Children · ★ 3.9"`` → ``{"Animation", "Children"}``."""
    parts = [part.strip() for part in meta.split("·")]
    return {g.strip() for g in parts[1].split(",")} if len(parts) > 1 else set()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_web_page_end_to_end(api: Server, api_settings: Settings) -> None:
    node = require_tools()
    tiny = api_settings.model_copy(update={"rate_limit_reads": "2/minute"})
    with running(tiny) as limited:
        seen = run_flow(node, api, limited)

    rated = set(FAMILY_TITLES)
    assert seen["rated"] == FAMILY_TITLES
    items = seen["forYou"]
    assert isinstance(items, list)
    assert len(items) >= 10
    family = [item for item in items if genres_of(item["meta"]) & FAMILY_GENRES]
    assert len(family) > len(items) / 2, (
        f"only {len(family)}/{len(items)} recommendations are Animation/Children: "
        f"{[(i['title'], i['meta']) for i in items]}"
    )
    for item in items:
        assert item["because"], f"{item['title']} has no explanation"
        assert set(item["because"]) <= rated, item
        assert item["title"] not in rated
        assert item["bar"].startswith("people like you ")

    comedy = seen["forYouComedy"]
    assert isinstance(comedy, list)
    assert comedy
    assert all("Comedy" in genres_of(item["meta"]) for item in comedy)
    assert seen["forYouAlpha1"] != items

    found = seen["description"]
    assert isinstance(found, list)
    assert DESCRIPTION[1] in found[:3], found
    detail = seen["detail"]
    assert isinstance(detail, dict)
    assert detail["overview"]
    assert detail["similar"]

    assert seen["phoneOverflow"] == 0
    message = str(seen["rateLimited"])
    assert "Too many requests" in message
    assert "You can retry in" in message

    requests = seen["requests"]
    assert isinstance(requests, list)
    outside = [
        u
        for u in requests
        if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        and urlsplit(u).hostname != "127.0.0.1"
    ]
    assert outside == [], f"requests left the server: {outside}"
    assert seen["pageErrors"] == []
    assert seen["consoleErrors"] == []
    for name in ("web-for-you-desktop.png", "web-for-you-phone.png", "web-rate-limited.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name


FAMILY_TITLES = [title for _, title, _ in FAMILY]
