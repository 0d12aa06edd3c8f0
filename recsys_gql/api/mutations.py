"""Mutation resolvers: expected failures are payload types, never exceptions."""

from __future__ import annotations

import strawberry

from recsys_gql.api import feedback, services
from recsys_gql.api.context import Info
from recsys_gql.api.cost import Cost
from recsys_gql.api.feedback_types import W_FEEDBACK, MovieFeedbackPayload, feedback_payload
from recsys_gql.api.types import (
    W_RATE_MOVIE,
    W_SIGN_UP,
    RateMovieInput,
    RateMoviePayload,
    SignedUp,
)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Rate a movie (0.5-5.0 in half stars). Re-rating updates in place; a new "
        "user id creates the user. The next recommendations reflect the rating.",
        directives=[Cost(weight=W_RATE_MOVIE)],
    )
    async def rate_movie(self, info: Info, input: RateMovieInput) -> RateMoviePayload:
        return await services.rate_movie(info, input)

    @strawberry.mutation(
        description="Create a new user and return an API token for it (shown only once).",
        directives=[Cost(weight=W_SIGN_UP)],
    )
    async def sign_up(self, info: Info) -> SignedUp:
        return await services.sign_up(info)

    @strawberry.mutation(
        description="Hide a movie from the viewer (bearer token): it never appears in their "
        "recommendations, similar lists or search hits until unhidden. Idempotent.",
        directives=[Cost(weight=W_FEEDBACK)],
    )
    async def hide_movie(self, info: Info, movie_id: int) -> MovieFeedbackPayload:
        c = info.context
        result = await feedback.hide_movie(
            c.database, c.engine.movies, c.viewer_id, c.auth_problem, movie_id
        )
        return feedback_payload(info, result)

    @strawberry.mutation(
        description="Show a movie the viewer hid again. Idempotent.",
        directives=[Cost(weight=W_FEEDBACK)],
    )
    async def unhide_movie(self, info: Info, movie_id: int) -> MovieFeedbackPayload:
        c = info.context
        result = await feedback.unhide_movie(
            c.database, c.engine.movies, c.viewer_id, c.auth_problem, movie_id
        )
        return feedback_payload(info, result)
