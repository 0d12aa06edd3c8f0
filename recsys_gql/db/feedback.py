"""Queries over negative feedback (``hidden_movies``): hide, unhide, and a user's hidden set.

Kept apart from :mod:`recsys_gql.db.repository` (ratings and the catalog) because it is one
concern with its own table. Writes run inside :func:`recsys_gql.db.session.write_session`
like the repository's; hiding twice or unhiding a movie that is not hidden changes nothing
and is not an error (the mutations are idempotent).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select

from recsys_gql.db.models import HiddenMovie
from recsys_gql.db.session import AsyncSession, is_write_session

__all__ = ["hidden_movies", "hide", "unhide"]


def _check_write(session: AsyncSession, name: str) -> None:
    if not is_write_session(session):
        raise RuntimeError(f"{name} must run inside write_session(...)")


async def hide(session: AsyncSession, user_id: int, movie_id: int, now: datetime) -> bool:
    """Hide ``movie_id`` from ``user_id``; ``False`` when it was hidden already (the first
    hide's time is kept)."""
    _check_write(session, "hide")
    if await session.get(HiddenMovie, (user_id, movie_id)) is not None:
        return False
    session.add(HiddenMovie(user_id=user_id, movie_id=movie_id, hidden_at=now))
    await session.flush()
    return True


async def unhide(session: AsyncSession, user_id: int, movie_id: int) -> bool:
    """Show ``movie_id`` to ``user_id`` again; ``False`` when it was not hidden."""
    _check_write(session, "unhide")
    result = await session.exec(
        delete(HiddenMovie).where(
            col(HiddenMovie.user_id) == user_id, col(HiddenMovie.movie_id) == movie_id
        )
    )
    return bool(result.rowcount)


async def hidden_movies(session: AsyncSession, user_id: int) -> frozenset[int]:
    """Every movie ``user_id`` has hidden (empty for users who hid none, or unknown users)."""
    rows = await session.exec(
        select(HiddenMovie.movie_id).where(col(HiddenMovie.user_id) == user_id)
    )
    return frozenset(int(movie_id) for movie_id in rows)
