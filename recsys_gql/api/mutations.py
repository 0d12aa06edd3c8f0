"""Mutation resolvers: expected failures are payload types, never exceptions."""

from __future__ import annotations

import strawberry

from recsys_gql import errors
from recsys_gql.api import feedback, services
from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost
from recsys_gql.api.feedback_types import MovieFeedbackPayload, feedback_payload
from recsys_gql.api.payloads import (
    Forbidden,
    InvalidRating,
    MovieNotFound,
    RateMovieInput,
    RateMoviePayload,
    RatingSaved,
    SignedUp,
    Unauthenticated,
)
from recsys_gql.api.types import Rating, User
from recsys_gql.api.weights import W_FEEDBACK, W_RATE_MOVIE, W_SIGN_UP


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Rate a movie (0.5-5.0 in half stars). Re-rating updates in place; a new "
        "user id creates the user. The next recommendations reflect the rating.",
        directives=[Cost(weight=W_RATE_MOVIE)],
    )
    async def rate_movie(self, info: Info, input: RateMovieInput) -> RateMoviePayload:
        context = info.context
        try:
            row = await services.rate_movie(
                engine=context.engine,
                writer=context.rating_writer,
                loaders=context.loaders,
                changes=context.user_changes,
                viewer_id=context.viewer_id,
                auth_problem=context.auth_problem,
                user_id=input.user_id,
                movie_id=input.movie_id,
                rating=input.rating,
            )
        except errors.NotAuthenticated as refused:
            return Unauthenticated(message=refused.message)
        except errors.NotPermitted as refused:
            return Forbidden(message=refused.message)
        except errors.InvalidRating as refused:
            return InvalidRating(message=refused.message, field=refused.field)
        except errors.UnknownMovie as refused:
            return MovieNotFound(message=refused.message, movie_id=refused.movie_id)
        return RatingSaved(
            message=f"saved {row.rating:g} for movie {row.movie_id}",
            rating=Rating.from_row(row),
            user=User(id=row.user_id),
        )

    @strawberry.mutation(
        description="Create a new user and return an API token for it (shown only once).",
        directives=[Cost(weight=W_SIGN_UP)],
    )
    async def sign_up(self, info: Info) -> SignedUp:
        new = await services.sign_up(database=info.context.database)
        return SignedUp(
            message=f"welcome, user {new.user_id}: keep this token, it is shown only once",
            user=User(id=new.user_id),
            token=new.token,
        )

    @strawberry.mutation(
        description="Hide a movie from the viewer (bearer token): it never appears in their "
        "recommendations, similar lists or search hits until unhidden. Idempotent.",
        directives=[Cost(weight=W_FEEDBACK)],
    )
    async def hide_movie(self, info: Info, movie_id: int) -> MovieFeedbackPayload:
        return await _set_hidden(info, movie_id, hide=True)

    @strawberry.mutation(
        description="Show a movie the viewer hid again. Idempotent.",
        directives=[Cost(weight=W_FEEDBACK)],
    )
    async def unhide_movie(self, info: Info, movie_id: int) -> MovieFeedbackPayload:
        return await _set_hidden(info, movie_id, hide=False)


async def _set_hidden(info: Info, movie_id: int, *, hide: bool) -> MovieFeedbackPayload:
    """``hideMovie`` / ``unhideMovie``: the viewer's feedback, mapped to its payload."""
    context = info.context
    result = await feedback.set_hidden(
        database=context.database,
        changes=context.user_changes,
        movies=context.engine.movies,
        viewer_id=context.viewer_id,
        auth_problem=context.auth_problem,
        movie_id=movie_id,
        hide=hide,
    )
    return feedback_payload(info, result)
