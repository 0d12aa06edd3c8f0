"""Running the app under uvicorn: one process, or several workers on one listening socket.

``uvicorn.run`` with ``workers > 1`` binds the shared socket with ``proto`` left at 0, so the
connections the workers accept report ``proto`` 0 too, and asyncio's event loop only turns on
``TCP_NODELAY`` for sockets that say ``IPPROTO_TCP`` (uvicorn issue #3149). Nagle's algorithm
then holds the body of every keep-alive response, written after its headers, until the
client's delayed ACK, tens of milliseconds a request on Linux. :func:`serve` does what
``uvicorn.run`` does but binds that socket itself, as a TCP socket.

The workers share that socket, and asyncio's loop accepts every pending connection each time
it finds the socket readable: 32 connections opened at once all went to one worker while the
other idled. Workers therefore run :class:`OneAcceptEventLoop`, which takes one per wake-up,
so a worker busy with requests leaves the next connection to an idle one (as uvloop, and
libuv under it, do). It does not cost clients that open a connection per request
(``python -m bench.asgi_floor`` compares the two).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from recsys_gql.settings import EventLoop

log = logging.getLogger("uvicorn.error")


def uvicorn_loop(event_loop: EventLoop, workers: int) -> str:
    """uvicorn's ``loop`` option for ``RECSYS_GQL_EVENT_LOOP`` (``asyncio`` or ``uvloop``)
    and the number of workers: several workers on ``asyncio`` take
    :class:`OneAcceptEventLoop`. One worker keeps asyncio's batch accept: accepting one
    connection per wake-up delays the last of a burst of new connections while the loop
    serves the first."""
    if event_loop == "asyncio" and workers > 1:
        return f"{__name__}:{OneAcceptEventLoop.__name__}"
    return event_loop


class OneAcceptEventLoop(asyncio.SelectorEventLoop):
    """The standard library's event loop, accepting at most one connection each time a
    listening socket is readable (the selector reports it again while more are pending).

    It narrows the private hook that ``asyncio``'s selector loop calls with its accept
    batch size; ``tests/api/test_serving.py`` holds it to its effect, so a Python release
    that changes the hook fails there rather than in production."""

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super()._accept_connection(  # type: ignore[misc]
            protocol_factory, sock, sslcontext, server, 1, *args, **kwargs
        )


def tcp_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` for the workers to listen on, created as TCP
    (``IPPROTO_TCP``) so that the connections accepted from it get ``TCP_NODELAY``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # the workers are spawned processes
    return sock


def serve(config: uvicorn.Config) -> None:
    """Serve ``config`` until stopped: in this process, or in ``config.workers`` worker
    processes supervised by uvicorn. Exits with uvicorn's start-up failure code when the
    app (or the port) cannot start."""
    if config.workers <= 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    try:
        sock = tcp_listener(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    log.info("Uvicorn running on http://%s:%d with %d workers", config.host, config.port,
             config.workers)  # fmt: skip
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
