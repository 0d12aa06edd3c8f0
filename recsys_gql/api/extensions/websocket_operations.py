"""One concern: which transport an operation runs on, and WebSocket operations treated like
HTTP requests.

- Each gets fresh per-request state on the connection's shared context
  (:func:`~recsys_gql.api.live.connection.renew`: loaders, deadline).
- A refusal made before execution (``QueryCost``, ``Throttling``) stops a subscription too.
  Those extensions set ``execution_context.result``, which Strawberry honours for queries and
  mutations but not for subscriptions; raised here instead, the refusal is what the client
  receives, and no resolver runs.
- A subscription sent over HTTP is refused with 400 and the code
  ``SUBSCRIPTION_NEEDS_WEBSOCKET`` (executed over HTTP, its resolver could only fail).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from recsys_gql.api.context import Context
from recsys_gql.api.live.connection import renew
from recsys_gql.api.live.updates import NEEDS_WEBSOCKET, NeedsWebSocket


class WebSocketOperations(SchemaExtension):
    """See the module docstring; listed after the extensions whose refusals it enforces."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and isinstance(context.request, WebSocket):
            renew(context)
        yield

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        refused = execution.result
        if execution.operation_type is OperationType.SUBSCRIPTION:
            if refused is not None and refused.errors:
                raise refused.errors[0]
            if isinstance(context, Context) and not isinstance(context.request, WebSocket):
                if isinstance(context.response, Response):
                    context.response.status_code = 400
                extensions = {"code": NeedsWebSocket.code}
                error = GraphQLError(NEEDS_WEBSOCKET, extensions=extensions)
                execution.result = ExecutionResult(data=None, errors=[error])  # nothing runs
        yield
