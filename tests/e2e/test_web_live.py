"""The page's "For you" in headless Chromium keeps itself current: after a rating made on the
page, the new list arrives over the WebSocket subscription, with no reload and no request for
recommendations over HTTP (``recsys_gql/web/e2e/live.mjs`` drives the page)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.api.conftest import Server
from tests.e2e.conftest import CHROMIUM
from tests.e2e.test_web_browser import WEB, require_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

LIVE_FLOW = WEB / "e2e" / "live.mjs"


@pytest.fixture(scope="module")
def seen(api: Server) -> dict[str, Any]:
    node = require_tools()
    env = {**os.environ, "WEB_URL": api.url, "CHROMIUM": str(CHROMIUM), "TITLE": "Toy Story"}
    done = subprocess.run(
        [node, str(LIVE_FLOW)], cwd=WEB, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_for_you_updates_after_a_rating_without_reload(seen: dict[str, Any]) -> None:
    assert seen["pageErrors"] == []
    assert seen["sameDocument"]  # no navigation, no reload
    assert seen["top"] not in seen["after"]  # the movie just rated left the list
    assert seen["after"] != seen["before"]


def test_the_update_came_over_the_websocket_not_by_polling(seen: dict[str, Any]) -> None:
    # over HTTP, after the page's first list: the rating, and nothing else
    operations = [request["operation"] for request in seen["http"]]
    assert operations == ["Rate"], seen["http"]
    assert all(url.endswith("/graphql") for url in seen["sockets"]), seen["sockets"]
    pushed = [json.loads(frame) for frame in seen["frames"]]
    updates = [f for f in pushed if f["type"] == "next"]
    assert len(updates) == 1, pushed  # one rating, one new list
    titles = [r["movie"]["title"] for r in updates[0]["payload"]["data"]["recommendationsUpdated"]]
    assert titles[: len(seen["after"])] == seen["after"]
