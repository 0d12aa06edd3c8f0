"""What tracing adds to the app when it is on (:func:`recsys_gql.tracing.tracing_enabled`).

One request becomes one trace: the ASGI instrumentation's HTTP server span, under it
Strawberry's operation span (parsing, validation) and a span per resolver, under those the
engine's calls (:class:`TracedEngine`) and the database's statements — the SQLAlchemy
instrumentation's for PostgreSQL and every ORM session, :class:`TracedHotReads` for the reads
that go straight to a SQLite file — and Redis commands of the rate limiter (the Redis
instrumentation).

What is kept out of spans, as out of the logs: the query's text (Strawberry's extension would
record it whole), resolver arguments other than :data:`ARGUMENTS_RECORDED`, headers, and the
URL's query string (a GET request carries the query and its variables there).

Nothing is global: the tracer provider belongs to the app, instrumentations are installed when
the app starts and removed when it stops, and spans still queued are flushed then.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Generator, Sequence
from contextlib import suppress
from typing import Any, cast

from graphql import GraphQLResolveInfo
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer
from starlette.middleware import Middleware
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension

from recsys_gql.db.hot_reads import HotReads, SqliteHotReads
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings
from recsys_gql.tracing import traces_endpoint

__all__ = [
    "ARGUMENTS_RECORDED",
    "ENGINE_CALLS",
    "TracedEngine",
    "TracedHotReads",
    "Tracing",
]

SERVICE = "recsys-gql"
ARGUMENTS_RECORDED = frozenset({"first", "after", "alpha", "genres", "exclude_rated", "movie_id"})
"""Resolver arguments a span may carry: shapes of the request, never a user's words or ids."""
ENGINE_CALLS = ("recommend", "similar", "search", "popular")
"""The engine's methods that get a span each."""
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def _arguments_recorded(args: dict[str, Any], _info: GraphQLResolveInfo[Any]) -> dict[str, Any]:
    return {name: value for name, value in args.items() if name in ARGUMENTS_RECORDED}


class GraphQLSpans(OpenTelemetryExtension):
    """Strawberry's OpenTelemetry extension without the query's text on the operation span
    (it may hold a user's search words or ids inline): the span gets the operation's name and
    type instead, as OpenTelemetry's GraphQL conventions name them."""

    def on_operation(self) -> Generator[None, None, None]:
        execution = self.execution_context
        span = self._tracer.start_span("GraphQL Operation", kind=SpanKind.SERVER)
        self._span_holder[LifecycleStep.OPERATION] = span
        span.set_attribute("component", "graphql")
        yield
        name = execution.operation_name
        span.update_name(f"GraphQL Operation: {name}" if name else "GraphQL Operation")
        if name:
            span.set_attribute("graphql.operation.name", name)
        if execution.graphql_document is not None:
            with suppress(RuntimeError):  # no operation of that name in the document
                span.set_attribute("graphql.operation.type", execution.operation_type.value)
        span.end()


class TracedEngine:
    """The engine, with a span around each of :data:`ENGINE_CALLS` (started in whichever
    thread runs the call, as a child of the resolver that made it). Everything else is the
    engine's own attribute."""

    def __init__(self, engine: Engine, tracer: Tracer) -> None:
        self._engine = engine
        self._tracer = tracer
        for name in ENGINE_CALLS:
            setattr(self, name, self._traced(name, getattr(engine, name)))

    def _traced(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        tracer = self._tracer

        @functools.wraps(call)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(f"engine.{name}", kind=SpanKind.INTERNAL):
                return call(*args, **kwargs)

        return traced

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class TracedHotReads(HotReads):
    """:class:`~recsys_gql.db.hot_reads.SqliteHotReads` with a client span per statement
    (those reads use the standard library's ``sqlite3``, which no instrumentation sees)."""

    def __init__(self, reads: SqliteHotReads, tracer: Tracer) -> None:
        self._reads = reads
        self._tracer = tracer
        self._database = reads.uri.rsplit("/", 1)[-1].split("?", 1)[0]

    async def _run(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        verb = sql.split(None, 1)[0]
        with self._tracer.start_as_current_span(
            f"{verb} {self._database}",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "sqlite", "db.name": self._database, "db.statement": sql},
        ):
            return await self._reads._run(sql, parameters)

    async def change_counter(self) -> int | None:
        return await self._reads.change_counter()

    def close(self) -> None:
        self._reads.close()


def _without_query_string(span: Span, _scope: dict[str, Any]) -> None:
    """The ASGI instrumentation records the URL with its query string; a GET request carries
    the GraphQL query and its variables there."""
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
        elif key == "url.query" and value:
            span.set_attribute(key, "")


def _resource() -> Resource:
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES included
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
    return resource


@dataclasses.dataclass
class Tracing:
    """The app's tracer provider and what it instruments; :meth:`create` builds it."""

    provider: TracerProvider
    tracer: Tracer

    @classmethod
    def create(cls, settings: Settings, exporter: SpanExporter | None = None) -> Tracing:
        """A provider exporting over OTLP/HTTP in batches, or to ``exporter`` (tests pass
        OpenTelemetry's in-memory exporter) synchronously."""
        provider = TracerProvider(resource=_resource())
        processor: SpanProcessor
        if exporter is None:
            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint(settings)))
        else:
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            processor = SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        return cls(provider, provider.get_tracer("recsys_gql"))

    def middleware(self) -> Middleware:
        """The ASGI instrumentation, to wrap the whole app (outermost)."""
        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            server_request_hook=_without_query_string,
            exclude_spans=["receive", "send"],
        )

    def schema_extension(self) -> Callable[[], SchemaExtension]:
        """Strawberry's extension (less the query text), for the schema's extension list."""
        return lambda: GraphQLSpans(arg_filter=_arguments_recorded, tracer_provider=self.provider)

    def instrument(self, engine: Engine, database: Database) -> tuple[Engine, Database]:
        """Instrument the database engine and Redis, and trace the engine's calls and the
        SQLite hot reads; returns the engine and database to serve with."""
        SQLAlchemyInstrumentor().instrument(
            engine=database.engine.sync_engine,
            tracer_provider=self.provider,
            # Its package declares SQLAlchemy < 2.1; the engine events it listens to are the
            # same in 2.1 (tests/api/test_tracing.py holds it to its spans on PostgreSQL).
            skip_dep_check=True,
        )
        RedisInstrumentor().instrument(tracer_provider=self.provider)
        if isinstance(database.reads, SqliteHotReads):
            database = dataclasses.replace(
                database, reads=TracedHotReads(database.reads, self.tracer)
            )
        return cast(Engine, TracedEngine(engine, self.tracer)), database

    def shutdown(self) -> None:
        """Remove the instrumentations and flush the spans still queued."""
        SQLAlchemyInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
        self.provider.shutdown()  # flushes the batch processor (its own timeout applies)
