"""One concern: throttle GraphQL operations with `limits` before any resolver runs.

**Buckets and keys.** Reads and writes are limited separately, each with a moving window
(defaults ``RECSYS_GQL_RATE_LIMIT_READS="30/minute"`` and ``..._WRITES="10/minute"``):

- a query spends *reads* by its estimated cost (:mod:`recsys_gql.api.cost`): one read per
  ``RECSYS_GQL_QUERY_COST_PER_READ`` cost units, rounded up, at least one — an ordinary
  front-end query spends one, a query a hundred times as costly a hundred — keyed by the
  client IP;
- a mutation spends one *write per root field it executes* — aliases count, and so do fields
  reached through fragments on ``Mutation`` (five aliased ``rateMovie`` calls spend five) —
  keyed by the authenticated user (``Context.viewer_id``) when there is one, else the IP.
  An operation is admitted or refused whole: a refused one spends nothing and writes nothing.

The client IP is the TCP peer. ``X-Forwarded-For`` is read only when the peer is one of
``RECSYS_GQL_TRUSTED_PROXIES``; the client is then the right-most address in the header that is
not itself a trusted proxy (the left-most entries are whatever the client chose to send).

**Where it acts.** :class:`Throttling` is a schema extension whose ``on_execute`` hook runs
after parsing and validation (an operation that fails them costs nothing and runs nothing)
and before execution. A refused operation gets ``execution_context.result`` set, so
Strawberry skips execution and no resolver runs.

**Responses.** Every counted answer carries ``X-RateLimit-Limit`` (the bucket's size),
``X-RateLimit-Remaining`` (after this request), ``X-RateLimit-Reset`` (seconds until the
oldest hit in the window expires, as in the IETF ``RateLimit-Reset`` draft),
``X-RateLimit-Cost`` (what this operation spent) and ``X-RateLimit-Resource`` (``read`` or
``write``); a query can also select the same as ``rateLimit { cost limit remaining resetAt }``
(GitHub's GraphQL API does both). A refused operation is HTTP 429 with ``Retry-After``
(seconds) and a GraphQL error whose ``extensions`` are ``{"code": "RATE_LIMITED",
"retryAfter": <seconds>, "cost": <what it would have spent>}``. The error has no
``original_error``, so :class:`~recsys_gql.api.errors.ErrorCodes` keeps its code.

**Storage.** ``RECSYS_GQL_RATE_LIMIT_STORAGE`` is ``memory://`` (per process, the default) or
``redis://host:port`` (shared by every process and replica; `limits`' Lua scripts make each
hit atomic, so the count stays exact across processes). One :class:`RequestLimiter` per app,
handed to the extension when the schema is built and closed by the app's lifespan.

**When the storage is down** (Redis unreachable or slower than :data:`STORAGE_TIMEOUT`):

- ``RECSYS_GQL_RATE_LIMIT_FAIL_OPEN=true`` — **the default** — serves the request without
  limiting and logs a warning (once per outage, and once more when the storage is back);
- ``false`` refuses every GraphQL operation with HTTP 503 and the code
  ``RATE_LIMIT_UNAVAILABLE``.

Fail-open is the default because the limiter protects capacity and fairness, not identity or
data: during an outage a client can exceed its allowance, which costs capacity, but it reads
nothing it could not read anyway and writes only as the user its token proves (authentication
and the other request limits do not depend on Redis). Failing closed would turn an outage of
an auxiliary counter store into an outage of the whole API for every client. Deployments that
would rather shed all traffic than serve it unmetered set the flag to ``false``. (``memory://``
cannot be down; an unreachable Redis that refuses connections costs a request about a
millisecond, one that hangs at most :data:`STORAGE_TIMEOUT`.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)
from graphql.error import GraphQLError
from graphql.utilities import get_operation_ast
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from recsys_gql.api.context import Context
from recsys_gql.api.cost import included
from recsys_gql.api.limiter_storage import PeriodicallyPrunedMemoryStorage
from recsys_gql.settings import Settings

log = logging.getLogger("recsys_gql.api.throttling")

STORAGE_TIMEOUT = 2.0
"""Seconds a limiter round trip may take before the storage counts as down."""

RATE_LIMITED = "RATE_LIMITED"
RATE_LIMIT_UNAVAILABLE = "RATE_LIMIT_UNAVAILABLE"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Bucket(Enum):
    """What an operation spends."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one operation (what ``Query.rateLimit`` reports)."""

    allowed: bool
    bucket: Bucket
    limit: int
    remaining: int
    reset_after: int
    """Seconds until the window has room again (``Retry-After`` when refused)."""
    reset_at: float
    """When that is, as a Unix time."""
    cost: int
    """What the operation spent (nothing when refused)."""
    item: RateLimitItem


