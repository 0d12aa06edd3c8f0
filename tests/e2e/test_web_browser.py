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
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from recsys_gql.settings import Settings
from recsys_gql.web import BUILD_COMMAND, DIST
from tests.api.conftest import Server, running
from tests.e2e.conftest import CHROMIUM, unavailable

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

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


def run_flow(node: str, web: Server, limited: Server) -> dict[str, Any]:
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
    assert done.returncode == 0, (
        f"flow.mjs failed (see reports/screenshots/web-failure.png):\n"
        f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    )
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def genres_of(meta: str) -> set[str]:
    """``"1995 · Animation, Children · ★ 3.9"`` → ``{"Animation", "Children"}``."""
    parts = [part.strip() for part in meta.split("·")]
    return {g.strip() for g in parts[1].split(",")} if len(parts) > 1 else set()


def warm_search_model(server: Server) -> None:
    """Load the sentence model before the page's first search by description: on a busy
    2-core machine the first load can outlast the 15 s request timeout (503 TIMEOUT)."""
    deadline = time.monotonic() + 180
    while True:
        response = httpx.post(
            f"{server.url}/graphql",
            json={"query": '{ searchMovies(query: "warm up", first: 1) { score } }'},
            timeout=60,
        )
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(2)


@pytest.fixture(scope="module")
def seen(api: Server, api_settings: Settings) -> dict[str, Any]:
    """Run the browser flow once; every test below asserts on part of what it saw."""
    node = require_tools()
    warm_search_model(api)
    tiny = api_settings.model_copy(update={"rate_limit_reads": "2/minute"})
    with running(tiny) as limited:
        return run_flow(node, api, limited)


def test_sign_up_rate_and_explanations(seen: dict[str, Any]) -> None:
    assert seen["rated"] == FAMILY_TITLES  # signed up, five 5-star ratings saved by the page
    items = seen["forYou"]
    assert len(items) >= 10
    for item in items:
        assert item["because"], f"{item['title']} has no explanation"
        assert set(item["because"]) <= set(FAMILY_TITLES), item
        assert item["title"] not in FAMILY_TITLES
        assert item["bar"].startswith("people like you ")


def test_for_you_is_mostly_animation_or_children(seen: dict[str, Any]) -> None:
    items = seen["forYou"]
    family = [item for item in items if genres_of(item["meta"]) & FAMILY_GENRES]
    assert len(family) > len(items) / 2, (
        f"only {len(family)}/{len(items)} recommendations are Animation/Children: "
        f"{[(i['title'], i['meta']) for i in items]}"
    )


def test_alpha_slider_and_genre_chips_change_the_list(seen: dict[str, Any]) -> None:
    comedy = seen["forYouComedy"]
    assert comedy
    assert all("Comedy" in genres_of(item["meta"]) for item in comedy)
    assert [i["title"] for i in seen["forYouAlpha1"]] != [i["title"] for i in seen["forYou"]]


def test_search_by_description_and_movie_page(seen: dict[str, Any]) -> None:
    assert DESCRIPTION[1] in seen["description"][:3], seen["description"]
    detail = seen["detail"]
    assert str(DETAIL_YEAR) in detail["meta"]
    assert "Animation" in detail["meta"]
    assert detail["overview"]
    assert len(detail["similar"]) == 6


def test_rate_limited_page_says_when_to_retry(seen: dict[str, Any]) -> None:
    message = seen["rateLimited"]
    assert "Too many requests" in message
    assert re.search(r"wait \d+ s", message), message
    assert re.search(r"You can retry in \d+ s", message), message


def test_phone_width_and_nothing_from_outside(seen: dict[str, Any]) -> None:
    assert seen["phoneOverflow"] == 0
    network = [u for u in seen["requests"] if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    outside = [u for u in network if urlsplit(u).hostname != "127.0.0.1"]
    assert outside == [], f"requests left the server: {outside}"
    assert seen["pageErrors"] == []
    assert seen["consoleErrors"] == []
    for name in ("web-for-you-desktop.png", "web-for-you-phone.png", "web-rate-limited.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name


FAMILY_TITLES = [title for _, title, _ in FAMILY]
DETAIL_YEAR = 2007
