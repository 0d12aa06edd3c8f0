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
import os
import signal
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from recsys_gql.logs import logging_config
from recsys_gql.metrics.multiprocess import mark_dead
from recsys_gql.settings import EventLoop, Settings

log = logging.getLogger("uvicorn.error")


def uvicorn_config(settings: Settings, host: str, port: int, workers: int) -> uvicorn.Config:
    """How ``recsys-gql serve`` runs uvicorn: the app factory on ``host``:``port`` in
    ``workers`` processes, with the project's logging and loop, and the supervisor's patience
    with a busy worker (``RECSYS_GQL_WORKER_HEALTHCHECK_TIMEOUT``)."""
    return uvicorn.Config(
        "recsys_gql.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=uvicorn_loop(settings.event_loop, workers),
        log_level="info",
        log_config=logging_config(settings),
        access_log=False,  # the app logs every request itself (recsys_gql.middleware.access_log)
        # X-Forwarded-For is trusted only from RECSYS_GQL_TRUSTED_PROXIES, by the app itself;
        # uvicorn's own handling would trust any loopback peer.
        proxy_headers=False,
        timeout_worker_healthcheck=settings.worker_healthcheck_timeout,
    )


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


class ReloadingMultiprocess(Multiprocess):
    """uvicorn's supervisor of worker processes, with two changes.

    - ``SIGHUP`` is passed on to every worker, each of which switches to the run
      ``artifacts/current`` points at in place (:mod:`recsys_gql.reload`), instead of
      uvicorn's restart of every worker: nothing is reloaded from scratch, no connection is
      closed, and a damaged run is refused by workers that keep serving rather than by new
      ones that fail to start.
    - A worker that exits, or is replaced, is marked dead for the metrics
      (:func:`recsys_gql.metrics.multiprocess.mark_dead`).
    """

    def handle_hup(self) -> None:
        log.info("Received SIGHUP, asking every worker to reload artifacts/current.")
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._forget(before)

    def handle_signals(self) -> None:
        before = self._pids()
        super().handle_signals()
        self._forget(before)

    def join_all(self) -> None:
        super().join_all()
        for pid in self._pids():
            mark_dead(pid)

    def _pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    def _forget(self, before: set[int]) -> None:
        """Mark dead the workers of ``before`` that are no longer supervised."""
        for pid in before - self._pids():
            mark_dead(pid)


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
        ReloadingMultiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
