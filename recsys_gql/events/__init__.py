"""Announcing that a user's data changed, to every replica: the "user changed" bus.

A write that changes what a user would be recommended (a rating, a hidden movie) calls
``await changes.publish_user_changed(user_id)`` once it is committed; live subscriptions
(:mod:`recsys_gql.api.live`) hold a :class:`~recsys_gql.events.local.Watch` on that user and
recompute when it fires. Two backends, one interface (:class:`UserChanges`):

- :class:`~recsys_gql.events.local.LocalUserChanges`: in this process only (one replica);
- :class:`~recsys_gql.events.redis.RedisUserChanges`: Redis pub/sub, so a write taken by any
  replica reaches the subscribers of every replica.

Nothing here knows GraphQL: the bus carries user ids, nothing else.
"""

from __future__ import annotations

from recsys_gql.events.local import LocalUserChanges, TooManySubscriptions, Watch
from recsys_gql.events.redis import RedisUserChanges
from recsys_gql.settings import Settings

UserChanges = LocalUserChanges
"""The bus interface: :class:`LocalUserChanges` is the base of every backend."""

__all__ = [
    "LocalUserChanges",
    "RedisUserChanges",
    "TooManySubscriptions",
    "UserChanges",
    "Watch",
    "open_user_changes",
    "redis_url",
]


def redis_url(settings: Settings) -> str | None:
    """The Redis the replicas share changes through: ``live_updates_redis``, else the
    rate-limit storage when it is Redis, else ``None`` (in-process only)."""
    if settings.live_updates_redis:
        return settings.live_updates_redis
    storage = settings.rate_limit_storage.removeprefix("async+")
    return storage if storage.startswith(("redis://", "rediss://")) else None


def open_user_changes(settings: Settings) -> UserChanges:
    """The bus for these settings (not started: the app's lifespan starts and closes it)."""
    url = redis_url(settings)
    if url is None:
        return LocalUserChanges()
    return RedisUserChanges(url, f"{settings.rate_limit_key_prefix}:user-changed")
