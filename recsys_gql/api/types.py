"""GraphQL object types. Each is built from a database row or an engine result by a
``from_*`` constructor; nested fields resolve through the request's DataLoaders or call a
service (:mod:`recsys_gql.api.services`) and map what it returns, as the root resolvers do."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from recsys_gql.api import services
from recsys_gql.api.arm_types import Arm, ArmScore, ArmShare, RecommendationSource
from recsys_gql.api.context import Context, Info
from recsys_gql.api.cost import Cost, ListSize
from recsys_gql.api.list_controls import DIVERSITY, EXCLUDE_MOVIE_IDS, GenreMatch
from recsys_gql.api.loaders import load
from recsys_gql.api.pagination import PageInfo, decode_cursor, encode_cursor
from recsys_gql.api.selection import asks_for
from recsys_gql.api.weights import (
    W_EXPLANATION,
    W_MOVIE_STATS,
    W_RATINGS_PAGE,
    W_RECOMMENDATIONS,
    W_SIMILAR,
    W_USER_RATINGS,
)
from recsys_gql.db import models
from recsys_gql.recsys.engine import Recommendation as EngineRecommendation
from recsys_gql.recsys.engine import ScoredMovie
from recsys_gql.recsys.explain import Contribution as EngineContribution

MAX_BECAUSE = 3
"""An explanation names at most this many rated movies."""


def catalog_movie(info: Info, movie_id: int) -> Movie:
    """A movie an engine result names, straight from the in-memory catalog.

    The catalog is immutable while the server runs, so a lookup needs no query and no
    DataLoader (awaiting a loader per movie costs a future, a shielding task and a batch
    dispatch each).
    """
    row = info.context.catalog.get(movie_id)
    if row is None:  # the catalog and the artifacts disagree: a deployment error
        raise LookupError(f"movie {movie_id} is in the model but not in the database")
    return Movie.from_row(row)


@strawberry.type(description="A movie of the catalog (ids are MovieLens movieIds).")
class Movie:
    id: int
    title: str
    year: int | None
    genres: list[str]
    overview: str | None
    tmdb_id: int | None
    imdb_id: str | None

    @classmethod
    def from_row(cls, row: models.Movie | models.MovieRecord) -> Movie:
        """From a database row or a catalog record."""
        return cls(
            id=row.id,
            title=row.title,
            year=row.year,
            genres=row.genre_list,
            overview=row.overview or None,
            tmdb_id=row.tmdb_id,
            imdb_id=row.imdb_id,
        )

    @strawberry.field(
        description="How many ratings the movie has now.",
        directives=[Cost(weight=W_MOVIE_STATS)],
    )
    async def ratings_count(self, info: Info) -> int:
        count, _ = await load(info.context.loaders.movie_stats, self.id)
        return count

    @strawberry.field(
        description="The mean of its current ratings (null when unrated).",
        directives=[Cost(weight=W_MOVIE_STATS)],
    )
    async def average_rating(self, info: Info) -> float | None:
        _, mean = await load(info.context.loaders.movie_stats, self.id)
        return None if mean is None else round(mean, 3)

    @strawberry.field(
        description="Movies with the closest plot and genre embeddings.",
        directives=[Cost(weight=W_SIMILAR), ListSize(slicing_arguments=["first"])],
    )
    async def similar(self, info: Info, first: int = 10) -> list[SimilarMovie]:
        return await similar_movies(info, self.id, first)


async def similar_movies(info: Info, movie_id: int, first: int) -> list[SimilarMovie]:
    """``Query.similarMovies`` and ``Movie.similar``."""
    context = info.context
    hits = await services.similar(
        engine=context.engine,
        database=context.database,
        work=context.work,
        inline_ms=context.settings.inline_engine_ms,
        viewer_id=context.viewer_id,
        movie_id=movie_id,
        first=first,
    )
    return [SimilarMovie.from_hit(info, hit) for hit in hits]


@strawberry.type
class SimilarMovie:
    movie: Movie
    similarity: float = strawberry.field(description="Cosine similarity of the embeddings.")

    @classmethod
    def from_hit(cls, info: Info, hit: ScoredMovie) -> SimilarMovie:
        """From an engine hit."""
        return cls(movie=catalog_movie(info, hit.movie_id), similarity=round(hit.score, 6))


@strawberry.type
class SearchHit:
    movie: Movie
    score: float = strawberry.field(description="Cosine similarity to the query.")

    @classmethod
    def from_hit(cls, info: Info, hit: ScoredMovie) -> SearchHit:
        """From an engine hit."""
        return cls(movie=catalog_movie(info, hit.movie_id), score=round(hit.score, 6))


@strawberry.type(description="One of the user's rated movies that drove a recommendation.")
class Contribution:
    movie: Movie
    arm: Arm
    share: float = strawberry.field(description="Its share of the score (0-1).")

    @classmethod
    def from_engine(cls, info: Info, item: EngineContribution) -> Contribution:
        """From an engine contribution."""
        return cls(
            movie=catalog_movie(info, item.movie_id),
            arm=Arm(item.arm),
            share=round(item.share, 6),
        )


@strawberry.type
class Explanation:
    because: list[Movie] = strawberry.field(
        description="Up to three movies the user rated.",
        directives=[ListSize(assumed_size=MAX_BECAUSE)],
    )
    summary: str
    contributions: list[Contribution] = strawberry.field(
        directives=[ListSize(assumed_size=MAX_BECAUSE)]
    )
    arms: list[ArmShare] = strawberry.field(
        description="How much each arm drove the result: how far the ranking stage's score "
        "falls without the arm's evidence, or α and 1−α for the blend; largest first.",
        directives=[ListSize(assumed_size=len(Arm))],
    )


@strawberry.type
class Recommendation:
    movie: Movie
    score: float = strawberry.field(
        description="0-1 over the request's candidates: the ranking stage's score, or with "
        "`alpha` α·collabScore + (1−α)·contentScore. With `diversity` above 0 the list is in "
        "the order maximal marginal relevance picked it, not by score."
    )
    collab_score: float = strawberry.field(description="ALS arm, scaled 0-1 over candidates.")
    content_score: float = strawberry.field(description="Content arm, scaled 0-1 over candidates.")
    arm_scores: list[ArmScore] = strawberry.field(
        description="Every arm that scored it.", directives=[ListSize(assumed_size=len(Arm))]
    )
    source: RecommendationSource
    engine_result: strawberry.Private[EngineRecommendation]

    @classmethod
    def from_engine(cls, info: Info, rec: EngineRecommendation) -> Recommendation:
        """From an engine recommendation (the explanation is built only when asked for)."""
        return cls(
            movie=catalog_movie(info, rec.movie_id),
            score=round(rec.score, 6),
            collab_score=round(rec.collab_score, 6),
            content_score=round(rec.content_score, 6),
            arm_scores=[
                ArmScore(arm=Arm(name), score=round(value, 6))
                for name, value in rec.arm_scores.items()
            ],
            source=RecommendationSource(rec.source),
            engine_result=rec,
        )

    @strawberry.field(
        description="Which of the user's ratings led here, and a summary.",
        directives=[Cost(weight=W_EXPLANATION)],
    )
    async def explanation(self, info: Info) -> Explanation:
        rec = self.engine_result
        contributions = [Contribution.from_engine(info, c) for c in rec.because]
        because = [c.movie for c in contributions]
        leaning = sorted(rec.leaning.items(), key=lambda item: -item[1])
        if rec.source == "popularity":
            summary = "Popular with everyone: rate a few movies to personalise this list."
        elif because:
            quoted = [f"“{m.title}”" for m in because]
            titles = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
            summary = f"Because you rated {titles}."
        elif leaning and leaning[0][0] == "popularity":
            summary = "Much watched around the time of your ratings."
        else:
            summary = "From your ratings as a whole."
        arms = [ArmShare(arm=Arm(name), share=round(value, 6)) for name, value in leaning]
        return Explanation(because=because, summary=summary, contributions=contributions, arms=arms)


@strawberry.type
class MovieEdge:
    node: Movie
    cursor: str


@strawberry.type
class MovieConnection:
    edges: list[MovieEdge] = strawberry.field(
        description="One page: as many as the listing's `first` asked for."
    )
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: services.Page[models.Movie]) -> MovieConnection:
        """From a page of catalog rows."""
        edges = [
            MovieEdge(node=Movie.from_row(r), cursor=encode_cursor("movie", r.id))
            for r in page.rows
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of([e.cursor for e in edges], page.has_next),
            total_count=page.total,
        )


@strawberry.type
class Rating:
    rating: float
    rated_at: datetime
    user_id: strawberry.Private[int]
    movie_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.Rating | models.RatingRecord) -> Rating:
        """From a database row."""
        return cls(
            rating=row.rating, rated_at=row.rated_at, user_id=row.user_id, movie_id=row.movie_id
        )

    @strawberry.field
    def user(self) -> User:
        return User(id=self.user_id)

    @strawberry.field
    async def movie(self, info: Info) -> Movie:
        return catalog_movie(info, self.movie_id)


@strawberry.type
class RatingEdge:
    node: Rating
    cursor: str


@strawberry.type
class RatingConnection:
    edges: list[RatingEdge] = strawberry.field(
        description="One page: as many as the listing's `first` asked for."
    )
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: services.Page[models.Rating]) -> RatingConnection:
        """From a page of rating rows."""
        edges = [
            RatingEdge(node=Rating.from_row(r), cursor=encode_cursor("rating", r.movie_id))
            for r in page.rows
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of([e.cursor for e in edges], page.has_next),
            total_count=page.total,
        )


@strawberry.type(description="A rater. Unknown ids are users without ratings (cold start).")
class User:
    id: int

    @strawberry.field(directives=[Cost(weight=W_USER_RATINGS)])
    async def ratings_count(self, info: Info) -> int:
        ratings = await load(info.context.loaders.user_ratings, self.id)
        return len(ratings)

    @strawberry.field(
        description="The user's current ratings, ordered by movie id.",
        directives=[
            Cost(weight=W_RATINGS_PAGE),
            ListSize(slicing_arguments=["first"], sized_fields=["edges"]),
        ],
    )
    async def ratings(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> RatingConnection:
        context = info.context
        page = await services.ratings_page(
            sessions=context.sessions,
            work=context.work,
            user_id=self.id,
            first=first,
            after_movie_id=decode_cursor("rating", after),
        )
        async with context.work.turn():  # building the page: the request's loop work
            return RatingConnection.from_page(page)

    @strawberry.field(
        description="Personalised recommendations from the current ratings.",
        directives=[Cost(weight=W_RECOMMENDATIONS), ListSize(slicing_arguments=["first"])],
    )
    async def recommendations(
        self,
        info: Info,
        first: int = 10,
        alpha: float | None = None,
        genres: list[str] | None = None,
        genre_match: GenreMatch = GenreMatch.ANY,
        exclude_movie_ids: Annotated[list[int] | None, EXCLUDE_MOVIE_IDS] = None,
        diversity: Annotated[float | None, DIVERSITY] = None,
    ) -> list[Recommendation]:
        return await recommendations(
            info,
            self.id,
            first,
            alpha,
            genres,
            exclude_rated=True,
            genre_match=genre_match,
            exclude_movie_ids=exclude_movie_ids,
            diversity=diversity,
        )


async def recommendations(
    info: Info,
    user_id: int,
    first: int,
    alpha: float | None,
    genres: list[str] | None,
    *,
    exclude_rated: bool,
    genre_match: GenreMatch = GenreMatch.ANY,
    exclude_movie_ids: list[int] | None = None,
    diversity: float | None = None,
) -> list[Recommendation]:
    """``Query.recommendations`` and ``User.recommendations``: explained only when the
    selection asks for an explanation."""
    recs = await engine_recommendations(
        info.context,
        user_id,
        first,
        alpha,
        genres,
        exclude_rated=exclude_rated,
        explain=asks_for(info, "explanation"),
        genre_match=genre_match,
        exclude_movie_ids=exclude_movie_ids,
        diversity=diversity,
    )
    return [Recommendation.from_engine(info, rec) for rec in recs]


async def engine_recommendations(
    context: Context,
    user_id: int,
    first: int,
    alpha: float | None,
    genres: list[str] | None,
    *,
    exclude_rated: bool,
    explain: bool,
    genre_match: GenreMatch = GenreMatch.ANY,
    exclude_movie_ids: list[int] | None = None,
    diversity: float | None = None,
) -> list[EngineRecommendation]:
    """The recommendations service called with what a request's context holds (the served
    run, its memo, the request's work and loaders): for the queries and the subscription."""
    return await services.recommendations(
        engine=context.engine,
        database=context.database,
        loaders=context.loaders,
        memo=context.recommendation_memo,
        work=context.work,
        inline_ms=context.settings.inline_engine_ms,
        user_id=user_id,
        first=first,
        alpha=alpha,
        genres=genres,
        exclude_rated=exclude_rated,
        explain=explain,
        genre_match=genre_match,
        exclude_movie_ids=exclude_movie_ids,
        diversity=diversity,
    )
