"""Request ids: the client's when sane, else generated; returned, and on every log record."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from recsys_gql.middleware.request_id import (
    RequestId,
    RequestIdFilter,
    current_request_id,
    sane_request_id,
)
from recsys_gql.middleware.request_state import REQUEST_ID

GENERATED = re.compile(r"[0-9a-f]{32}")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the id the request was given, as the app below the middleware sees it."""
    logging.getLogger("tests.echo").warning("inside the request")
    body = f"{scope['state'][REQUEST_ID]} {current_request_id()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def get(headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=RequestId(echo))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/", headers=headers)


@pytest.mark.parametrize(
    "given",
    [
        "abc-123",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "Root=1-67891233-abcdef012345678912345678",
        "req.7:a/b+c_d",
        "x" * 128,
    ],
)
async def test_a_sane_id_is_kept_and_returned(given: str) -> None:
    response = await get({"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    assert response.text == f"{given} {given}"


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", 'quote"d', "semi;colon", "<b>"])
async def test_anything_else_is_replaced_by_a_new_id(given: str) -> None:
    response = await get({"X-Request-ID": given})
    generated = response.headers["x-request-id"]
    assert GENERATED.fullmatch(generated)
    assert response.text == f"{generated} {generated}"


@pytest.mark.parametrize("raw", [b"new\nline", b"carriage\rreturn", "ünï".encode(), b"\x00"])
def test_bytes_no_client_library_would_send_are_replaced_too(raw: bytes) -> None:
    assert GENERATED.fullmatch(sane_request_id(raw))


def test_no_header_gets_a_new_id() -> None:
    assert GENERATED.fullmatch(sane_request_id(None))


async def test_every_request_gets_its_own_id() -> None:
    first, second = await get(), await get()
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert current_request_id() is None  # nothing leaks out of the request


async def test_log_records_carry_the_id_of_their_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.WARNING, logger="tests.echo"):
        response = await get({"X-Request-ID": "trace-me"})
        logging.getLogger("tests.echo").warning("outside any request")
    inside, outside = caplog.records
    assert response.status_code == 200
    assert inside.request_id == "trace-me"  # type: ignore[attr-defined]
    assert outside.request_id is None  # type: ignore[attr-defined]
