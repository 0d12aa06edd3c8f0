"""The access log: one record per request with what an operator needs and nothing personal."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from recsys_gql.middleware.access_log import AccessLog
from recsys_gql.middleware.request_id import RequestId

LOGGER = "recsys_gql.access"


async def graphql(request: Request) -> Response:
    """Stands in for the GraphQL layer: leaves the facts it learns on the request's state."""
    request.state.graphql_operation = "UserPage"
    request.state.graphql_operation_type = "query"
    request.state.graphql_error_codes = ["INVALID_ARGUMENT"]
    request.state.query_cost = 42  # the hook for the query cost limits
    return JSONResponse({"data": None}, status_code=400)


async def crash(_: Request) -> Response:
    raise RuntimeError("boom")


async def ok(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/crash", crash),
            Route("/healthz", ok),
            Route("/plain", ok),
        ],
        middleware=[Middleware(RequestId), Middleware(AccessLog)],
    )


async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, url, **kwargs)


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == LOGGER]


async def test_a_graphql_request_is_logged_with_its_operation_and_cost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    response = await call(
        "POST",
        "/graphql?token=rgq_in_the_url",
        json={"query": "query UserPage { user(id: 1) { id } }", "variables": {"email": "a@b.c"}},
        headers={"Authorization": "Bearer rgq_secret", "X-Request-ID": "req-1"},
    )
    [record] = access_records(caplog)
    fields = {key: getattr(record, key) for key in FIELDS if hasattr(record, key)}
    assert fields == {
        "request_id": "req-1",
        "method": "POST",
        "path": "/graphql",
        "status": 400,
        "duration_ms": fields["duration_ms"],
        "operation": "UserPage",
        "operation_type": "query",
        "error_codes": ["INVALID_ARGUMENT"],
        "cost": 42,
    }
    assert 0 < fields["duration_ms"] < 5_000
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert message.startswith("POST /graphql 400 ")
    assert "query UserPage errors INVALID_ARGUMENT cost 42 id=req-1" in message
    everything = repr(record.__dict__)
    for secret in ("rgq_secret", "rgq_in_the_url", "a@b.c", "user(id", "127.0.0.1"):
        assert secret not in everything
    assert response.headers["x-request-id"] == "req-1"


FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "operation",
    "operation_type",
    "error_codes",
    "cost",
)


async def test_a_request_outside_graphql_has_no_graphql_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await call("GET", "/plain")
    [record] = access_records(caplog)
    assert record.status == 200  # type: ignore[attr-defined]
    for absent in ("operation", "operation_type", "error_codes", "cost"):
        assert not hasattr(record, absent)


async def test_a_crash_is_logged_as_500_and_still_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    response = await call("GET", "/crash")
    assert response.status_code == 500
    [record] = access_records(caplog)
    assert record.status == 500  # type: ignore[attr-defined]


async def test_health_probes_are_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await call("GET", "/healthz")
    assert access_records(caplog) == []
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await call("GET", "/healthz")
    [record] = access_records(caplog)
    assert record.levelno == logging.DEBUG
