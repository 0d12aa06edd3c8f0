"""Query resolvers: parse arguments, call a service, return types."""

from __future__ import annotations

import strawberry

from recsys_gql.api import services
from recsys_gql.api.context import Info
from recsys_gql.api.loaders import load
from recsys_gql.api.types import (
    Health,
    Movie,
    MovieConnection,
    Recommendation,
    SearchHit,
    SimilarMovie,
    User,
    check_first,
)


@strawberry.type
class Query:
    @strawberry.field(description="A movie by its MovieLens id (null when unknown).")
    async def movie(self, info: Info, id: int) -> Movie | None:
        row = await load(info.context.loaders.movie, id)
        return None if row is None else Movie.from_row(row)

    @strawberry.field(description="The catalog, filtered, as a Relay-style connection.")
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
        return await services.movies(info, search, genres, year_from, year_to, first, after)

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

    @strawberry.field(description="Hybrid recommendations for a user, from their ratings now.")
    async def recommendations(
        self,
        info: Info,
        user_id: int,
        first: int = 10,
        alpha: float | None = None,
        genres: list[str] | None = None,
        exclude_rated: bool = True,
    ) -> list[Recommendation]:
        return await services.recommendations(info, user_id, first, alpha, genres, exclude_rated)

    @strawberry.field(description="Movies closest to a movie in embedding space.")
    async def similar_movies(
        self, info: Info, movie_id: int, first: int = 10
    ) -> list[SimilarMovie]:
        hits = await services.similar(info, movie_id, check_first(first))
        return [SimilarMovie.from_hit(info, hit) for hit in hits]

    @strawberry.field(description="Semantic search over titles, genres, tags and plots.")
    async def search_movies(self, info: Info, query: str, first: int = 10) -> list[SearchHit]:
        return await services.search(info, query, check_first(first))

    @strawberry.field(description="Best-rated movies (Bayesian average), optionally by genre.")
    async def popular_movies(
        self, info: Info, first: int = 10, genres: list[str] | None = None
    ) -> list[Movie]:
        return await services.popular(info, check_first(first), genres)

    @strawberry.field(description="Which model run is served and whether its parts are up.")
    async def health(self, info: Info) -> Health:
        return await services.health(info)
