"""Request logs of a real `recsys-gql serve`: one JSON line per request in production, text in
development, each with the request id the client sent or was given, and nothing personal."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys_gql.settings import Settings
from tests.processes import served_process, wait_ready

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NAMED = "query UserPage($id: Int!, $q: String) { user(id: $id) { ratingsCount } movies(search: $q, first: 1) { totalCount } }"  # noqa: E501
TOKEN = "rgq_not_a_real_token_but_secret"
SEARCH = "zebra-private-words"
BAD = "{ recommendations(userId: 1, first: 0) { score } }"


def requests(url: str) -> dict[str, httpx.Response]:
    """The same requests to each server: named, anonymous with bad input, a probe."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return {
            "named": client.post(
                "/graphql",
                json={"query": NAMED, "variables": {"id": 1, "q": SEARCH}},
                headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "client-id-1"},
            ),
            "bad": client.post(
                "/graphql", json={"query": "{ recommendations(userId: 1, first: 0) { score } }"}
            ),
            "probe": client.get("/readyz"),
        }


def served(stack: ExitStack, settings: Settings, env: dict[str, str], log: Path) -> str:
    env = {**env, "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false"}
    return stack.enter_context(served_process(settings, env, log))


def test_production_logs_one_json_line_per_request(api_settings: Settings, tmp_path: Path) -> None:
    logs = {"production": tmp_path / "production.log", "development": tmp_path / "development.log"}
    with ExitStack() as stack:
        urls = {
            "production": served(
                stack, api_settings, {"RECSYS_GQL_ENV": "production"}, logs["production"]
            ),
            "development": served(stack, api_settings, {}, logs["development"]),
        }
        wait_ready(list(urls.values()), list(logs.values()))
        answers = {name: requests(url) for name, url in urls.items()}
    for answer in answers.values():
        assert answer["named"].status_code == 200, answer["named"].text
        assert answer["named"].headers["x-request-id"] == "client-id-1"
        assert answer["bad"].status_code == 400
        assert len(answer["bad"].headers["x-request-id"]) == 32

    text = logs["production"].read_text()
    entries: list[dict[str, Any]] = [
        json.loads(line) for line in text.splitlines() if not line.startswith("GraphQL on http")
    ]  # every line but the command's banner is one JSON object
    access = {e["request_id"]: e for e in entries if e["logger"] == "recsys_gql.access"}
    named = access["client-id-1"]
    assert named["operation"] == "UserPage"
    assert named["operation_type"] == "query"
    assert (named["method"], named["path"], named["status"]) == ("POST", "/graphql", 200)
    assert named["duration_ms"] > 0
    assert named["cost"] > 1  # the query cost extension's estimate (recsys_gql/api/cost.py)
    assert "error_codes" not in named
    bad = access[answers["production"]["bad"].headers["x-request-id"]]
    assert (bad["status"], bad["operation"], bad["error_codes"]) == (
        400,
        None,
        ["INVALID_ARGUMENT"],
    )
    assert len(access) == 2  # the probe is logged at DEBUG only
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]  # no duplicate line
    for secret in (TOKEN, SEARCH, "ratingsCount", "Authorization"):
        assert secret not in text

    development = logs["development"].read_text()
    assert "POST /graphql 200" in development
    assert "query UserPage" in development
    assert "id=client-id-1" in development
    assert '"request_id"' not in development
    assert TOKEN not in development
