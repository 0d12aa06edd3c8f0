"""The callbacks the app hands to the layers it assembles, so that they are counted without
importing prometheus-client: the engine's stage timer, the memo's and the search cache's
lookups, the rating writer's commits, the rate-limit storage's failures and the database
driver's errors (a SQLAlchemy event). Each one records into :mod:`.registry`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine as SyncEngine
from sqlalchemy.engine import ExceptionContext

from recsys_gql.metrics.registry import (
    DATABASE_ERRORS,
    ENGINE_SECONDS,
    ENGINE_STAGE_SECONDS,
    MEMO_LOOKUPS,
    RATING_BATCH_SIZE,
    RATING_COMMIT_SECONDS,
    REDIS_ERRORS,
    SEARCH_CACHE_LOOKUPS,
)

__all__ = [
    "count_database_errors",
    "engine_stage",
    "memo_lookup",
    "rating_commit",
    "search_cache_lookup",
    "storage_error",
    "timed_engine_call",
]

T = TypeVar("T")


def engine_stage(stage: str, arm: str, seconds: float) -> None:
    """The engine's :data:`~recsys_gql.recsys.engine.StageTimer`."""
    ENGINE_STAGE_SECONDS.labels(stage, arm).observe(seconds)


async def timed_engine_call(call: str, work: Awaitable[T]) -> T:
    """Await ``work`` (one engine call of a request) and record how long the request waited,
    labelled by ``call`` and, for recommendations, the ``source`` of the answer."""
    started = time.perf_counter()
    result = await work
    first = result[0] if isinstance(result, list | tuple) and result else None
    source = str(getattr(first, "source", "-"))
    ENGINE_SECONDS.labels(call, source).observe(time.perf_counter() - started)
    return result


def memo_lookup(hit: bool) -> None:
    """The recommendation memo's ``on_lookup``."""
    MEMO_LOOKUPS.labels("hit" if hit else "miss").inc()


def search_cache_lookup(hit: bool) -> None:
    """The search batcher's ``on_cache_lookup``."""
    SEARCH_CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()


def rating_commit(size: int, seconds: float) -> None:
    """The rating writer's ``on_commit``."""
    RATING_BATCH_SIZE.observe(size)
    RATING_COMMIT_SECONDS.observe(seconds)


def storage_error(error: BaseException) -> None:
    """The rate limiter's ``on_storage_error``."""
    REDIS_ERRORS.labels(type(error).__name__).inc()


def count_database_errors(engine: SyncEngine) -> Callable[[], None]:
    """Count every error the database driver raises through ``engine``; returns the function
    that stops counting."""

    def handle_error(context: ExceptionContext) -> None:
        DATABASE_ERRORS.labels(type(context.original_exception).__name__).inc()

    event.listen(engine, "handle_error", handle_error)

    def stop(*_: Any) -> None:
        event.remove(engine, "handle_error", handle_error)

    return stop
