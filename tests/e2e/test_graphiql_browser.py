"""GraphiQL in a real headless Chromium against the real server, with nothing from outside.

Opens ``/graphql``, types a query into GraphiQL's editor, runs it with the run button and
reads the answer from the result pane. Every request the page makes (HTTP and WebSocket) is
recorded and must go to 127.0.0.1. A screenshot lands in ``reports/screenshots/graphiql.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from recsys_gql import graphiql
from tests.api.conftest import Server
from tests.e2e.conftest import require_assets

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Request

pytestmark = pytest.mark.integration

SCREENSHOT = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "graphiql.png"
QUERY = "{ movie(id: 1) { title year genres } }"
TIMEOUT_MS = 60_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_graphiql_runs_a_query_with_no_outside_request(api: Server, chromium: Browser) -> None:
    from playwright.sync_api import expect

    require_assets()
    requests: list[str] = []
    failed: list[str] = []
    page_errors: list[str] = []
    console_errors: list[str] = []

    def on_request(request: Request) -> None:
        requests.append(request.url)

    def on_failed(request: Request) -> None:
        failed.append(f"{request.url}: {request.failure}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    context = chromium.new_context(viewport={"width": 1440, "height": 900}, service_workers="block")
    try:
        context.on("request", on_request)
        context.on("requestfailed", on_failed)
        page = context.new_page()
        page.on("websocket", lambda socket: requests.append(socket.url))
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", on_console)

        response = page.goto(f"{api.url}/graphql", wait_until="networkidle")
        assert response is not None
        assert response.status == 200
        assert page.title() == "Strawberry GraphiQL"

        editor = page.locator(".graphiql-query-editor .CodeMirror").first
        editor.wait_for(state="visible", timeout=TIMEOUT_MS)
        expect(editor).to_contain_text("Bearer <token>")  # the hint in the default query
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(QUERY)
        expect(editor).to_contain_text("movie(id: 1)")

        page.locator("button.graphiql-execute-button").click()
        result = page.locator(".graphiql-response .result-window")
        expect(result).to_contain_text("Toy Story", timeout=TIMEOUT_MS)
        expect(result).to_contain_text("1995")
        page.wait_for_load_state("networkidle")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    finally:
        context.close()

    assert SCREENSHOT.stat().st_size > 10_000
    served = {urlsplit(url).path for url in requests}
    for key in graphiql.required_assets():
        assert f"/graphiql/assets/{key}" in served, f"{key} was never requested"
    assert "/graphql" in served
    network = [url for url in requests if urlsplit(url).scheme not in ("data", "blob", "about")]
    outside = [url for url in network if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], f"requests left the server: {outside}"
    assert failed == [], failed
    assert page_errors == [], page_errors
    assert console_errors == [], console_errors


SUBSCRIPTION = "subscription { recommendationsUpdated(first: 3) { movie { id title } } }"
RATE = """mutation ($u: Int!, $m: Int!) { rateMovie(input: {userId: $u, movieId: $m, rating: 5})
  { __typename } }"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_graphiql_runs_the_live_subscription(api: Server, chromium: Browser) -> None:
    """The subscription from GraphiQL: the token from the Headers editor goes in
    ``connection_init``, the first list shows, and a rating made elsewhere replaces it."""
    import json
    from urllib.parse import quote, urlencode

    from playwright.sync_api import expect

    from tests.api.conftest import sign_up

    require_assets()
    user, token = sign_up(api)
    first = api.graphql(
        "query ($u: Int!) { recommendations(userId: $u, first: 3) { movie { id title } } }",
        {"u": user},
    )["data"]["recommendations"]
    sockets: list[str] = []
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, service_workers="block")
    try:
        page = context.new_page()
        page.on("websocket", lambda socket: sockets.append(socket.url))
        headers = json.dumps({"Authorization": f"Bearer {token}"})
        parameters = urlencode({"q": SUBSCRIPTION, "headers": headers}, quote_via=quote)
        page.goto(f"{api.url}/graphql?{parameters}")  # the page decodes %20, not +
        editor = page.locator(".graphiql-query-editor .CodeMirror").first
        editor.wait_for(state="visible", timeout=TIMEOUT_MS)
        expect(editor).to_contain_text("recommendationsUpdated")
        page.locator("button.graphiql-execute-button").click()
        result = page.locator(".graphiql-response .result-window")
        expect(result).to_contain_text(first[0]["movie"]["title"], timeout=TIMEOUT_MS)
        top = first[0]["movie"]["id"]
        saved = api.graphql(RATE, {"u": user, "m": top}, token=token)
        assert saved["data"]["rateMovie"]["__typename"] == "RatingSaved"
        expect(result).not_to_contain_text(f'"id": {top},', timeout=TIMEOUT_MS)
        expect(result).to_contain_text("recommendationsUpdated")
    finally:
        context.close()
    assert [urlsplit(url).scheme for url in sockets] == ["ws"]
    assert all(urlsplit(url).path == "/graphql" for url in sockets)
