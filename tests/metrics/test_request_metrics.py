"""The request metrics middleware and its bounded labels, in-process (the metrics are then in
this process's default registry). That the engine and the database layer never import
prometheus-client is an import contract (``metrics-at-the-edge`` in pyproject.toml, run by
tests/test_import_contracts.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from recsys_gql.metrics import registry
from recsys_gql.metrics.registry import MAX_OPERATION_NAMES, operation_label
from recsys_gql.middleware.metrics import RequestMetrics, outcome
from recsys_gql.middleware.request_state import (
    ERROR_CODES,
    OPERATION,
    OPERATION_TYPE,
    state_of,
)

PACKAGE = Path(__file__).resolve().parents[2] / "recsys_gql"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def graphql_like(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers like the GraphQL layer: notes an operation and error codes, then 200."""
    if scope["path"] == "/graphql":
        state = state_of(scope)
        state[OPERATION] = "Probe"
        state[OPERATION_TYPE] = "query"
        state[ERROR_CODES] = ["NOT_FOUND", "BAD_USER_INPUT"]
    status = 404 if scope["path"].startswith("/nowhere") else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("status", "errors", "expected"),
    [(200, False, "ok"), (200, True, "error"), (429, True, "client_error"),
     (400, True, "client_error"), (503, False, "server_error")],
)  # fmt: skip
def test_outcome(status: int, errors: bool, expected: str) -> None:
    assert outcome(status, errors) == expected


async def test_requests_are_counted_by_route_operation_outcome_and_error_code() -> None:
    labels = {"route": "/graphql", "operation": "Probe", "outcome": "error"}
    before = value("recsys_gql_requests_total", **labels)
    codes_before = value("recsys_gql_graphql_errors_total", code="NOT_FOUND")
    other = {"route": "other", "operation": "-", "outcome": "client_error"}
    other_before = value("recsys_gql_requests_total", **other)
    transport = httpx.ASGITransport(app=RequestMetrics(graphql_like))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post("/graphql", json={})
        await client.post("/graphql", json={})
        for n in range(3):  # random paths share one label
            await client.get(f"/nowhere/{n}")
    assert value("recsys_gql_requests_total", **labels) == before + 2
    assert value("recsys_gql_request_duration_seconds_count", **labels) == before + 2
    assert value("recsys_gql_graphql_errors_total", code="NOT_FOUND") == codes_before + 2
    assert value("recsys_gql_requests_total", **other) == other_before + 3


async def test_a_crash_before_any_answer_counts_as_a_server_error() -> None:
    labels = {"route": "/healthz", "operation": "-", "outcome": "server_error"}
    before = value("recsys_gql_requests_total", **labels)
    transport = httpx.ASGITransport(app=RequestMetrics(crashing), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/healthz")
    assert value("recsys_gql_requests_total", **labels) == before + 1


def test_operation_names_are_bounded_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_names", set())
    names = [operation_label(f"Op{n}") for n in range(MAX_OPERATION_NAMES + 50)]
    assert names[:MAX_OPERATION_NAMES] == [f"Op{n}" for n in range(MAX_OPERATION_NAMES)]
    assert set(names[MAX_OPERATION_NAMES:]) == {"(other)"}
    assert operation_label("Op0") == "Op0"  # names already seen keep their label
    assert operation_label(None) == "(anonymous)"
