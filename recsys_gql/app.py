"""The Starlette application: ``create_app(settings)`` and its lifespan.

The lifespan verifies and loads the engine, opens the database (checking it holds the dataset
the model was trained on), loads the movie catalog and creates the rate limiter; if anything
fails the app refuses to start (uvicorn then exits non-zero) with a message saying what to
run. Nothing is held at module level: each app owns its state through the lifespan.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from recsys_gql.api.limiter import RequestLimiter
from recsys_gql.api.request_work import Turnstile
from recsys_gql.api.schema import build_schema
from recsys_gql.api.served_run import open_run
from recsys_gql.api.view import RecsysGraphQL
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.session import Database
from recsys_gql.errors import RecsysError
from recsys_gql.events import UserChanges, open_user_changes
from recsys_gql.graphiql import assets_route
from recsys_gql.metrics import multiprocess as metrics_multiprocess
from recsys_gql.metrics.exposition import metrics_endpoint
from recsys_gql.metrics.hooks import (
    count_database_errors,
    engine_stage,
    rating_commit,
    storage_error,
)
from recsys_gql.middleware.access_log import AccessLog
from recsys_gql.middleware.body_limit import BodyLimit
from recsys_gql.middleware.metrics import RequestMetrics
from recsys_gql.middleware.request_id import RequestId
from recsys_gql.middleware.timeout import RequestTimeout
from recsys_gql.readiness import StartupError, check_database, open_engine
from recsys_gql.recsys.engine import Engine
from recsys_gql.recsys.runs import verify_run
from recsys_gql.reload import Reloader
from recsys_gql.settings import Settings
from recsys_gql.tracing import tracing_enabled
from recsys_gql.web import web_routes

if TYPE_CHECKING:  # OpenTelemetry is imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter

    from recsys_gql.tracing.otel import Tracing

log = logging.getLogger("recsys_gql")


class State(TypedDict):
    """What the lifespan puts on every request's ``state``."""

    reloader: Reloader
    """Holds the served run (engine, catalog, memo, search batcher): ``reloader.served``."""
    database: Database
    settings: Settings
    rating_writer: RatingWriter
    turnstile: Turnstile
    user_changes: UserChanges


YOUNG_GC_THRESHOLD = 20_000
"""Net allocations between two young-generation collections while serving (CPython's default
is 700). Requests are freed by reference counting as they end (no cycles: see
:mod:`recsys_gql.api.execution`), so what the young generation gathers is what outlives a
request (memo entries, limiter keys); collecting it every 700 allocations cost time per
request and promoted it into full collections. BENCHMARKS.md has the measurements.
"""


def tune_collector() -> tuple[int, int, int]:
    """Raise the young generation's threshold to :data:`YOUNG_GC_THRESHOLD`; returns the
    previous thresholds, for ``gc.set_threshold(*previous)`` on shutdown."""
    previous = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *previous[1:])
    return previous


def freeze_heap() -> None:
    """Exempt everything allocated so far (the catalog, the schema, the search model and the
    libraries behind them) from the garbage collector's full passes.

    Those objects live as long as the process, yet every full collection walked all of them,
    stalling every request in flight. Frozen, a pass walks only what serving has allocated
    since.
    """
    gc.collect()
    gc.freeze()


def _warm_up(reloader: Reloader) -> None:
    """Load the served engine's search model (taking the run through the reloader, so the
    task keeps no engine alive after a reload)."""
    reloader.served.engine.warm_up_search()


