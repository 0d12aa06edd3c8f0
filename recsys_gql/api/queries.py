"""Query resolvers: take the arguments, call a service, map its result to types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry

from recsys_gql.api import services
from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost, ListSize
from recsys_gql.api.list_controls import DIVERSITY, EXCLUDE_MOVIE_IDS
from recsys_gql.api.loaders import load
from recsys_gql.api.pagination import decode_cursor
from recsys_gql.api.status_types import Health, RateLimit
from recsys_gql.api.types import (
    Movie,
    MovieConnection,
    Recommendation,
    SearchHit,
    SimilarMovie,
    User,
    catalog_movie,
    recommendations,
    similar_movies,
)
from recsys_gql.api.weights import (
    W_HEALTH,
    W_MOVIES,
    W_POPULAR,
    W_RECOMMENDATIONS,
    W_SEARCH,
    W_SIMILAR,
)
from recsys_gql.recsys.filters import GenreMatch


@strawberry.type
class Query:
    @strawberry.field(description="A movie by its MovieLens id (null when unknown).")
    async def movie(self, info: Info, id: int) -> Movie | None:
        row = await load(info.context.loaders.movie, id)
        return None if row is None else Movie.from_row(row)

    @strawberry.field(
        description="The catalog, filtered, as a Relay-style connection.",
        directives=[
            Cost(weight=W_MOVIES),
            ListSize(slicing_arguments=["first"], sized_fields=["edges"]),
        ],
    )
    async def movies(
        self,
        info: Info,
        search: str | None = None,
        genres: list[str] | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> MovieConnection:
        context = info.context
        page = await services.movies(
            sessions=context.sessions,
            work=context.work,
            search=search,
            genres=genres,
            year_from=year_from,
            year_to=year_to,
            first=first,
            after_id=decode_cursor("movie", after),
        )
        async with context.work.turn():  # building the page is the request's loop work
            return MovieConnection.from_page(page)

    @strawberry.field(description="Every genre, alphabetically.")
    def genres(self, info: Info) -> list[str]:
        return list(info.context.engine.genre_names)

    @strawberry.field(description="A user by id; any positive id is a user (maybe cold).")
    def user(self, id: int) -> User | None:
        return User(id=id) if id > 0 else None

    @strawberry.field(description="The user of the request's bearer token (null when none).")
    def viewer(self, info: Info) -> User | None:
        viewer = info.context.viewer_id
        return None if viewer is None else User(id=viewer)

    @strawberry.field(
        description="Hybrid recommendations for a user, from their ratings now.",
        directives=[Cost(weight=W_RECOMMENDATIONS), ListSize(slicing_arguments=["first"])],
    )
    async def recommendations(
        self,
        info: Info,
        user_id: int,
        first: int = 10,
        alpha: float | None = None,
        genres: list[str] | None = None,
        exclude_rated: bool = True,
        genre_match: GenreMatch = GenreMatch.ANY,
        exclude_movie_ids: Annotated[list[int] | None, EXCLUDE_MOVIE_IDS] = None,
        diversity: Annotated[float | None, DIVERSITY] = None,
    ) -> list[Recommendation]:
        return await recommendations(
            info,
            user_id,
            first,
            alpha,
            genres,
            exclude_rated=exclude_rated,
            genre_match=genre_match,
            exclude_movie_ids=exclude_movie_ids,
            diversity=diversity,
        )

    @strawberry.field(
        description="Movies closest to a movie in embedding space.",
        directives=[Cost(weight=W_SIMILAR), ListSize(slicing_arguments=["first"])],
    )
    async def similar_movies(
        self, info: Info, movie_id: int, first: int = 10
    ) -> list[SimilarMovie]:
        return await similar_movies(info, movie_id, first)

    @strawberry.field(
        description="Semantic search over titles, genres, tags and plots.",
        directives=[Cost(weight=W_SEARCH), ListSize(slicing_arguments=["first"])],
    )
    async def search_movies(self, info: Info, query: str, first: int = 10) -> list[SearchHit]:
        context = info.context
        hits = await services.search(
            batcher=context.search_batcher,
            database=context.database,
            work=context.work,
            viewer_id=context.viewer_id,
            query=query,
            first=first,
        )
        async with context.work.turn():  # a batch's answers complete one per loop turn
            return [SearchHit.from_hit(info, hit) for hit in hits]

    @strawberry.field(
        description="Best-rated movies (Bayesian average), optionally by genre.",
        directives=[Cost(weight=W_POPULAR), ListSize(slicing_arguments=["first"])],
    )
    async def popular_movies(
        self, info: Info, first: int = 10, genres: list[str] | None = None
    ) -> list[Movie]:
        context = info.context
        hits = await services.popular(
            engine=context.engine, work=context.work, first=first, genres=genres
        )
        return [catalog_movie(info, hit.movie_id) for hit in hits]

    @strawberry.field(
        description="What this request spent of the client's rate limit and what is left; "
        "null when the service runs without rate limits or cannot reach their storage."
    )
    def rate_limit(self, info: Info) -> RateLimit | None:
        verdict = info.context.rate_limit
        if verdict is None:
            return None
        return RateLimit(
            cost=verdict.cost,
            limit=verdict.limit,
            remaining=verdict.remaining,
            reset_at=datetime.fromtimestamp(verdict.reset_at, UTC),
            query_cost=info.context.query_cost or 0,
            max_query_cost=info.context.settings.max_query_cost,
        )

    @strawberry.field(
        description="Which model run is served and whether its parts are up.",
        directives=[Cost(weight=W_HEALTH)],
    )
    async def health(self, info: Info) -> Health:
        connected = await services.database_answers(sessions=info.context.sessions)
        return Health.of(info.context.engine, connected)
