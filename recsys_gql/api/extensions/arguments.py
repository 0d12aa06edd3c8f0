"""One concern: refuse out-of-range arguments before anything runs.

This is the one place the API checks its arguments' ranges. A page size (``first``) outside
1-100, an ``alpha`` or ``diversity`` outside [0, 1], an ``excludeMovieIds`` list longer than
its bound or a ``yearFrom`` after the field's ``yearTo`` is the client's mistake whatever
field it is given to. Checked in ``on_execute`` from the document and the
request's variables, such an operation is answered 400 with ``INVALID_ARGUMENT`` and the
argument's name, and no resolver runs. Checked inside a resolver instead, the error would
reach the client only after sibling fields had started, and, on a non-null field, cancel
them part-way (graphql-core then leaves the coroutines it had created for them unawaited).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from recsys_gql.api.cost import MAX_PAGE, included
from recsys_gql.errors import InvalidArgument
from recsys_gql.recsys.filters import MAX_EXCLUDED


def _page_size(name: str, value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= MAX_PAGE:
        raise InvalidArgument(name, f"must be from 1 to {MAX_PAGE}, got {value}")


def _share(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise InvalidArgument(name, f"must be a finite number from 0 to 1, got {value}")


def _excluded(name: str, value: object) -> None:
    if isinstance(value, list) and len(value) > MAX_EXCLUDED:
        raise InvalidArgument(name, f"must name at most {MAX_EXCLUDED} movies, got {len(value)}")


RULES: dict[str, Callable[[str, object], None]] = {
    "first": _page_size,
    "alpha": _share,
    "diversity": _share,
    "excludeMovieIds": _excluded,
}
"""Argument name -> its check, wherever the argument appears (values of the wrong type are
left to GraphQL's own coercion, which refuses them with BAD_USER_INPUT)."""


def _year_range(arguments: Mapping[str, object]) -> None:
    low, high = arguments.get("yearFrom"), arguments.get("yearTo")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise InvalidArgument("yearFrom", f"{low} is after yearTo {high}")


FIELD_RULES: tuple[Callable[[Mapping[str, object]], None], ...] = (_year_range,)
"""Checks of a field's arguments together, wherever they appear."""


def check_arguments(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> None:
    """Raise :class:`~recsys_gql.errors.InvalidArgument` for the first argument of the
    operation that breaks its rule."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return
    given = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in given and definition.default_value is not None:
            given[name] = value_from_ast_untyped(definition.default_value)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    _walk(operation.selection_set, fragments, given, frozenset())


def _walk(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    entered: frozenset[str],
) -> None:
    for selection in selection_set.selections:
        if not included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            arguments = {
                argument.name.value: value_from_ast_untyped(argument.value, variables)
                for argument in selection.arguments or ()
            }
            for name, value in arguments.items():
                rule = RULES.get(name)
                if rule is not None:
                    rule(name, value)
            for field_rule in FIELD_RULES:
                field_rule(arguments)
            if selection.selection_set is not None:
                _walk(selection.selection_set, fragments, variables, entered)
        elif isinstance(selection, InlineFragmentNode):
            _walk(selection.selection_set, fragments, variables, entered)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in entered:
                _walk(fragments[name].selection_set, fragments, variables, entered | {name})


class ArgumentChecks(SchemaExtension):
    """Refuses the operation before execution when an argument breaks its rule."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None and execution.result is None:
            variables = execution.variables if isinstance(execution.variables, Mapping) else None
            try:
                check_arguments(document, execution.operation_name, variables)
            except InvalidArgument as error:
                coded = GraphQLError(error.message, original_error=error)
                execution.result = ExecutionResult(data=None, errors=[coded])
        yield
