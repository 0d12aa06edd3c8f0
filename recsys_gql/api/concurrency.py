"""Resolving lists concurrently, so the DataLoader sees every key in one batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await all at once, in order. Awaiting one after the other would make a DataLoader
    dispatch one query per item instead of one for the whole list."""
    return list(await asyncio.gather(*awaitables))
