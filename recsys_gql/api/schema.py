"""The executable schema: types, resolvers and the extensions, one concern each."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from recsys_gql.api.cost import CostModel
from recsys_gql.api.execution import AcyclicExecutionContext
from recsys_gql.api.extensions.arguments import ArgumentChecks
from recsys_gql.api.extensions.document_limits import limit_extensions
from recsys_gql.api.extensions.errors import ErrorCodes
from recsys_gql.api.extensions.parser_cache import ParserCacheKeepingErrors
from recsys_gql.api.extensions.query_cost import QueryCost
from recsys_gql.api.extensions.throttling import Throttling
from recsys_gql.api.limiter import RequestLimiter
from recsys_gql.api.mutations import Mutation
from recsys_gql.api.queries import Query
from recsys_gql.settings import Settings


class RecsysSchema(strawberry.Schema):
    """Strawberry's schema, minus its logging of every error.

    Strawberry logs each error with its traceback at ERROR level, a client's bad argument as
    much as a crash. :class:`~recsys_gql.api.extensions.errors.ErrorCodes` logs the unexpected
    ones (with their traceback) and answers the rest with a code: a client's mistake is not
    the operator's alarm, and a script sending garbage must not flood the log."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing: :class:`~recsys_gql.api.extensions.errors.ErrorCodes` logs what needs
        logging."""


def schema_config(settings: Settings) -> StrawberryConfig:
    """No "did you mean …" suggestions in production (they leak the schema)."""
    return StrawberryConfig(disable_field_suggestions=settings.is_production)


def build_schema(
    settings: Settings | None = None,
    limiter: RequestLimiter | None = None,
    tracing: Sequence[Callable[[], SchemaExtension]] = (),
) -> RecsysSchema:
    """The schema with parse/validation caches, document
    limits, a cost estimate and limit per operation, coded and masked errors (logged once,
    and only when unexpected), read/write throttling charged by cost before execution (with
    ``limiter``; none without it, as for ``export-schema``), an execution context that
    leaves no reference cycle (:mod:`recsys_gql.api.execution`), and Strawberry's
    OpenTelemetry extension when ``tracing`` gives it (:mod:`recsys_gql.tracing`)."""
    settings = settings or Settings()
    pricing: list[CostModel] = []  # the model reads the finished schema: bound just below
    throttling = [] if limiter is None else [lambda: Throttling(limiter)]
    schema = RecsysSchema(
        query=Query,
        mutation=Mutation,
        config=schema_config(settings),
        execution_context_class=AcyclicExecutionContext,
        extensions=[
            lambda: ParserCacheKeepingErrors(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            *limit_extensions(settings),
            ErrorCodes,
            ArgumentChecks,
            lambda: QueryCost(pricing[0], settings.max_query_cost),
            *throttling,
            *tracing,
        ],
    )
    pricing.append(CostModel(schema._schema))
    return schema
