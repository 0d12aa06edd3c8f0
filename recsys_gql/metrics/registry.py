"""Every metric the service exports, defined once, and the small functions that record them.

The metrics are module-level objects, as prometheus-client wants them: under
``recsys-gql serve`` each worker process writes its values into files of the run's
``PROMETHEUS_MULTIPROC_DIR`` (:mod:`recsys_gql.metrics.multiprocess`), and a scrape sums them
over the workers. The recording functions are what the other layers call, through hooks that
keep prometheus-client out of the pure engine and the database package.

Labels are bounded: routes are the app's own (anything else is ``other``), GraphQL operation
names are free text from clients so each process keeps at most
:data:`MAX_OPERATION_NAMES` of them (later ones are counted as ``(other)``), error codes are
the server's own.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ENGINE_SECONDS",
    "ENGINE_STAGE_SECONDS",
    "MAX_OPERATION_NAMES",
    "operation_label",
]

PREFIX = "recsys_gql"

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
)  # fmt: skip
"""Seconds: a memo hit answers in about a millisecond, the request timeout is 15 s."""

ENGINE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""Seconds: an arm's pass over the catalog takes well under a millisecond to tens of them."""

# --- requests -------------------------------------------------------------------------------

REQUESTS = Counter(
    f"{PREFIX}_requests",
    "HTTP requests answered, by route, GraphQL operation (name, or '-' off GraphQL) and "
    "outcome (ok, error: answered with GraphQL errors, client_error: 4xx, server_error: 5xx).",
    ["route", "operation", "outcome"],
)
REQUEST_SECONDS = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route, operation and outcome.",
    ["route", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    f"{PREFIX}_graphql_errors",
    "GraphQL answers carrying an error with this extensions.code (once per answer and code).",
    ["code"],
)

# --- cost and throttling ----------------------------------------------------------------------

QUERY_COST = Histogram(
    f"{PREFIX}_query_cost",
    "Estimated cost of each priced operation (recsys_gql/api/cost.py).",
    buckets=(1, 5, 10, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
RATE_LIMIT_SPENT = Counter(
    f"{PREFIX}_rate_limit_spent",
    "Units charged to the rate limits (reads: one per query_cost_per_read cost units).",
    ["bucket"],
)
RATE_LIMIT_REFUSALS = Counter(
    f"{PREFIX}_rate_limit_refusals",
    "Operations refused by the rate limits (HTTP 429).",
    ["bucket"],
)

# --- the engine and the memo ------------------------------------------------------------------

ENGINE_SECONDS = Histogram(
    f"{PREFIX}_engine_call_duration_seconds",
    "Engine calls as a request waits for them (queueing for a thread included), by call and "
    "by how the answer was made (ranker, hybrid, popularity; '-' for other calls).",
    ["call", "source"],
    buckets=ENGINE_BUCKETS,
)
ENGINE_STAGE_SECONDS = Histogram(
    f"{PREFIX}_engine_stage_duration_seconds",
    "Stages of a recommendation inside the engine: each arm's scoring (stage=arm), the "
    "ranking stage, the linear blend and explanations.",
    ["stage", "arm"],
    buckets=ENGINE_BUCKETS,
)
MEMO_LOOKUPS = Counter(
    f"{PREFIX}_recommendation_memo_lookups",
    "Recommendation memo lookups by result (hit, miss).",
    ["result"],
)
SEARCH_CACHE_LOOKUPS = Counter(
    f"{PREFIX}_search_cache_lookups",
    "searchMovies answer-cache lookups by result (hit, miss).",
    ["result"],
)

# --- the database and Redis -------------------------------------------------------------------

RATING_BATCH_SIZE = Histogram(
    f"{PREFIX}_rating_writer_batch_size",
    "Ratings written per group-commit transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RATING_COMMIT_SECONDS = Histogram(
    f"{PREFIX}_rating_writer_commit_duration_seconds",
    "Time to write and commit one batch of ratings.",
    buckets=LATENCY_BUCKETS,
)
DATABASE_ERRORS = Counter(
    f"{PREFIX}_database_errors",
    "Errors raised by the database driver (SQLAlchemy's handle_error event), by error class.",
    ["error"],
)
REDIS_ERRORS = Counter(
    f"{PREFIX}_redis_errors",
    "Failed calls to the rate-limit storage (Redis), by error class.",
    ["error"],
)

# --- the served run ---------------------------------------------------------------------------

SERVED_RUN = Gauge(
    f"{PREFIX}_artifact_run_info",
    "The artifact run served: one per worker process serving it (summed over live workers).",
    ["run_id"],
    multiprocess_mode="livesum",
)
RELOADS = Counter(
    f"{PREFIX}_reloads",
    "Reload attempts by outcome: loaded, unchanged (current is what is served), refused.",
    ["outcome"],
)

# --- bounded operation names ------------------------------------------------------------------

MAX_OPERATION_NAMES = 200
"""Distinct operation names one process labels; later new names count as ``(other)``."""

_names: set[str] = set()
_names_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    """The ``operation`` label for a GraphQL operation ``name`` (``(anonymous)`` for none),
    bounded by :data:`MAX_OPERATION_NAMES` per process."""
    if name is None:
        return "(anonymous)"
    if name in _names:
        return name
    with _names_lock:
        if len(_names) < MAX_OPERATION_NAMES:
            _names.add(name)
            return name
    return "(other)"
