"""What the resolvers call: engine calls (through the request's
:class:`~recsys_gql.api.request_work.RequestWork`), repository reads and the rating write, each
returning GraphQL types. No SQL or numpy here either: that lives in ``recsys_gql.db`` and
``recsys_gql.recsys``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from strawberry.types.nodes import SelectedField, Selection

from recsys_gql.api import feedback
from recsys_gql.api.context import Info
from recsys_gql.api.loaders import load
from recsys_gql.api.security import new_token, token_digest
from recsys_gql.api.types import (
    Forbidden,
    Health,
    InvalidRating,
    MovieConnection,
    MovieEdge,
    MovieNotFound,
    PageInfo,
    RateMovieInput,
    RateMoviePayload,
    Rating,
    RatingConnection,
    RatingEdge,
    RatingSaved,
    Recommendation,
    SearchHit,
    SignedUp,
    Unauthenticated,
    User,
    catalog_movie,
    check_first,
    decode_cursor,
    encode_cursor,
)
from recsys_gql.api.types import Movie as MovieType
from recsys_gql.db import repository as repo
from recsys_gql.errors import InvalidArgument
from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from recsys_gql.recsys.engine import MAX_N, ScoredMovie
from recsys_gql.recsys.filters import GenreMatch


def asks_for(info: Info, name: str) -> bool:
    """Whether the field being resolved selects the subfield ``name``, directly or through
    fragments (a subfield under ``@skip``/``@include`` counts as asked for)."""
    return any(_selects(field.selections, name) for field in info.selected_fields)


def _selects(selections: Sequence[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                return True
        elif _selects(selection.selections, name):
            return True
    return False


async def recommendations(
    info: Info,
    user_id: int,
    first: int,
    alpha: float | None,
    genres: list[str] | None,
    exclude_rated: bool,
    *,
    genre_match: GenreMatch = GenreMatch.ANY,
    exclude_movie_ids: Sequence[int] | None = None,
    diversity: float | None = None,
) -> list[Recommendation]:
    """The engine's recommendations from the user's ratings and hidden movies as committed
    right now, without the movies the request excludes, re-ranked for ``diversity``."""
    if not 1 <= first <= MAX_N:
        raise InvalidArgument("first", f"must be from 1 to {MAX_N}, got {first}")
    excluded = feedback.check_excluded(exclude_movie_ids)
    spread = DEFAULT_DIVERSITY if diversity is None else diversity
    engine = info.context.engine
    explain = asks_for(info, "explanation")
    memo = info.context.recommendation_memo
    key = memo.key(
        user_id, first, alpha, genres, exclude_rated, explain, genre_match, excluded, spread
    )
    # read before the ratings; not at all when the memo keeps nothing
    version = await info.context.database.reads.change_counter() if memo.size else None
    known = memo.get_unchanged(key, version)
    if known is not None:  # nothing committed since that answer's ratings were read
        return list(known)
    ratings, hidden = await asyncio.gather(
        load(info.context.loaders.user_ratings, user_id),
        feedback.hidden_movies(info.context.database, user_id),
    )
    known = memo.get(key, ratings, version, hidden)
    if known is not None:
        return list(known)
    recs = await info.context.work.run(
        info.context.settings.inline_engine_ms,
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
    )
    result = [Recommendation.from_engine(info, rec) for rec in recs]
    memo.put(key, ratings, result, version, hidden)  # immutable objects: safe to hand on
    return result


async def similar(info: Info, movie_id: int, first: int) -> list[ScoredMovie]:
    """Nearest movies by embedding: read from the content graph on the event loop, or
    searched in a thread (FAISS releases the GIL while it searches). A signed-in viewer's
    hidden movies are left out (more are asked for, so ``first`` remain)."""
    engine = info.context.engine
    hidden = await feedback.hidden_movies(info.context.database, info.context.viewer_id)
    wanted = feedback.widened(first, hidden, MAX_N)
    budget = info.context.settings.inline_engine_ms if engine.similar_from_graph(wanted) else 0.0
    hits = await info.context.work.run(budget, 0.0, engine.similar, movie_id, wanted)
    return feedback.without_hidden(hits, hidden, first)


async def search(info: Info, query: str, first: int) -> list[SearchHit]:
    """Semantic search: the query is encoded with the movies' sentence model, together with
    the queries that arrive at the same time (:mod:`recsys_gql.api.search_batcher`); nothing
    is queued once the request's deadline has passed."""
    info.context.work.check_deadline()
    hidden = await feedback.hidden_movies(info.context.database, info.context.viewer_id)
    found = await info.context.search_batcher.search(query, feedback.widened(first, hidden, MAX_N))
    hits = feedback.without_hidden(found, hidden, first)
    async with info.context.work.turn():  # a batch's answers complete one per loop turn
        return [SearchHit.from_hit(info, hit) for hit in hits]


