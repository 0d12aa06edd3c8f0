"""The app's rate limiter: read and write buckets over one `limits` storage, keyed by client.

**Buckets and keys.** Reads and writes are limited separately, each with a moving window
(``RECSYS_GQL_RATE_LIMIT_READS`` and ``..._WRITES``). Reads are keyed by the client IP, writes
by the authenticated user when there is one, else the IP. The client IP is the TCP peer;
``X-Forwarded-For`` is read only when the peer is one of ``RECSYS_GQL_TRUSTED_PROXIES``, and
the client is then the right-most address in the header that is not itself a trusted proxy
(the left-most entries are whatever the client chose to send).

**Storage.** ``RECSYS_GQL_RATE_LIMIT_STORAGE`` is ``memory://`` (per process, the default) or
``redis://host:port`` (shared by every process and replica; `limits`' Lua scripts make each
hit atomic, so the count stays exact across processes). One :class:`RequestLimiter` per app,
handed to :class:`~recsys_gql.api.extensions.throttling.Throttling` when the schema is built
and closed by the app's lifespan.

**When the storage is down** (Redis unreachable or slower than :data:`STORAGE_TIMEOUT`),
:meth:`RequestLimiter.spend` answers ``None`` and logs a warning once per outage (and once
more when the storage is back). With ``RECSYS_GQL_RATE_LIMIT_FAIL_OPEN=true``, the default,
the request is then served unlimited: the limiter protects capacity and fairness, not
identity or data, and failing closed would turn an outage of an auxiliary counter store into
an outage of the whole API. ``false`` refuses every GraphQL operation with HTTP 503 instead.

Nothing here knows GraphQL: what an operation costs is the extension's business.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.requests import HTTPConnection

from recsys_gql.api.limiter_storage import PeriodicallyPrunedMemoryStorage
from recsys_gql.settings import Settings

log = logging.getLogger("recsys_gql.api.limiter")

STORAGE_TIMEOUT = 2.0
"""Seconds a limiter round trip may take before the storage counts as down."""

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
