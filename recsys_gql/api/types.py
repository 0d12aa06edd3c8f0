"""GraphQL object types. Each is built from a database row or an engine result by a
``from_*`` constructor; nested fields resolve through the request's DataLoaders."""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost, ListSize
from recsys_gql.api.list_controls import DIVERSITY, EXCLUDE_MOVIE_IDS, GenreMatch
from recsys_gql.api.loaders import load
from recsys_gql.db import models
from recsys_gql.errors import InvalidArgument
from recsys_gql.recsys.arms import ARMS
from recsys_gql.recsys.engine import Recommendation as EngineRecommendation
from recsys_gql.recsys.engine import ScoredMovie
from recsys_gql.recsys.explain import Contribution as EngineContribution
from recsys_gql.recsys.features import CONTEXT

PAGE_MAX = 100
MAX_ID = 2**31 - 1
"""Ids are 32-bit, like GraphQL's Int."""
MAX_BECAUSE = 3
"""An explanation names at most this many rated movies."""

# The cost weights (``@cost``) of engine- and database-backed fields, in cost units (one
# unit: resolving one object), from the per-call CPU that ``python -m bench.query_cost``
# measures (its ``weights`` in bench/results/query_cost.json; tests/api/test_query_cost.py
# holds these to them). A field costs its weight per call; see recsys_gql.api.cost.
W_RECOMMENDATIONS = 170
"""``recommend`` for one user: fold-in, both arms, ranking (the heaviest users cost more)."""
W_EXPLANATION = 7
"""One result's explanation (the engine's contributions are summed with the ranking)."""
W_SIMILAR = 5
"""Nearest movies: a content-graph lookup up to 50, an index search beyond (the weight: the
price of the costlier way)."""
W_SEARCH = 180
"""Encoding the query with the sentence model, then the index search."""
W_POPULAR = 5
"""The Bayesian-average ranking, filtered by genre."""
W_MOVIES = 170
"""A filtered, counted page of the catalog from the database."""
W_MOVIE_STATS = 3
"""A movie's rating count and mean: one batched aggregate per request, per movie."""
W_USER_RATINGS = 6
"""A user's current ratings (batched per request)."""
W_RATINGS_PAGE = 90
"""A counted page of a user's ratings from the database."""
W_HEALTH = 55
"""A database round trip."""
W_RATE_MOVIE = 9
"""One rating upserted (group-committed)."""
W_SIGN_UP = 130
"""A user and a token written in one transaction."""


def check_first(first: int, field: str = "first") -> int:
    """Page sizes are 1-100."""
    if not 1 <= first <= PAGE_MAX:
        raise InvalidArgument(field, f"must be from 1 to {PAGE_MAX}, got {first}")
    return first


def encode_cursor(kind: str, key: int) -> str:
    """An opaque cursor for ``key`` in a ``kind`` listing."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The key inside a cursor made by :func:`encode_cursor`; a foreign cursor is an error."""
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(key)
        if prefix != kind or not 0 <= value <= MAX_ID:
            raise ValueError(prefix)
        return value
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument("after", "is not a cursor from this listing") from None


def catalog_movie(info: Info, movie_id: int) -> Movie:
    """A movie an engine result names, straight from the in-memory catalog.

    The catalog is immutable while the server runs, so a lookup needs no query and no
    DataLoader: awaiting a loader per movie (a future, a shielding task and a batch dispatch)
    cost more than the rest of a ``recommendations`` request. Its GraphQL objects are built
    once, at start-up (:func:`catalog_types`).
    """
    movie = info.context.catalog.get(movie_id)
    if movie is None:  # the catalog and the artifacts disagree: a deployment error
        raise LookupError(f"movie {movie_id} is in the model but not in the database")
    return movie


def catalog_types(rows: Mapping[int, models.Movie]) -> dict[int, Movie]:
    """The GraphQL object of every catalog movie, by id."""
    return {movie_id: Movie.from_row(row) for movie_id, row in rows.items()}


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
    def from_row(cls, row: models.Movie) -> Movie:
        """From a database row."""
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
        from recsys_gql.api import services

        hits = await services.similar(info, self.id, check_first(first))
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


LEGACY_ARM_NAMES = {"als": "COLLABORATIVE"}
"""GraphQL names kept from before the arm registry; any other arm is its name in capitals."""


