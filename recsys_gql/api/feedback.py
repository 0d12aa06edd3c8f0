"""Negative feedback as plain functions: hide and unhide a movie for the signed-in viewer,
read a user's hidden set, and drop hidden movies from a list of hits.

No GraphQL here: the functions take the database, the catalog's ids and the viewer, and
return domain results (:class:`FeedbackSaved`, :class:`NotSignedIn`, :class:`NoSuchMovie`)
that the resolvers turn into payload types.

**Live updates.** Every hide or unhide that changed something announces the user on the
user-changed bus it is given (:mod:`recsys_gql.events`), after its transaction committed, as
``rateMovie`` does: that user's ``recommendationsUpdated`` subscribers get a fresh list, on
whichever replica they are connected.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from recsys_gql.db import feedback as store
from recsys_gql.db.session import Database
from recsys_gql.errors import InvalidArgument
from recsys_gql.events import UserChanges
from recsys_gql.recsys.filters import MAX_EXCLUDED

__all__ = [
    "FeedbackSaved",
    "NoSuchMovie",
    "NotSignedIn",
    "check_excluded",
    "hidden_movies",
    "set_hidden",
    "widened",
    "without_hidden",
]


@dataclass(frozen=True)
class FeedbackSaved:
    """The movie's state for the user now, and whether this call changed it."""

    user_id: int
    movie_id: int
    hidden: bool
    changed: bool


@dataclass(frozen=True)
class NotSignedIn:
    """No accepted bearer token: nothing was written."""

    problem: str


@dataclass(frozen=True)
class NoSuchMovie:
    """The catalog has no such movie: nothing was written."""

    movie_id: int


FeedbackResult = FeedbackSaved | NotSignedIn | NoSuchMovie


async def set_hidden(
    *,
    database: Database,
    changes: UserChanges,
    movies: Container[int],
    viewer_id: int | None,
    auth_problem: str | None,
    movie_id: int,
    hide: bool,
) -> FeedbackResult:
    """Hide ``movie_id`` from the viewer's recommendations, similar lists and search hits
    (``hide``), or show it again; idempotent: a second call is ``changed=False``."""
    name = "hideMovie" if hide else "unhideMovie"
    if viewer_id is None:
        return NotSignedIn(auth_problem or f"{name} needs `Authorization: Bearer <token>`")
    if movie_id not in movies:
        return NoSuchMovie(movie_id)
    async with database.write() as session:
        if hide:
            changed = await store.hide(session, viewer_id, movie_id, datetime.now(UTC))
        else:
            changed = await store.unhide(session, viewer_id, movie_id)
    if changed:
        await changes.publish_user_changed(viewer_id)  # after the commit: subscribers read it
    return FeedbackSaved(viewer_id, movie_id, hidden=hide, changed=changed)


async def hidden_movies(database: Database, user_id: int | None) -> frozenset[int]:
    """The movies ``user_id`` hid (empty for anonymous requests: nothing to read)."""
    if user_id is None:
        return frozenset()
    return await database.reads.hidden_movies(user_id)


def check_excluded(movie_ids: Sequence[int] | None) -> frozenset[int]:
    """``excludeMovieIds`` as a set; raises :class:`InvalidArgument` beyond
    :data:`MAX_EXCLUDED` ids."""
    if not movie_ids:
        return frozenset()
    if len(movie_ids) > MAX_EXCLUDED:
        raise InvalidArgument(
            "excludeMovieIds", f"must name at most {MAX_EXCLUDED} movies, got {len(movie_ids)}"
        )
    return frozenset(movie_ids)


def widened(first: int, hidden: frozenset[int], most: int) -> int:
    """How many hits to ask for so that ``first`` remain after dropping ``hidden`` ones (at
    most ``most``, the engine's limit)."""
    return min(most, first + len(hidden))


class _Hit(Protocol):
    @property
    def movie_id(self) -> int: ...


H = TypeVar("H", bound=_Hit)


def without_hidden(hits: Iterable[H], hidden: frozenset[int], first: int) -> list[H]:
    """The first ``first`` of ``hits`` that are not hidden."""
    return [hit for hit in hits if hit.movie_id not in hidden][:first]