async def popular(info: Info, first: int, genres: list[str] | None) -> list[MovieType]:
    """Best Bayesian-average movies."""
    engine = info.context.engine
    hits = await info.context.work.run(0.0, 0.0, engine.popular, first, genres)
    return [catalog_movie(info, hit.movie_id) for hit in hits]


async def movies(
    info: Info,
    search: str | None,
    genres: list[str] | None,
    year_from: int | None,
    year_to: int | None,
    first: int,
    after: str | None,
) -> MovieConnection:
    """One page of the catalog."""
    check_first(first)
    if year_from is not None and year_to is not None and year_from > year_to:
        raise InvalidArgument("yearFrom", f"{year_from} is after yearTo {year_to}")
    after_id = decode_cursor("movie", after)
    work = info.context.work
    work.check_deadline()
    async with info.context.sessions() as session:
        rows, has_next, total = await repo.list_movies(
            session,
            search=search,
            genres=genres,
            year_from=year_from,
            year_to=year_to,
            first=first,
            after_id=after_id,
        )
    async with work.turn():  # building the page is the request's work on the event loop
        for row in rows:
            info.context.loaders.movie.prime(row.id, row)
        edges = [
            MovieEdge(node=MovieType.from_row(r), cursor=encode_cursor("movie", r.id)) for r in rows
        ]
    return MovieConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )


async def ratings_page(info: Info, user_id: int, first: int, after: str | None) -> RatingConnection:
    """One page of a user's ratings."""
    after_id = decode_cursor("rating", after)
    info.context.work.check_deadline()
    async with info.context.sessions() as session:
        rows, has_next, total = await repo.ratings_page(session, user_id, first, after_id)
    async with info.context.work.turn():  # building the page: the request's loop work
        edges = [
            RatingEdge(node=Rating.from_row(r), cursor=encode_cursor("rating", r.movie_id))
            for r in rows
        ]
    return RatingConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )


def validate_rating(data: RateMovieInput) -> InvalidRating | None:
    """The refusal for bad input, or ``None`` when it may be written."""
    rating = data.rating
    if not math.isfinite(rating) or not 0.5 <= rating <= 5.0 or (rating * 2) % 1 != 0:
        return InvalidRating(
            message=f"rating must be 0.5 to 5.0 in steps of 0.5, got {rating}", field="rating"
        )
    return None


async def rate_movie(info: Info, data: RateMovieInput) -> RateMoviePayload:
    """Check the caller may write for ``data.userId``, validate, then upsert in one short
    write transaction."""
    viewer = info.context.viewer_id
    if viewer is None:
        problem = info.context.auth_problem or "rateMovie needs `Authorization: Bearer <token>`"
        return Unauthenticated(message=problem)
    if viewer != data.user_id:
        return Forbidden(message=f"this token belongs to user {viewer}, not {data.user_id}")
    refusal = validate_rating(data)
    if refusal is not None:
        return refusal
    if data.movie_id not in info.context.engine.movies:
        return MovieNotFound(
            message=f"movie {data.movie_id} does not exist", movie_id=data.movie_id
        )
    row = await info.context.rating_writer.upsert(
        data.user_id, data.movie_id, data.rating, datetime.now(UTC)
    )
    info.context.loaders.forget_user(data.user_id)
    info.context.loaders.forget_movie_stats(data.movie_id)
    return RatingSaved(
        message=f"saved {row.rating:g} for movie {row.movie_id}",
        rating=Rating.from_row(row),
        user=User(id=row.user_id),
    )


SIGN_UP_ATTEMPTS = 5


async def sign_up(info: Info) -> SignedUp:
    """Create a user with the next free id and a token for it, in one transaction."""
    now = datetime.now(UTC)
    token = new_token()
    for attempt in range(SIGN_UP_ATTEMPTS):
        try:
            async with info.context.database.write() as session:
                user = await repo.create_user(session, now)
                await repo.add_token(session, user.id, token_digest(token), now)
            break
        except IntegrityError:  # a concurrent sign-up took the same id (PostgreSQL)
            if attempt == SIGN_UP_ATTEMPTS - 1:
                raise
    return SignedUp(
        message=f"welcome, user {user.id}: keep this token, it is shown only once",
        user=User(id=user.id),
        token=token,
    )


async def health(info: Info) -> Health:
    """What is loaded and whether the database answers."""
    engine = info.context.engine
    manifest = engine.manifest
    try:
        async with info.context.sessions() as session:
            await repo.get_movie(session, 0)
        connected = True
    except Exception:  # a broken database is what this field reports
        connected = False
    return Health(
        ok=connected,
        run_id=manifest.run_id,
        movies=manifest.counts["movies"],
        users=manifest.counts["users"],
        ratings=manifest.counts["ratings"],
        embedding_model=manifest.models["embedding"],
        collaborative_model=manifest.models["collaborative"],
        index=manifest.models["index"],
        engine_loaded=True,
        database_connected=connected,
        search_model_loaded=engine.search_model_loaded,
    )
