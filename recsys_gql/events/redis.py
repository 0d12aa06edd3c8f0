"""The "user changed" bus over Redis pub/sub, so every replica hears every replica's writes.

One channel (``<rate_limit_key_prefix>:user-changed``) carries user ids as text. Each process
publishes to it and keeps one listener task subscribed to it, which wakes the local watches
of the user named (:class:`~recsys_gql.events.local.LocalUserChanges`). Every process hears
every change; a message is a few bytes, and a process with no watch on the user drops it.

Failures degrade, never break writes: a publish that fails (Redis down or slower than
:data:`PUBLISH_TIMEOUT`) is logged and delivered to this process's watches only; a listener
that loses its connection reconnects with backoff and, once back, wakes every local watch,
since changes may have passed while it was away.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import suppress

from redis.asyncio import Redis
from redis.exceptions import RedisError

from recsys_gql.events.local import LocalUserChanges

log = logging.getLogger("recsys_gql.events")

PUBLISH_TIMEOUT = 0.5
"""Seconds a publish may take before the change is delivered in-process only."""

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between the listener's reconnection attempts (the last one repeats)."""

START_TIMEOUT = 2.0
"""How long :meth:`RedisUserChanges.start` waits for the listener's first subscription."""


class RedisUserChanges(LocalUserChanges):
    """The bus shared by every replica through Redis ``url`` on ``channel``."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self.channel = channel
        self.listener_name = f"{channel}-listener-{uuid.uuid4().hex[:8]}"
        """The listener connection's name in Redis' ``CLIENT LIST``."""
        self._publisher = Redis.from_url(
            url, socket_connect_timeout=PUBLISH_TIMEOUT, socket_timeout=PUBLISH_TIMEOUT
        )
        # the listener blocks on its socket between messages: no read timeout
        self._listener_client = Redis.from_url(
            url,
            socket_connect_timeout=PUBLISH_TIMEOUT,
            health_check_interval=30,
            client_name=self.listener_name,
        )
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the listener is subscribed."""

    async def start(self) -> None:
        """Start listening; waits up to :data:`START_TIMEOUT` for the subscription (an
        unreachable Redis is logged and retried in the background, not fatal)."""
        self._listener = asyncio.create_task(self._listen(), name="user-changes-listener")
        with suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self.listening.wait()

    async def _listen(self) -> None:
        attempt = 0
        missed = False
        while True:
            try:
                async with self._listener_client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.listening.set()
                    if missed:
                        log.warning("live updates: Redis is back; refreshing every subscriber")
                        self.deliver_all()
                        missed = False
                    attempt = 0
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_message(message.get("data"))
            except (RedisError, OSError) as exc:
                if self.listening.is_set() or attempt == 0:
                    log.warning("live updates: Redis listener lost (%s); reconnecting", exc)
                self.listening.clear()
                missed = True
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                await asyncio.sleep(delay)

    def _on_message(self, data: object) -> None:
        try:
            user_id = int(data)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            log.warning("live updates: ignoring a malformed message %r", data)
            return
        self.deliver(user_id)

    async def publish_user_changed(self, user_id: int) -> None:
        """Publish to every replica (this one hears it through its listener); when Redis
        cannot take it, deliver it here only and log why."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self._publisher.publish(self.channel, str(user_id))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("live updates: could not publish to Redis (%s); this replica only", exc)
            self.deliver(user_id)

    async def close(self) -> None:
        """Stop the listener and close both connections."""
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener
        await self._publisher.aclose()
        await self._listener_client.aclose()
