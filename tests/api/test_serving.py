"""The sockets and the event loop ``recsys-gql serve`` runs its workers on, and how long its
supervisor waits for a busy worker."""

from __future__ import annotations

import asyncio
import importlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
from pydantic import ValidationError

from recsys_gql.serving import (
    OneAcceptEventLoop,
    ReloadingMultiprocess,
    tcp_listener,
    uvicorn_config,
    uvicorn_loop,
)
from recsys_gql.settings import Settings


def rebuilt_in_worker(sock: socket.socket) -> socket.socket:
    """The listener as a spawned worker gets it (multiprocessing rebuilds it from its fd,
    family, type and proto)."""
    return socket.socket(sock.family, sock.type, sock.proto, fileno=sock.dup().detach())


@contextmanager
def connected_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            for _ in range(count)
        ]


def test_connections_accepted_from_the_shared_listener_get_tcp_nodelay() -> None:
    listener = tcp_listener("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    worker_copy = rebuilt_in_worker(listener)
    port = listener.getsockname()[1]
    nodelay: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=worker_copy)
        async with server:
            await asyncio.to_thread(socket.create_connection(("127.0.0.1", port)).close)
            while not nodelay:
                await asyncio.sleep(0.01)

    try:
        asyncio.run(asyncio.wait_for(accept_one(), 10))
    finally:
        listener.close()
    assert nodelay == [1]  # Nagle off: a response's body is not held for the client's ACK


@pytest.mark.parametrize(
    ("new_loop", "at_least_left"),
    [(asyncio.SelectorEventLoop, 0), (OneAcceptEventLoop, 2)],
    ids=["standard", "one-accept"],
)
def test_a_wake_up_accepts_every_pending_connection_or_one(
    new_loop: Callable[[], asyncio.AbstractEventLoop], at_least_left: int
) -> None:
    """Five connections wait; the loop runs two iterations. The standard loop takes them all
    at once (so one of several workers sharing the socket would get every one of them);
    the one-accept loop leaves the rest for whichever worker polls next."""
    listener = tcp_listener("127.0.0.1", 0)
    loop = new_loop()
    transports: list[asyncio.BaseTransport] = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    try:
        server = loop.run_until_complete(loop.create_server(Keep, sock=listener))
        with connected_clients(listener.getsockname()[1], 5):
            loop.run_until_complete(asyncio.sleep(0))
            left = 0
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.close()
                left += 1
            loop.run_until_complete(asyncio.sleep(0.05))  # the accepted ones get transports
            for transport in transports:
                transport.close()
            server.close()
            loop.run_until_complete(server.wait_closed())
    finally:
        loop.close()
        listener.close()
    if at_least_left:
        assert at_least_left <= left < 5
    else:
        assert left == 0


def test_only_several_workers_on_asyncio_take_the_one_accept_loop() -> None:
    assert uvicorn_loop("asyncio", 1) == "asyncio"
    assert uvicorn_loop("uvloop", 4) == "uvloop"
    loop_class = uvicorn_loop("asyncio", 2)
    module, name = loop_class.split(":")
    assert getattr(importlib.import_module(module), name) is OneAcceptEventLoop


@pytest.mark.parametrize(("configured", "waited"), [(None, 30), (90, 90)])
def test_the_supervisor_waits_for_a_busy_worker_as_long_as_configured(
    configured: int | None, waited: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's supervisor pings each worker and kills one that does not answer in time;
    the wait is the setting's (30 s unless set), not uvicorn's 5 s."""
    if configured is not None:
        monkeypatch.setenv("RECSYS_GQL_WORKER_HEALTHCHECK_TIMEOUT", str(configured))
    config = uvicorn_config(Settings(), "127.0.0.1", 8000, 2)

    class Worker:
        pid, exitcode = 4242, None

        def __init__(self) -> None:
            self.pinged_with: list[float] = []

        def is_alive(self, timeout: float) -> bool:
            self.pinged_with.append(timeout)
            return True

    worker = Worker()
    # built without __init__, which installs the supervisor's signal handlers in this process
    supervisor = ReloadingMultiprocess.__new__(ReloadingMultiprocess)
    supervisor.config, supervisor.processes = config, [worker]  # type: ignore[list-item]
    supervisor.should_exit = threading.Event()
    supervisor.keep_subprocess_alive()
    assert worker.pinged_with == [waited]


def test_a_worker_healthcheck_timeout_outside_its_range_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSYS_GQL_WORKER_HEALTHCHECK_TIMEOUT", "0")
    with pytest.raises(ValidationError, match="worker_healthcheck_timeout"):
        Settings()
