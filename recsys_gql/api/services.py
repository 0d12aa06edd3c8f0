"""What the resolvers call: the engine through a request's
:class:`~recsys_gql.api.request_work.RequestWork`, the repository's reads and the rating
write. Plain arguments in, database rows or engine results out: no GraphQL here (the
resolvers in :mod:`~recsys_gql.api.queries`, :mod:`~recsys_gql.api.mutations` and
:mod:`~recsys_gql.api.types` map results to types), and no SQL or numpy either (that lives in
:mod:`recsys_gql.db` and :mod:`recsys_gql.recsys`).

Arguments arrive already checked: page sizes and ``alpha`` by
:class:`~recsys_gql.api.extensions.arguments.ArgumentChecks` before execution, cursors by
:mod:`~recsys_gql.api.pagination`. Expected refusals are domain errors
(:mod:`recsys_gql.errors`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recsys_gql.api import feedback
from recsys_gql.api.loaders import Loaders, load
from recsys_gql.api.request_work import RequestWork
from recsys_gql.api.search_batcher import SearchBatcher
from recsys_gql.api.security import new_token, token_digest
from recsys_gql.db import models
from recsys_gql.db import repository as repo
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.session import Database
from recsys_gql.errors import InvalidRating, NotAuthenticated, NotPermitted, UnknownMovie
from recsys_gql.events import UserChanges
from recsys_gql.metrics.hooks import timed_engine_call
from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from recsys_gql.recsys.engine import MAX_N, Engine, Recommendation, ScoredMovie
from recsys_gql.recsys.filters import GenreMatch
from recsys_gql.recsys.memo import RecommendationMemo

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a keyset listing."""

    rows: list[Row]
    has_next: bool
    total: int
    """Every row that passes the listing's filters, independent of the page."""


async def recommendations(
    *,
    engine: Engine,
    database: Database,
    loaders: Loaders,
    memo: RecommendationMemo[Recommendation],
    work: RequestWork,
    inline_ms: float,
    user_id: int,
    first: int,
    alpha: float | None,
    genres: list[str] | None,
    exclude_rated: bool,
    explain: bool,
    genre_match: GenreMatch = GenreMatch.ANY,
    exclude_movie_ids: Sequence[int] | None = None,
    diversity: float | None = None,
) -> list[Recommendation]:
    """The engine's recommendations from the user's ratings and hidden movies as committed
    right now, without the movies the request excludes, re-ranked for ``diversity``
    (the default when None); explained when ``explain``; repeats are answered from ``memo``."""
    excluded = feedback.check_excluded(exclude_movie_ids)
    spread = DEFAULT_DIVERSITY if diversity is None else diversity
    key = memo.key(
        user_id, first, alpha, genres, exclude_rated, explain, genre_match, excluded, spread
    )
    # read before the ratings; not at all when the memo keeps nothing
    version = await database.reads.change_counter() if memo.size else None
    known = memo.get_unchanged(key, version)
    if known is not None:  # nothing committed since that answer's ratings were read
        return list(known)
    ratings, hidden = await asyncio.gather(
        load(loaders.user_ratings, user_id), feedback.hidden_movies(database, user_id)
    )
    known = memo.get(key, ratings, version, hidden)
    if known is not None:
        return list(known)
    recs = await timed_engine_call(
        "recommend",
        work.run(
            inline_ms,
            engine.recommend_cost(len(ratings), explain_results=explain),
            engine.recommend,
            user_id,
            first,
            alpha,
            ratings,
            genres,
            None,
            exclude_rated,
            explain,
            genre_match=genre_match,
            exclude=hidden | excluded,
            diversity=spread,
        ),
    )
    memo.put(key, ratings, recs, version, hidden)  # immutable results: safe to hand on
    return recs


async def similar(
    *,
    engine: Engine,
    database: Database,
    work: RequestWork,
    inline_ms: float,
    viewer_id: int | None,
    movie_id: int,
    first: int,
) -> list[ScoredMovie]:
    """Nearest movies by embedding: read from the content graph on the event loop, or
    searched in a thread (FAISS releases the GIL while it searches). The viewer's hidden
    movies are left out (more are asked for, so ``first`` remain)."""
    hidden = await feedback.hidden_movies(database, viewer_id)
    wanted = feedback.widened(first, hidden, MAX_N)
    budget = inline_ms if engine.similar_from_graph(wanted) else 0.0
    hits = await timed_engine_call(
        "similar", work.run(budget, 0.0, engine.similar, movie_id, wanted)
    )
    return feedback.without_hidden(hits, hidden, first)


