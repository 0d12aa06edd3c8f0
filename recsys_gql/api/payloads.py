"""The ``rateMovie`` and ``signUp`` inputs and payloads: expected failures are types of the
payload union, never errors."""

from __future__ import annotations

from typing import Annotated

import strawberry

from recsys_gql.api.types import Rating, User


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