# --- what an operation costs ------------------------------------------------------------------


def root_fields(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> list[str]:
    """The response keys (alias or name) of the root fields the operation executes, through
    inline fragments and fragment spreads, each once (GraphQL merges equal keys), without
    ``__typename`` and other introspection fields."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    keys: dict[str, None] = {}
    _collect_root_keys(operation.selection_set, fragments, variables or {}, frozenset(), keys)
    return list(keys)


def _collect_root_keys(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    entered: frozenset[str],
    keys: dict[str, None],
) -> None:
    # a module-level function, not a closure: a recursive closure is a reference cycle, left
    # for the garbage collector on every request (see recsys_gql.api.execution)
    for selection in selection_set.selections:
        if not included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                keys[(selection.alias or selection.name).value] = None
        elif isinstance(selection, InlineFragmentNode):
            _collect_root_keys(selection.selection_set, fragments, variables, entered, keys)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in entered:
                fragment = fragments[name].selection_set
                _collect_root_keys(fragment, fragments, variables, entered | {name}, keys)


def operation_charge(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    query_cost: int,
    cost_per_read: int,
) -> tuple[Bucket, int]:
    """What an operation spends: ``(WRITE, number of root fields, at least 1)`` for a mutation,
    else ``(READ, its cost in reads)``: one read per ``cost_per_read`` cost units, rounded up,
    at least one (so an ordinary query spends one read, and a query a hundred times its cost
    spends a hundred)."""
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation is OperationType.MUTATION:
        return Bucket.WRITE, max(1, len(root_fields(document, operation_name, variables)))
    return Bucket.READ, max(1, math.ceil(query_cost / cost_per_read))


# --- who the client is -----------------------------------------------------------------------


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client's IP: the peer, or — only when the peer is a trusted proxy — the right-most
    ``X-Forwarded-For`` hop that is not a trusted proxy. An unparsable hop ends the walk at
    the last address a trusted proxy vouched for."""
    if peer is None:
        return "unknown"
    current = _address(peer)
    if current is None:
        return peer

    def is_trusted(address: IPAddress) -> bool:
        return any(address in network for network in trusted)

    if not is_trusted(current):
        return str(current)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address):
            break
    return str(current)


# --- the limiter ---------------------------------------------------------------------------


def _redacted(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class RequestLimiter:
    """The app's read and write limits over one `limits` storage (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.reads: RateLimitItem = parse(settings.rate_limit_reads)
        self.writes: RateLimitItem = parse(settings.rate_limit_writes)
        self.cost_per_read = settings.query_cost_per_read
        self.fail_open = settings.rate_limit_fail_open
        self.prefix = settings.rate_limit_key_prefix
        self.trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(str(network), strict=False) for network in settings.trusted_proxies
        )
        uri = settings.rate_limit_storage.removeprefix("async+")
        self.storage_name = _redacted(uri)
        self._pool: ConnectionPool | None = None
        self.storage: Storage
        if uri.startswith("memory"):
            self.storage = PeriodicallyPrunedMemoryStorage()
        else:
            self._pool = ConnectionPool.from_url(
                uri, socket_connect_timeout=STORAGE_TIMEOUT / 2, socket_timeout=STORAGE_TIMEOUT
            )
            options: dict[str, Any] = {"connection_pool": self._pool}
            self.storage = RedisStorage(
                f"async+{uri}", wrap_exceptions=True, implementation="redispy", **options
            )
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._storage_down = False

    def item(self, bucket: Bucket) -> RateLimitItem:
        return self.reads if bucket is Bucket.READ else self.writes

    def client_key(self, connection: HTTPConnection, bucket: Bucket, viewer_id: int | None) -> str:
        """``user:<id>`` for an authenticated write, else ``ip:<client address>``."""
        if bucket is Bucket.WRITE and viewer_id is not None:
            return f"user:{viewer_id}"
        peer = connection.client.host if connection.client else None
        forwarded = connection.headers.getlist("x-forwarded-for")
        return f"ip:{client_address(peer, forwarded, self.trusted)}"

    async def spend(self, bucket: Bucket, key: str, cost: int) -> Verdict | None:
        """Spend ``cost`` from ``key``'s bucket; ``None`` when the storage is unreachable."""
        item = self.item(bucket)
        identifiers = (self.prefix, bucket.value, key)
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT):
                allowed = await self.strategy.hit(item, *identifiers, cost=cost)
                stats = await self.strategy.get_window_stats(item, *identifiers)
        except (StorageError, TimeoutError) as exc:
            if not self._storage_down:
                self._storage_down = True
                action = (
                    "serving without rate limits (fail-open)"
                    if self.fail_open
                    else "refusing GraphQL requests with 503 (fail-closed)"
                )
                log.warning(
                    "rate-limit storage %s is unavailable (%s: %s); %s",
                    self.storage_name,
                    type(exc).__name__,
                    exc,
                    action,
                )
            return None
        if self._storage_down:
            self._storage_down = False
            log.warning("rate-limit storage %s is available again", self.storage_name)
        now = time.time()
        reset_after = max(1, math.ceil(stats.reset_time - now))
        return Verdict(
            allowed=allowed,
            bucket=bucket,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_after=reset_after,
            reset_at=now + reset_after,
            cost=cost if allowed else 0,
            item=item,
        )

    async def close(self) -> None:
        """Release the storage (the Redis pool, or the memory storage's expiry task)."""
        if self._pool is not None:
            await self._pool.aclose()
        timer = getattr(self.storage, "timer", None)
        if isinstance(timer, asyncio.Task) and not timer.done():
            timer.cancel()
            with suppress(asyncio.CancelledError):
                await timer


