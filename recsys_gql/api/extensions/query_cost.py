"""One concern: price every operation before it runs, and refuse one that costs too much.

The estimate (:mod:`recsys_gql.api.cost`) is made in ``on_execute``, after parsing and
validation and before any resolver: from the document and the request's variables, so it is
made per request and never kept by the validation cache. An operation over the limit is
answered HTTP 400 with ``extensions: {code: "QUERY_TOO_COSTLY", cost, limit}`` and nothing
runs; one within it records its cost on the context, where ``Throttling`` charges it and the
access log reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from recsys_gql.api.context import Context
from recsys_gql.api.cost import CostModel

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
"""The code of a refused operation (:mod:`recsys_gql.api.http_status` answers it with 400)."""


class QueryCost(SchemaExtension):
    """Estimates the operation's cost with ``model``; refuses it above ``limit``."""

    def __init__(self, model: CostModel, limit: int) -> None:
        self.model = model
        self.limit = limit

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None and execution.result is None:
            variables = execution.variables if isinstance(execution.variables, Mapping) else None
            cost = self.model.estimate(document, execution.operation_name, variables)
            context = execution.context
            if isinstance(context, Context):
                context.query_cost = cost
                if isinstance(context.request, HTTPConnection):
                    context.request.state.query_cost = cost  # for the access log
            if cost > self.limit:  # answered 400, like any operation stopped by bad input
                message = (
                    f"This operation would cost {cost} but one request may cost at most "
                    f"{self.limit}: ask for fewer items (first), less nesting or fewer aliases."
                )
                extensions = {"code": QUERY_TOO_COSTLY, "cost": cost, "limit": self.limit}
                error = GraphQLError(message, extensions=extensions)
                execution.result = ExecutionResult(data=None, errors=[error])  # nothing runs
        yield
