"""GraphQL types of negative feedback and list controls: the ``hideMovie``/``unhideMovie``
payloads (built from :mod:`recsys_gql.api.feedback`'s domain results) and the ``GenreMatch``
enum of ``recommendations``."""

from __future__ import annotations

from typing import Annotated

import strawberry

from recsys_gql.api.context import Info
from recsys_gql.api.feedback import FeedbackSaved, NoSuchMovie, NotSignedIn
from recsys_gql.api.types import Movie, MovieNotFound, Unauthenticated, User, catalog_movie
from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
from recsys_gql.recsys.filters import MAX_EXCLUDED, GenreMatch

W_FEEDBACK = 60
"""``hideMovie`` / ``unhideMovie``: one short write transaction (a row inserted or deleted),
less than ``signUp``'s user and token (130), more than ``rateMovie``'s group-committed upsert
(9), which shares its transaction with concurrent ratings."""

strawberry.enum(  # registers the engine's enum itself as the GraphQL type
    GenreMatch,
    name="GenreMatch",
    description="How several `genres` filter: movies of at least one (ANY, the default) or "
    "of every one (ALL).",
)

EXCLUDE_MOVIE_IDS = strawberry.argument(
    description=f"Movies never to return, e.g. those already shown (at most {MAX_EXCLUDED}; "
    "unknown ids are ignored). The user's hidden movies (`hideMovie`) are always left out."
)
DIVERSITY = strawberry.argument(
    description="0-1: re-rank by maximal marginal relevance over the movie embeddings, 0 for "
    f"pure relevance, 1 for most varied (default {DEFAULT_DIVERSITY}, chosen from the "
    "evaluation report's NDCG@10-vs-diversity curve)."
)


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
