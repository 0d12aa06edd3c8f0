"""Runtime settings, read once from ``RECSYS_GQL_*`` environment variables."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RATE_LIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/recsys-gql`` (``~/.cache/recsys-gql``): survives a fresh clone."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recsys-gql"


EventLoop = Literal["asyncio", "uvloop"]
"""The event loops ``recsys-gql serve`` can run on (``RECSYS_GQL_EVENT_LOOP``)."""


class Settings(BaseSettings):
    """Every knob of the service; each field maps to ``RECSYS_GQL_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="RECSYS_GQL_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    data_dir: Path = Path("data")
    """Where ``data fetch`` puts raw data (``<data_dir>/raw/ml-latest-small``)."""

    data_source: str | None = None
    """A local folder or zip to fetch MovieLens from instead of downloading it."""

    artifacts_dir: Path = Path("artifacts")
    """Where training writes ``<run-id>/`` folders and the ``current`` link."""

    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Embedding and TMDB caches; safe to delete."""

    database_url: str = "sqlite+aiosqlite:///data/recsys.db"
    """SQLAlchemy async URL of the catalog and ratings database: ``sqlite+aiosqlite:///<path>``
    (a relative path is relative to the working directory; the folder is created) or
    ``postgresql+asyncpg://user@host:5432/dbname``."""

    database_pool_size: int = Field(default=10, ge=1, le=1000)
    """PostgreSQL connections each worker process keeps open (SQLite: unused). Size it with
    ``max_connections`` of the server in view: workers x replicas x (this + overflow)."""

    database_max_overflow: int = Field(default=20, ge=0, le=1000)
    """PostgreSQL connections a worker may open beyond the pool in a burst (closed after)."""

    env: Literal["development", "production"] = "development"
    """``production`` turns off introspection, field suggestions and (unless asked) GraphiQL."""

    graphiql: bool | None = None
    """Serve the GraphiQL explorer at ``/graphql``; default: on, except in production."""

    max_body_bytes: int = 64 * 1024
    """Largest accepted request body (bigger: 413)."""

    max_query_depth: int = 10
    """Deepest accepted selection nesting."""

    max_query_aliases: int = 30
    """Most aliases in one operation."""

    max_query_tokens: int = 2000
    """Most lexical tokens in one operation."""

    request_timeout_seconds: float = 15.0
    """A GraphQL request running longer is answered 503 (code TIMEOUT); its engine calls
    not yet started by then never start."""

    max_query_cost: int = Field(default=10_000, ge=1)
    """Most cost units one operation may spend (one unit: resolving one object; engine-backed
    fields weigh more, see ``schema.graphql``'s ``@cost``); above it: 400 QUERY_TOO_COSTLY."""

    query_cost_per_read: int = Field(default=600, ge=1)
    """Cost units one read of the read rate limit buys: a query spends
    ``max(1, ceil(cost / this))`` reads."""

    cors_allow_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins (comma-separated or a JSON list, e.g. ``https://app.example.com``) whose
    browser pages may call the API cross-origin; none by default (the page at ``/`` is
    same-origin and needs no CORS). ``*`` is refused: list the origins."""

    preload_search_model: bool = True
    """Load the query encoder in the background at start-up, so the first ``searchMovies``
    does not wait for it (seconds of CPU and about 100 MB, plus, on a machine's first start
    with an ONNX ``search_encoder``, its one-off export; ``false`` loads it on first use)."""

    recommendation_memo_size: int = Field(default=1024, ge=0)
    """How many ``recommend`` results each process keeps for repeat requests; a result is
    reused only while the user's ratings are exactly those it came from (``0``: none)."""

    search_cache_size: int = Field(default=4096, ge=0)
    """How many ``searchMovies`` answers (query text and ``first``) each process keeps for
    repeated queries, least recently used out first (``0``: none)."""

    search_batch_window_ms: float = Field(default=2.0, ge=0, le=100)
    """How long a search query that finds the encoder idle waits for others to encode with it:
    the most a lone query is delayed. Under load batches form without waiting."""

    search_batch_max: int = Field(default=32, ge=1, le=256)
    """Most queries encoded in one batch."""

    ranker_backend: Literal["compiled", "lightgbm"] = "compiled"
    """How the ranking stage's trees are evaluated: ``compiled`` to native code by lleaves when
    the engine loads (checked to score as LightGBM does; LightGBM is kept, with a warning, if
    not), or ``lightgbm``'s own predict. The same scores; compiled costs a fraction of the
    time per request and a compile at each model load (figures in BENCHMARKS.md)."""

    search_encoder: Literal["run", "torch", "onnx", "onnx-int8"] = "onnx-int8"
    """How ``searchMovies`` encodes queries: ``run`` exactly as the served run embedded its
    movies, or the same weights on torch (fp32) or ONNX Runtime (fp32 or int8 weights).
    ``onnx-int8`` encodes several times faster than torch and finds the labelled movie of the
    search set as often (``python -m bench.search_quality``; figures in BENCHMARKS.md). The
    ONNX graph is exported into ``cache_dir`` once, on first use, or ahead of serving with
    ``recsys-gql encoder export`` (the Docker image has it built in): an export needs torch
    and seconds of CPU in each server process that finds none."""

    search_encoder_threads: int = Field(default=1, ge=1, le=64)
    """Threads the query encoder computes with (torch's or ONNX Runtime's intra-op threads).
    One leaves the other core of a two-core machine to the event loop; see BENCHMARKS.md."""

    inline_engine_ms: float = 10.0
    """Engine calls estimated to take at most this many milliseconds run on the event loop
    rather than in a worker thread (``0``: every call goes to a thread). Under the GIL a thread
    adds no core, only hand-offs of the GIL between it and the loop, so a default
    recommendation runs inline; a long history's, estimated above this, goes to a thread,
    which bounds how long one call holds the loop. Chosen by measurement (BENCHMARKS.md,
    "Engine calls on the event loop")."""

    engine_threads: int = Field(default=2, ge=1, le=64)
    """Worker threads that run engine calls at once; further calls wait their turn in order.
    Under the GIL more threads than cores add no work done, only hand-offs of the GIL between
    them (every numpy call of the engine releases and retakes it). How many to use was
    measured against anyio's default of 40 and against one (BENCHMARKS.md, "Engine
    threads")."""

    @property
    def is_production(self) -> bool:
        """Whether ``env`` is production."""
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL unless turned off, or in production unless turned on."""
        return self.graphiql if self.graphiql is not None else not self.is_production

    host: str = "127.0.0.1"
    """Address ``recsys-gql serve`` binds to."""

    port: int = 8000
    """Port ``recsys-gql serve`` listens on."""

    workers: int = 1
    """uvicorn worker processes (each loads its own engine)."""

    worker_healthcheck_timeout: int = Field(default=30, ge=1, le=600)
    """Seconds uvicorn's supervisor (``workers`` above 1) waits for a worker to answer its
    ping before it kills the worker as hung and starts another; the requests in flight are
    lost. The answer needs the worker's interpreter lock, which native calls (importing
    torch from a cold disk, say) hold for seconds at a time on a busy machine, so uvicorn's
    own 5 s killed workers that were only busy (measured in docs/docker.md)."""

    event_loop: EventLoop = "asyncio"
    """The event loop ``recsys-gql serve`` runs each worker on. The standard library's by
    default: under 32 connections uvloop answered a few requests per hundred many rounds late,
    for no throughput gain once a request does real work (``python -m bench.asgi_floor``;
    figures in BENCHMARKS.md)."""

    rate_limit_reads: str = "30/minute"
    """Queries per client IP, moving window, in `limits` notation (``"30/minute"``)."""

    rate_limit_writes: str = "10/minute"
    """Mutation fields per authenticated user (else per client IP), moving window; five
    aliased ``rateMovie`` calls in one request spend five."""

    rate_limit_storage: str = "memory://"
    """Where the counters live: ``memory://`` (per process) or ``redis://host:6379`` (shared
    by every process and replica)."""

    rate_limit_fail_open: bool = True
    """When the storage is unreachable: serve without limiting and log a warning (``true``),
    or refuse GraphQL requests with 503 ``RATE_LIMIT_UNAVAILABLE`` (``false``)."""

    rate_limit_key_prefix: str = "recsys-gql"
    """Namespace of the counters (lets deployments or tests share one Redis)."""

    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()
    """Addresses or networks (comma-separated or a JSON list) whose ``X-Forwarded-For`` names
    the client; from any other peer the header is ignored."""

    # --- live updates: subscriptions over WebSocket (docs/subscriptions.md) -----------------

    live_updates_redis: str | None = None
    """Redis URL the replicas announce users' changes on (pub/sub); default: the rate-limit
    storage when that is ``redis://``, else changes stay in this process."""

    max_subscriptions_per_user: int = Field(default=5, ge=1, le=1000)
    """Most live subscriptions one user may hold open in one server process."""

    max_subscriptions_per_connection: int = Field(default=5, ge=1, le=1000)
    """Most operations one WebSocket connection may run at once."""

    ws_keep_alive_seconds: float = Field(default=15.0, gt=0, le=3600)
    """How often the server pings an idle WebSocket client (graphql-transport-ws ``ping``)
    and checks that its token is still live (a revoked one is closed with 4403)."""

    ws_connection_init_seconds: float = Field(default=10.0, gt=0, le=600)
    """How long a new WebSocket may wait before sending ``connection_init`` (then 4408)."""

    # --- operations: logs and tracing (docs/operations.md) ---------------------------------

    access_log: bool = True
    """One log line per request (``recsys_gql.access``); uvicorn's own access log is off."""

    log_format: Literal["json", "text"] | None = None
    """``json`` (one object per line) or ``text``; default: JSON in production, else text."""

    otlp_endpoint: str | None = None
    """OTLP/HTTP collector to send traces to, e.g. ``http://collector:4318`` (spans go to its
    ``/v1/traces``). Unset: tracing is off unless the standard ``OTEL_EXPORTER_OTLP_*ENDPOINT``
    variables name one (docs/operations.md)."""

    # --- operations: metrics and reload (docs/operations.md) ---------------------------------

    metrics_public: bool | None = None
    """Serve Prometheus metrics at ``/metrics`` on the public port; default: on, except in
    production (where the public port is the internet's: use ``metrics_port``)."""

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """A separate port for ``/metrics`` (``recsys-gql serve`` runs it in the serving process
    or the workers' supervisor, reading every worker's numbers); unset: none."""

    metrics_host: str = "127.0.0.1"
    """The address ``metrics_port`` binds to (``0.0.0.0`` for a scraper on another host)."""

    @property
    def metrics_on_public_port(self) -> bool:
        """``/metrics`` on the public port: when asked, or by default outside production."""
        return self.metrics_public if self.metrics_public is not None else not self.is_production

    @field_validator("rate_limit_reads", "rate_limit_writes")
    @classmethod
    def _one_rate_limit(cls, value: str) -> str:
        if len(parse_many(value)) != 1:
            raise ValueError("expected one limit, like '30/minute'")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        scheme = value.removeprefix("async+").partition("://")[0]
        if scheme not in RATE_LIMIT_STORAGE_SCHEMES:
            raise ValueError("expected memory:// or redis://host:port")
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _explicit_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "*" or "://" not in origin or origin.endswith("/"):
                raise ValueError(
                    f"{origin!r}: expected origins like https://app.example.com (no '*', no path)"
                )
        return value

    @field_validator("trusted_proxies", "cors_allow_origins", mode="before")
    @classmethod
    def _comma_or_json_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def raw_data_dir(self) -> Path:
        """The MovieLens folder training reads by default."""
        return self.data_dir / "raw" / "ml-latest-small"
