"""GraphQL types of negative feedback: the ``hideMovie``/``unhideMovie`` payloads, built from
:mod:`recsys_gql.api.feedback`'s domain results."""

from __future__ import annotations

from typing import Annotated

import strawberry

from recsys_gql.api.context import Info
from recsys_gql.api.feedback import FeedbackSaved, NoSuchMovie, NotSignedIn
from recsys_gql.api.payloads import MovieNotFound, Unauthenticated
from recsys_gql.api.types import Movie, User, catalog_movie


@strawberry.type(
    description="The movie's hidden state for the viewer now. Hidden movies never appear in "
    "the viewer's recommendations, similar lists or search hits."
)
class MovieFeedbackSaved:
    message: str
    movie: Movie
    user: User
    hidden: bool
    changed: bool = strawberry.field(
        description="Whether this call changed it (false: it was already so)."
    )


MovieFeedbackPayload = Annotated[
    MovieFeedbackSaved | MovieNotFound | Unauthenticated,
    strawberry.union("MovieFeedbackPayload"),
]


def feedback_payload(
    info: Info, result: FeedbackSaved | NotSignedIn | NoSuchMovie
) -> MovieFeedbackSaved | MovieNotFound | Unauthenticated:
    """The payload of a hide/unhide result."""
    if isinstance(result, NotSignedIn):
        return Unauthenticated(message=result.problem)
    if isinstance(result, NoSuchMovie):
        return MovieNotFound(
            message=f"movie {result.movie_id} does not exist", movie_id=result.movie_id
        )
    state = "hidden" if result.hidden else "shown"
    already = "" if result.changed else " (it already was)"
    return MovieFeedbackSaved(
        message=f"movie {result.movie_id} is {state}{already}",
        movie=catalog_movie(info, result.movie_id),
        user=User(id=result.user_id),
        hidden=result.hidden,
        changed=result.changed,
    )