def _report_warm_up(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    if (error := task.exception()) is not None:  # searches will retry the load and fail clearly
        log.warning("could not preload the search model: %s", error)
    else:
        freeze_heap()  # torch and the model: hundreds of thousands more long-lived objects
        log.info("search model loaded")


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which event loop implementation runs the app."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _tracing(settings: Settings, span_exporter: SpanExporter | None) -> Tracing | None:
    """The app's tracing when it is on; OpenTelemetry is not even imported when it is off."""
    if span_exporter is None and not tracing_enabled(settings):
        return None
    from recsys_gql.tracing.otel import Tracing

    return Tracing.create(settings, span_exporter)


def create_app(
    settings: Settings | None = None, *, span_exporter: SpanExporter | None = None
) -> Starlette:
    """Build the application (nothing is loaded until the lifespan starts). Tracing is on
    when :func:`~recsys_gql.tracing.tracing_enabled` says so, or with ``span_exporter``
    (where tests collect the spans)."""
    settings = settings or Settings()
    rate_limiter = RequestLimiter(settings)  # one per app, for its schema; connects lazily
    tracing = _tracing(settings, span_exporter)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[State]:
        engine = open_engine(settings)
        engine.stage_timer = engine_stage  # before tracing wraps it
        database = Database.open(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        if tracing is not None:
            engine, database = tracing.instrument(engine, database)
        log.info("artifacts %s verified", engine.directory)
        warm_up: asyncio.Task[None] | None = None
        gc_thresholds: tuple[int, int, int] | None = None
        rate_limiter.on_storage_error = storage_error
        stop_counting_errors = count_database_errors(database.engine.sync_engine)
        rating_writer = RatingWriter(database, on_commit=rating_commit)
        reloader: Reloader | None = None
        user_changes = open_user_changes(settings)
        loop = asyncio.get_running_loop()
        try:
            await user_changes.start()
            reloader = Reloader(
                settings, database, await open_run(engine, database, settings),
                _engine_wrapper(tracing),
            )  # fmt: skip
            del engine  # the reloader alone holds the run, so a reload can let it go
            served = reloader.served
            if not reloader.listen(loop):
                log.debug("not in the main thread: no reload on SIGHUP")
            log.info(
                "serving run %s, %d movies, on %s",
                served.run_id,
                len(served.catalog),
                _loop_name(loop),
            )
            if settings.preload_search_model:
                warm_up = asyncio.create_task(run_in_threadpool(_warm_up, reloader))
                warm_up.add_done_callback(_report_warm_up)
            del served
            freeze_heap()
            gc_thresholds = tune_collector()
            yield {
                "reloader": reloader,
                "database": database,
                "settings": settings,
                "rating_writer": rating_writer,
                "turnstile": Turnstile(settings.engine_threads),
                "user_changes": user_changes,
            }
        finally:
            if warm_up is not None and not warm_up.done():
                warm_up.cancel()  # the load itself finishes in its thread
                with suppress(asyncio.CancelledError):
                    await warm_up
            await rate_limiter.close()
            await user_changes.close()
            await rating_writer.close()
            if reloader is not None:
                await reloader.close(loop)
                served = reloader.served
                await served.close()
                log.info("recommendation memo: %d hits, %d misses", served.memo.hits,
                         served.memo.misses)  # fmt: skip
                log.info("search: %s", served.search_batcher.stats.as_dict())
            stop_counting_errors()
            await database.dispose()
            metrics_multiprocess.mark_dead(os.getpid())  # this worker's live gauges go
            gc.unfreeze()  # let what this app held be collected (tests start many apps)
            if gc_thresholds is not None:
                gc.set_threshold(*gc_thresholds)
            if tracing is not None:
                tracing.shutdown()

    graphql = RecsysGraphQL(
        build_schema(
            settings,
            rate_limiter,
            [tracing.schema_extension()] if tracing is not None else [],
        ),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=True,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_seconds),
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        allowed_origins=settings.cors_allow_origins,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        engine = request.state.reloader.served.engine
        problems: list[str] = []
        try:
            # hashing every artifact is CPU work: keep it off the event loop
            await run_in_threadpool(verify_run, engine.directory)
        except RecsysError as exc:
            problems.append(exc.message)
        try:
            await check_database(request.state.database, engine)
        except StartupError as exc:
            problems.append(str(exc))
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready", "run": engine.manifest.run_id})

    async def stats(request: Request) -> Response:
        """This process's cache counters for its served run (each worker keeps its own;
        ``pid`` says whose). The same lookups feed ``/metrics``, summed over workers."""
        served = request.state.reloader.served
        memo = served.memo
        return JSONResponse(
            {
                "pid": os.getpid(),
                "run": served.run_id,
                "recommendation_memo": {
                    "hits": memo.hits,
                    "misses": memo.misses,
                    "size": memo.size,
                },
                "search": served.search_batcher.stats.as_dict(),
                "live": {
                    "subscribers": request.state.user_changes.subscribers,
                    "tasks": len(asyncio.all_tasks()),
                },
            }
        )

    routes: list[Any] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
    ]
    if settings.metrics_on_public_port:  # docs/operations.md: off in production by default
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
        routes.append(Route("/stats", stats, methods=["GET"]))
    if settings.graphiql_enabled:
        routes.append(assets_route())
    routes.extend(web_routes())  # the people's page at / (recsys_gql/web)
    middleware = [
        *([tracing.middleware()] if tracing is not None else []),  # the trace's root span
        # then: every request, a CORS preflight or a 413 included, gets an id and a line
        Middleware(RequestId),
        *([Middleware(AccessLog)] if settings.access_log else []),
        Middleware(RequestMetrics),
        *([cors_middleware(settings.cors_allow_origins)] if settings.cors_allow_origins else []),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        Middleware(RequestTimeout, seconds=settings.request_timeout_seconds),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    """Starlette's CORS for the listed origins: GraphQL over GET and POST with a bearer token,
    and the rate-limit and request-id headers readable by the page."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=[
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-RateLimit-Cost",
            "X-RateLimit-Resource",
            "X-Request-ID",
        ],
        max_age=600,
    )


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app). A
    ``SIGHUP`` is ignored until the app listens for it (it would end the process)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return create_app(Settings())


def _engine_wrapper(tracing: Tracing | None) -> Callable[[Engine], Engine] | None:
    """How a reloaded engine is wrapped: with tracing's spans when tracing is on."""
    if tracing is None:
        return None
    from recsys_gql.tracing.otel import TracedEngine

    return lambda engine: cast(Engine, TracedEngine(engine, tracing.tracer))
