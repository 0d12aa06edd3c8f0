"""One concern: parse each distinct document once, and leave a bad one to be answered with a
code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from graphql import GraphQLError
from strawberry.extensions import ParserCache


class ParserCacheKeepingErrors(ParserCache):
    """Strawberry's ``ParserCache``, except that a document that does not parse is left for
    Strawberry's own parse.

    ``ParserCache`` parses before its hook yields, so a syntax error (or a document over the
    token limit) escaped the operation's extensions: it came back as HTTP 200 without an
    ``extensions.code``. Left unparsed, the document is parsed again inside the operation
    (a second parse, for bad documents only) and its error is coded and answered with 400
    like any other bad input.
    """

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        with suppress(GraphQLError):
            execution.graphql_document = self.cached_parse_document(
                execution.query, **execution.parse_options
            )
        yield