async def search(
    *,
    batcher: SearchBatcher[ScoredMovie],
    database: Database,
    work: RequestWork,
    viewer_id: int | None,
    query: str,
    first: int,
) -> Sequence[ScoredMovie]:
    """Semantic search: the query is encoded with the movies' sentence model, together with
    the queries that arrive at the same time (:mod:`recsys_gql.api.search_batcher`); nothing
    is queued once the request's deadline has passed."""
    work.check_deadline()
    hidden = await feedback.hidden_movies(database, viewer_id)
    found = await batcher.search(query, feedback.widened(first, hidden, MAX_N))
    return feedback.without_hidden(found, hidden, first)


async def popular(
    *, engine: Engine, work: RequestWork, first: int, genres: list[str] | None
) -> list[ScoredMovie]:
    """Best Bayesian-average movies."""
    return await timed_engine_call("popular", work.run(0.0, 0.0, engine.popular, first, genres))


async def movies(
    *,
    sessions: async_sessionmaker[AsyncSession],
    work: RequestWork,
    search: str | None,
    genres: Sequence[str] | None,
    year_from: int | None,
    year_to: int | None,
    first: int,
    after_id: int | None,
) -> Page[models.Movie]:
    """One page of the catalog."""
    work.check_deadline()
    async with sessions() as session:
        rows, has_next, total = await repo.list_movies(
            session,
            search=search,
            genres=genres,
            year_from=year_from,
            year_to=year_to,
            first=first,
            after_id=after_id,
        )
    return Page(rows, has_next, total)


async def ratings_page(
    *,
    sessions: async_sessionmaker[AsyncSession],
    work: RequestWork,
    user_id: int,
    first: int,
    after_movie_id: int | None,
) -> Page[models.Rating]:
    """One page of a user's ratings, ordered by movie id."""
    work.check_deadline()
    async with sessions() as session:
        rows, has_next, total = await repo.ratings_page(session, user_id, first, after_movie_id)
    return Page(rows, has_next, total)


def check_rating(rating: float) -> None:
    """Raise :class:`~recsys_gql.errors.InvalidRating` unless ``rating`` is 0.5-5.0 in half
    steps."""
    if not math.isfinite(rating) or not 0.5 <= rating <= 5.0 or (rating * 2) % 1 != 0:
        raise InvalidRating(f"rating must be 0.5 to 5.0 in steps of 0.5, got {rating}")


async def rate_movie(
    *,
    engine: Engine,
    writer: RatingWriter,
    loaders: Loaders,
    changes: UserChanges,
    viewer_id: int | None,
    auth_problem: str | None,
    user_id: int,
    movie_id: int,
    rating: float,
) -> models.RatingRecord:
    """Check the viewer may write for ``user_id``, validate, upsert in one short write
    transaction, then announce the change on ``changes`` (live subscriptions, on every
    replica, recompute the user's recommendations). Raises
    :class:`~recsys_gql.errors.NotAuthenticated`, :class:`~recsys_gql.errors.NotPermitted`,
    :class:`~recsys_gql.errors.InvalidRating` or :class:`~recsys_gql.errors.UnknownMovie`,
    and then nothing was written."""
    if viewer_id is None:
        raise NotAuthenticated(auth_problem or "rateMovie needs `Authorization: Bearer <token>`")
    if viewer_id != user_id:
        raise NotPermitted(f"this token belongs to user {viewer_id}, not {user_id}")
    check_rating(rating)
    if movie_id not in engine.movies:
        raise UnknownMovie(movie_id)
    row = await writer.upsert(user_id, movie_id, rating, datetime.now(UTC))
    loaders.forget_user(user_id)
    loaders.forget_movie_stats(movie_id)
    await changes.publish_user_changed(user_id)  # after the commit: subscribers read it
    return row


SIGN_UP_ATTEMPTS = 5


@dataclass(frozen=True)
class NewUser:
    """A user just created and its token (shown to nobody else, stored only as a digest)."""

    user_id: int
    token: str


async def sign_up(*, database: Database) -> NewUser:
    """Create a user with the next free id and a token for it, in one transaction."""
    now = datetime.now(UTC)
    token = new_token()
    for attempt in range(SIGN_UP_ATTEMPTS):
        try:
            async with database.write() as session:
                user = await repo.create_user(session, now)
                await repo.add_token(session, user.id, token_digest(token), now)
            break
        except IntegrityError:  # a concurrent sign-up took the same id (PostgreSQL)
            if attempt == SIGN_UP_ATTEMPTS - 1:
                raise
    return NewUser(user.id, token)


async def database_answers(*, sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether the database answers a read."""
    try:
        async with sessions() as session:
            await repo.get_movie(session, 0)
    except Exception:  # a broken database is what this reports
        return False
    return True
