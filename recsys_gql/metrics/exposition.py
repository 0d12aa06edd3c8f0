"""Serving the metrics: the ``/metrics`` route of the app, and the separate metrics port.

Both answer in Prometheus's text format (``CONTENT_TYPE_LATEST``) from
:func:`~recsys_gql.metrics.multiprocess.scrape_registry`: under ``recsys-gql serve`` the sum
over every worker, whichever process answers. Reading the workers' files is blocking work, so
the route reads them in a thread.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recsys_gql.metrics.multiprocess import scrape_registry

__all__ = ["metrics_endpoint", "start_metrics_port"]


def render() -> bytes:
    """The metrics in Prometheus's text format."""
    return generate_latest(scrape_registry())


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics``."""
    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)


def start_metrics_port(host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """prometheus-client's own HTTP server on ``host``:``port`` in a daemon thread of this
    process (the server's, or the workers' supervisor); ``server.shutdown()`` stops it."""
    return start_http_server(port, addr=host, registry=scrape_registry())
