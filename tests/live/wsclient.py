"""A minimal graphql-transport-ws client over ``websockets``, for protocol-level tests: each
message is visible, and so is the close code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"
RECS = """subscription ($n: Int!) { recommendationsUpdated(first: $n) { movie { id } } }"""


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/graphql"


class Live:
    """One open connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next message that is not a ping (pings are answered)."""
        while True:
            async with asyncio.timeout(timeout):
                message: dict[str, Any] = json.loads(await self.ws.recv())
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def subscribe(
        self, op_id: str, query: str = RECS, variables: dict[str, Any] | None = None
    ) -> None:
        payload = {"query": query, "variables": {"n": 5} if variables is None else variables}
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def close_code(self, timeout: float = 10) -> int | None:
        """Wait for the server to close the connection; its close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


@asynccontextmanager
async def opened(
    http_url: str, payload: dict[str, Any] | None, *, init: bool = True
) -> AsyncIterator[Live]:
    """A connection; with ``init``, ``connection_init`` sent with ``payload`` (the ack or the
    refusal is for the caller to read)."""
    async with connect(ws_url(http_url), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        live = Live(ws)
        if init:
            await live.send({"type": "connection_init", "payload": payload or {}})
        yield live


@asynccontextmanager
async def signed_in(http_url: str, token: str) -> AsyncIterator[Live]:
    """An acknowledged connection for ``token``."""
    async with opened(http_url, {"Authorization": f"Bearer {token}"}) as live:
        ack = await live.receive()
        assert ack["type"] == "connection_ack", ack
        yield live


def ids(message: dict[str, Any]) -> list[int]:
    """The movie ids of a ``next`` message of :data:`RECS`."""
    assert message["type"] == "next", message
    return [r["movie"]["id"] for r in message["payload"]["data"]["recommendationsUpdated"]]


def live_stats(http_url: str) -> dict[str, int]:
    """The server's live counters (``/stats``): open watches and asyncio tasks."""
    stats: dict[str, int] = httpx.get(f"{http_url}/stats", timeout=10).json()["live"]
    return stats
