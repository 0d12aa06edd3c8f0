"""One concern: give every error an ``extensions.code`` and mask the unexpected ones.

Domain errors (:class:`~recsys_gql.errors.RecsysError`) keep their message and carry their
code (and ``field`` where there is one: an engine parameter is named as the GraphQL argument
that carried it, see :data:`ARGUMENT_OF_PARAMETER`); syntax errors (a document over the token limit
included) are ``GRAPHQL_PARSE_FAILED`` and validation errors ``GRAPHQL_VALIDATION_FAILED``;
anything else becomes "Unexpected error." with code
``INTERNAL_SERVER_ERROR`` and is logged with its traceback, so no internals reach a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult

from recsys_gql.api.request_facts import note_operation
from recsys_gql.errors import InvalidArgument, InvalidParameter, RecsysError

log = logging.getLogger("recsys_gql.api")

ARGUMENT_OF_PARAMETER = {
    "n": "first",
    "exclude": "excludeMovieIds",
    "genre_match": "genreMatch",
    "text": "query",
    "year_from": "yearFrom",
    "year_to": "yearTo",
}
"""The GraphQL argument that carries each engine parameter of another name."""


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, RecsysError):
        extensions["code"] = original.code
        message = original.message
        if isinstance(original, InvalidArgument):
            extensions["field"] = original.field
        elif isinstance(original, InvalidParameter):
            field = ARGUMENT_OF_PARAMETER.get(original.parameter, original.parameter)
            extensions["field"] = field
            message = f"{field}: {original.problem}"
    elif isinstance(error, GraphQLSyntaxError):
        extensions.setdefault("code", "GRAPHQL_PARSE_FAILED")
        message = error.message
    elif original is None:
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        message = error.message
    elif isinstance(original, GraphQLError):  # a variable that does not coerce, e.g. NaN
        extensions.setdefault("code", "BAD_USER_INPUT")
        message = error.message
    else:
        log.error("unexpected error in %s", error.path, exc_info=original)
        return GraphQLError(
            "Unexpected error.",
            nodes=error.nodes,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,  # a syntax error has no nodes: its location comes from here
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the operation's errors as described in the module docstring, then notes the
    operation and its error codes on the request (:mod:`recsys_gql.api.request_facts`)."""

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        result = self.execution_context.result
        codes: list[str] = []
        if result is not None and result.errors and not self._streamed:
            coded = [_coded(e) for e in result.errors]  # logs the unexpected, tracebacks and all
            for error in result.errors:
                _drop_traceback(error)
            result.errors = coded
            codes = [str((error.extensions or {}).get("code")) for error in coded]
        note_operation(self.execution_context, codes)  # for the access log and metrics

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """The same for each result a subscription sends, before it is sent."""
        self._streamed = True
        if isinstance(result, ExecutionResult) and result.errors:
            coded = [_coded(e) for e in result.errors]
            for error in result.errors:
                _drop_traceback(error)
            result.errors = coded
        yield


def _drop_traceback(error: GraphQLError) -> None:
    """Forget an answered error's traceback. Its frames include the executor's, which holds
    the error: a reference cycle keeping the whole request alive until a garbage collection
    (see :mod:`recsys_gql.api.execution`)."""
    error.__traceback__ = None
    if error.original_error is not None:
        error.original_error.__traceback__ = None