def arm_enum() -> type[enum.Enum]:
    """The GraphQL ``Arm`` enum: one value per registered arm (described by the arm itself),
    and ``CONTEXT`` for the user's and the movie's own features. Registering an arm adds its
    value: nothing here changes."""
    members: dict[str, Any] = {
        LEGACY_ARM_NAMES.get(arm.name, arm.name.upper()): strawberry.enum_value(
            arm.name, description=arm.description
        )
        for arm in ARMS
    }
    members[CONTEXT.upper()] = strawberry.enum_value(
        CONTEXT, description="not an arm: the user's activity, the movie's age, genre affinity"
    )
    return enum.Enum("Arm", members)  # type: ignore[return-value]


if TYPE_CHECKING:
    Arm = enum.Enum
else:
    Arm = strawberry.enum(
        arm_enum(),
        description="A scoring model of the engine (and, for how a result was ranked, the "
        "user's and the movie's own features).",
    )


@strawberry.enum(description="What produced a recommendation.")
class RecommendationSource(enum.Enum):
    RANKER = strawberry.enum_value("ranker", description="the learned ranking stage (default)")
    BLEND = strawberry.enum_value("hybrid", description="the linear blend a request's alpha asks")
    POPULARITY = strawberry.enum_value("popularity", description="no ratings yet: most rated")


@strawberry.type(description="One arm's score of a recommendation.")
class ArmScore:
    arm: Arm
    score: float = strawberry.field(description="Scaled 0-1 over the request's candidates.")


@strawberry.type(description="How much one arm drove a recommendation.")
class ArmShare:
    arm: Arm
    share: float = strawberry.field(description="0-1; the shares of a result sum to 1.")


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
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


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
        from recsys_gql.api import services

        return await services.ratings_page(info, self.id, check_first(first), after)

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
        from recsys_gql.api import services

        return await services.recommendations(
            info,
            self.id,
            first,
            alpha,
            genres,
            True,
            genre_match=genre_match,
            exclude_movie_ids=exclude_movie_ids,
            diversity=diversity,
        )


@strawberry.type(
    description="What this request spent of the client's read budget, and what is left "
    "(the same as the X-RateLimit-* headers)."
)
class RateLimit:
    cost: int = strawberry.field(description="Reads this operation spent.")
    limit: int = strawberry.field(description="Reads the client may spend per window.")
    remaining: int = strawberry.field(description="Reads left in the window after this one.")
    reset_at: datetime = strawberry.field(description="When the window has room again.")
    query_cost: int = strawberry.field(
        description="This operation's estimated cost in cost units (see @cost in the SDL)."
    )
    max_query_cost: int = strawberry.field(description="The most one operation may cost.")


@strawberry.type
class Health:
    ok: bool
    run_id: str
    movies: int
    users: int
    ratings: int
    embedding_model: str
    collaborative_model: str
    index: str
    engine_loaded: bool
    database_connected: bool
    search_model_loaded: bool

    @strawberry.field(
        description="Each arm of the run: served, or skipped and why.",
        directives=[ListSize(assumed_size=len(Arm))],
    )
    def arms(self, info: Info) -> list[ArmStatus]:
        return [
            ArmStatus(arm=Arm(s.name), serving=s.serving, reason=s.reason)
            for s in info.context.engine.arm_status
        ]

    @strawberry.field(
        description="Why the run has no learned ranking stage (null: it has one and serves it "
        "by default)."
    )
    def ranking_stage_missing(self, info: Info) -> str | None:
        return info.context.engine.ranking_stage


@strawberry.type(description="Whether the run serves an arm.")
class ArmStatus:
    arm: Arm
    serving: bool
    reason: str | None = strawberry.field(description="Why it is not served (e.g. memory).")


@strawberry.type(description="The rating is stored; the next recommendations reflect it.")
class RatingSaved:
    message: str
    rating: Rating
    user: User


@strawberry.type(description="The input was refused; nothing was written.")
class InvalidRating:
    message: str
    field: str


@strawberry.type(description="No movie has this id; nothing was written.")
class MovieNotFound:
    message: str
    movie_id: int


@strawberry.type(description="No valid `Authorization: Bearer <token>` header; nothing written.")
class Unauthenticated:
    message: str
    code: str = "UNAUTHENTICATED"


@strawberry.type(description="The token's user may not write for this user; nothing written.")
class Forbidden:
    message: str
    code: str = "FORBIDDEN"


RateMoviePayload = Annotated[
    RatingSaved | InvalidRating | MovieNotFound | Unauthenticated | Forbidden,
    strawberry.union("RateMoviePayload"),
]


@strawberry.type(description="A new user and its API token. The token is shown only once.")
class SignedUp:
    message: str
    user: User
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")


@strawberry.input
class RateMovieInput:
    user_id: int
    movie_id: int
    rating: float = strawberry.field(description="0.5 to 5.0 in steps of 0.5.")
