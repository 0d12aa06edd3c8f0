"""One concern: throttle GraphQL operations before any resolver runs.

- a query spends *reads* by its estimated cost (:mod:`recsys_gql.api.cost`): one read per
  ``RECSYS_GQL_QUERY_COST_PER_READ`` cost units, rounded up, at least one, so an ordinary
  front-end query spends one and a query a hundred times as costly a hundred;
- a mutation spends one *write per root field it executes*: aliases count, and so do fields
  reached through fragments on ``Mutation`` (five aliased ``rateMovie`` calls spend five).
  An operation is admitted or refused whole: a refused one spends nothing and writes nothing.

Who is charged, and where the counts live, is the limiter's business
(:mod:`recsys_gql.api.limiter`), handed to :class:`Throttling` through its constructor.

**Where it acts.** ``on_execute`` runs after parsing and validation (an operation that fails
them costs nothing and runs nothing) and before execution. A refused operation gets
``execution_context.result`` set, so Strawberry skips execution and no resolver runs.

**Responses.** Every counted answer carries ``X-RateLimit-Limit`` (the bucket's size),
``X-RateLimit-Remaining`` (after this request), ``X-RateLimit-Reset`` (seconds until the
oldest hit in the window expires, as in the IETF ``RateLimit-Reset`` draft),
``X-RateLimit-Cost`` (what this operation spent) and ``X-RateLimit-Resource`` (``read`` or
``write``); a query can also select the same as ``rateLimit { cost limit remaining resetAt }``
(GitHub's GraphQL API does both). A refused operation is HTTP 429 with ``Retry-After``
(seconds) and a GraphQL error whose ``extensions`` are ``{"code": "RATE_LIMITED",
"retryAfter": <seconds>, "cost": <what it would have spent>}``. The error has no
``original_error``, so :class:`~recsys_gql.api.extensions.errors.ErrorCodes` keeps its code.
When the limiter's storage is down and it fails closed, the answer is HTTP 503 with the code
``RATE_LIMIT_UNAVAILABLE``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)
from graphql.error import GraphQLError
from graphql.utilities import get_operation_ast
from starlette.requests import HTTPConnection
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from recsys_gql.api.cost import included
from recsys_gql.api.limiter import Bucket, RequestLimiter, Verdict

RATE_LIMITED = "RATE_LIMITED"
RATE_LIMIT_UNAVAILABLE = "RATE_LIMIT_UNAVAILABLE"


@runtime_checkable
class Throttled(Protocol):
    """What throttling reads from and writes to a request's context."""

    request: Any
    response: Any
    viewer_id: int | None
    query_cost: int | None
    rate_limit: Verdict | None


def root_fields(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> list[str]:
    """The response keys (alias or name) of the root fields the operation executes, through
    inline fragments and fragment spreads, each once (GraphQL merges equal keys), without
    ``__typename`` and other introspection fields."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    keys: dict[str, None] = {}
    _collect_root_keys(operation.selection_set, fragments, variables or {}, frozenset(), keys)
    return list(keys)


def _collect_root_keys(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    entered: frozenset[str],
    keys: dict[str, None],
) -> None:
    # a module-level function, not a closure: a recursive closure is a reference cycle, left
    # for the garbage collector on every request (see recsys_gql.api.execution)
    for selection in selection_set.selections:
        if not included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                keys[(selection.alias or selection.name).value] = None
        elif isinstance(selection, InlineFragmentNode):
            _collect_root_keys(selection.selection_set, fragments, variables, entered, keys)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in entered:
                fragment = fragments[name].selection_set
                _collect_root_keys(fragment, fragments, variables, entered | {name}, keys)


def operation_charge(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    query_cost: int,
    cost_per_read: int,
) -> tuple[Bucket, int]:
    """What an operation spends: ``(WRITE, number of root fields, at least 1)`` for a mutation,
    else ``(READ, its cost in reads)``: one read per ``cost_per_read`` cost units, rounded up,
    at least one (so an ordinary query spends one read, and a query a hundred times its cost
    spends a hundred)."""
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation is OperationType.MUTATION:
        return Bucket.WRITE, max(1, len(root_fields(document, operation_name, variables)))
    return Bucket.READ, max(1, math.ceil(query_cost / cost_per_read))


def _refusal(message: str, extensions: dict[str, Any]) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


def _set_headers(response: Response, verdict: Verdict) -> None:
    response.headers["X-RateLimit-Limit"] = str(verdict.limit)
    response.headers["X-RateLimit-Remaining"] = str(verdict.remaining)
    response.headers["X-RateLimit-Reset"] = str(verdict.reset_after)
    response.headers["X-RateLimit-Cost"] = str(verdict.cost)
    response.headers["X-RateLimit-Resource"] = verdict.bucket.value


class Throttling(SchemaExtension):
    """Spends the operation's cost before execution; refuses it whole when it does not fit.

    Runs after :class:`~recsys_gql.api.extensions.query_cost.QueryCost`, whose estimate
    (``Context.query_cost``) sets what a query spends; an operation it refused spends nothing.
    """

    def __init__(self, limiter: RequestLimiter) -> None:
        self.limiter = limiter

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if (
            execution.result is None
            and isinstance(context, Throttled)
            and isinstance(context.request, HTTPConnection)
            and isinstance(context.response, Response)
            and execution.graphql_document is not None
        ):
            refusal = await self._check(context, context.response)
            if refusal is not None:
                execution.result = refusal  # Strawberry skips execution: no resolver runs
        yield

    async def _check(self, context: Throttled, response: Response) -> ExecutionResult | None:
        execution = self.execution_context
        limiter = self.limiter
        assert execution.graphql_document is not None
        variables = execution.variables if isinstance(execution.variables, Mapping) else None
        bucket, cost = operation_charge(
            execution.graphql_document,
            execution.operation_name,
            variables,
            context.query_cost or 0,
            limiter.cost_per_read,
        )
        key = limiter.client_key(context.request, bucket, context.viewer_id)
        verdict = await limiter.spend(bucket, key, cost)
        if verdict is None:
            if limiter.fail_open:
                return None
            response.status_code = 503
            return _refusal(
                "Rate limiting is unavailable; try again shortly.",
                {"code": RATE_LIMIT_UNAVAILABLE},
            )
        context.rate_limit = verdict
        _set_headers(response, verdict)
        if verdict.allowed:
            return None
        response.status_code = 429
        response.headers["Retry-After"] = str(verdict.reset_after)
        noun = bucket.value + ("s" if cost != 1 else "")
        if cost > verdict.limit:
            message = (
                f"This operation spends {cost} {noun} but the limit is {verdict.item}; "
                "ask for less per request."
            )
        else:
            message = (
                f"Too many {bucket.value}s: this operation spends {cost} {noun} and the limit "
                f"is {verdict.item}. Retry in {verdict.reset_after} s."
            )
        extensions = {"code": RATE_LIMITED, "retryAfter": verdict.reset_after, "cost": cost}
        return _refusal(message, extensions)