# --- the extension ---------------------------------------------------------------------------


def _refusal(message: str, extensions: dict[str, Any]) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


def _set_headers(response: Response, verdict: Verdict) -> None:
    response.headers["X-RateLimit-Limit"] = str(verdict.limit)
    response.headers["X-RateLimit-Remaining"] = str(verdict.remaining)
    response.headers["X-RateLimit-Reset"] = str(verdict.reset_after)
    response.headers["X-RateLimit-Cost"] = str(verdict.cost)
    response.headers["X-RateLimit-Resource"] = verdict.bucket.value


class Throttling(SchemaExtension):
    """Spends the operation's cost before execution; refuses it whole when it does not fit.

    Runs after :class:`~recsys_gql.api.extensions.query_cost.QueryCost`, whose estimate
    (``Context.query_cost``) sets what a query spends; an operation it refused spends nothing.
    """

    def __init__(self, limiter: RequestLimiter) -> None:
        self.limiter = limiter

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if (
            execution.result is None
            and isinstance(context, Context)
            and isinstance(context.response, Response | WebSocket)
            and execution.graphql_document is not None
        ):
            # over a WebSocket (a subscription) the same charge, with no headers to set
            response = context.response if isinstance(context.response, Response) else None
            refusal = await self._check(context, response)
            if refusal is not None:
                execution.result = refusal  # Strawberry skips execution: no resolver runs
        yield

    async def _check(self, context: Context, response: Response | None) -> ExecutionResult | None:
        execution = self.execution_context
        limiter = self.limiter
        assert execution.graphql_document is not None
        variables = execution.variables if isinstance(execution.variables, Mapping) else None
        bucket, cost = operation_charge(
            execution.graphql_document,
            execution.operation_name,
            variables,
            context.query_cost or 0,
            limiter.cost_per_read,
        )
        key = limiter.client_key(context.request, bucket, context.viewer_id)
        verdict = await limiter.spend(bucket, key, cost)
        if verdict is None:
            if limiter.fail_open:
                return None
            if response is not None:
                response.status_code = 503
            return _refusal(
                "Rate limiting is unavailable; try again shortly.",
                {"code": RATE_LIMIT_UNAVAILABLE},
            )
        context.rate_limit = verdict
        if response is not None:
            _set_headers(response, verdict)
        if verdict.allowed:
            return None
        if response is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(verdict.reset_after)
        noun = bucket.value + ("s" if cost != 1 else "")
        if cost > verdict.limit:
            message = (
                f"This operation spends {cost} {noun} but the limit is {verdict.item}; "
                "ask for less per request."
            )
        else:
            message = (
                f"Too many {bucket.value}s: this operation spends {cost} {noun} and the limit "
                f"is {verdict.item}. Retry in {verdict.reset_after} s."
            )
        extensions = {"code": RATE_LIMITED, "retryAfter": verdict.reset_after, "cost": cost}
        return _refusal(message, extensions)
