"""The executable schema: types, resolvers and the extensions, one concern each."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.types import ExecutionContext

from recsys_gql.api.errors import ErrorCodes
from recsys_gql.api.execution import AcyclicExecutionContext
from recsys_gql.api.hardening import ParserCacheKeepingErrors, limit_extensions, schema_config
from recsys_gql.api.mutations import Mutation
from recsys_gql.api.queries import Query
from recsys_gql.api.throttling import Throttling
from recsys_gql.settings import Settings


class RecsysSchema(strawberry.Schema):
    """Strawberry's schema, minus its logging of every error.

    Strawberry logs each error with its traceback at ERROR level, a client's bad argument as
    much as a crash. :class:`~recsys_gql.api.errors.ErrorCodes` logs the unexpected ones (with
    their traceback) and answers the rest with a code: a client's mistake is not the
    operator's alarm, and a script sending garbage must not flood the log."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing: :class:`~recsys_gql.api.errors.ErrorCodes` logs what needs logging."""


def build_schema(settings: Settings | None = None) -> RecsysSchema:
    """The schema with parse/validation caches (about three times the throughput), query cost
    limits, coded and masked errors (logged once, and only when unexpected), read/write
    throttling before execution, and an execution context that leaves no reference cycle
    (:mod:`recsys_gql.api.execution`)."""
    settings = settings or Settings()
    return RecsysSchema(
        query=Query,
        mutation=Mutation,
        config=schema_config(settings),
        execution_context_class=AcyclicExecutionContext,
        extensions=[
            lambda: ParserCacheKeepingErrors(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            *limit_extensions(settings),
            ErrorCodes,
            Throttling,
        ],
    )
