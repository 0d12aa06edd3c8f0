"""What a GraphQL operation will cost, estimated from its document before anything runs.

The schema declares costs where its fields are declared, with the two directives of the IBM
GraphQL Cost Directives specification (also used by Hot Chocolate and Apollo), printed in
``schema.graphql`` so front-end developers can price a query themselves:

- ``@cost(weight: N)``: the work one call of the field does beyond resolving its objects (an
  engine call, a database read), in *cost units*;
- ``@listSize(slicingArguments: ["first"], sizedFields: [...], assumedSize: N)``: how many items
  a list field (or a connection's ``sizedFields``) returns.

One cost unit is the work of resolving one object. A field costs its weight plus, for each
object it returns, one unit and the cost of the selection on that object::

    cost(field) = weight + size × (1 + cost(selection))     # composite types
    cost(field) = weight                                     # scalars and enums

``size`` is 1 for a single object; for a list, the value of its slicing argument (a literal,
a variable, or the argument's default when absent; at most :data:`MAX_PAGE`, as resolvers
refuse more), else the size its parent's slicing argument gives it (``sizedFields``), else
its ``assumedSize``. Aliases each count; fragments and inline fragments count where they are
spread; on a union or interface, fragments on different concrete types exclude each other, so
the most expensive one counts. ``@skip``/``@include`` with a known condition drop a selection.
``__typename`` is free; ``__schema`` and ``__type`` cost :data:`INTROSPECTION_COST` flat (the
schema is small and fixed, and production turns introspection off).

The estimate never falls below the number of objects a query resolves (a property test holds
it to that), so a client cannot make the server resolve more than the limit it was priced at.

It is computed per request from the document *and* its variables (``first: $n``), so it
cannot live in a validation rule, whose results the validation cache keeps per document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)
from graphql.type.definition import GraphQLCompositeType
from graphql.utilities import get_operation_ast, value_from_ast_untyped
from strawberry.schema_directive import Location

MAX_PAGE = 100
"""The largest page any list field serves (its resolver refuses more before doing any work)."""

INTROSPECTION_COST = 550
"""The flat price of ``__schema`` or ``__type``: GraphiQL's full introspection query, measured
like the weights (``python -m bench.query_cost``)."""


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="The work one call of this field does beyond resolving the objects it returns, "
    "in cost units (one unit: resolving one object).",
)
class Cost:
    weight: int


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="listSize",
    description="How many items this list field returns: the value of a slicing argument, the "
    "size its parent's slicing argument gives it (sizedFields), or an assumed size.",
)
class ListSize:
    # UNSET, not None: the SDL printer leaves an UNSET argument out
    assumed_size: int | None = strawberry.UNSET
    slicing_arguments: list[str] | None = strawberry.UNSET
    sized_fields: list[str] | None = strawberry.UNSET


@dataclass(frozen=True)
class FieldCost:
    """A field's declared cost and size (the defaults: free, and no size declaration)."""

    weight: int = 0
    assumed_size: int | None = None
    slicing_arguments: tuple[str, ...] = ()
    sized_fields: tuple[str, ...] = ()


FREE = FieldCost()


def declared_costs(schema: GraphQLSchema) -> dict[tuple[str, str], FieldCost]:
    """Every field's :class:`Cost` and :class:`ListSize`, by ``(type name, field name)``, read
    from the Strawberry definitions behind ``schema`` (fields without either are free)."""
    table: dict[tuple[str, str], FieldCost] = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            directives = getattr(definition, "directives", None) or ()
            weight, size = 0, None
            for directive in directives:
                if isinstance(directive, Cost):
                    weight = directive.weight
                elif isinstance(directive, ListSize):
                    size = directive
            if weight or size is not None:
                table[(type_name, field_name)] = FieldCost(
                    weight=weight,
                    assumed_size=_given(getattr(size, "assumed_size", None)),
                    slicing_arguments=tuple(_given(getattr(size, "slicing_arguments", None)) or ()),
                    sized_fields=tuple(_given(getattr(size, "sized_fields", None)) or ()),
                )
    return table


def _given(value: Any) -> Any:
    """``None`` for an argument left UNSET."""
    return None if value is strawberry.UNSET else value


def is_list_field(field: GraphQLField) -> bool:
    """Whether the field returns a list (of anything)."""
    field_type = field.type
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def included(node: SelectionNode, variables: Mapping[str, Any]) -> bool:
    """``False`` only when ``@skip``/``@include`` certainly drop the selection."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        condition: object = None
        for argument in directive.arguments or ():
            if argument.name.value != "if":
                continue
            if isinstance(argument.value, BooleanValueNode):
                condition = argument.value.value
            elif isinstance(argument.value, VariableNode):
                condition = variables.get(argument.value.name.value)
        if (name == "skip" and condition is True) or (name == "include" and condition is False):
            return False
    return True


class CostModel:
    """Prices operations against one schema (built once per schema; thread-safe)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.costs = declared_costs(schema)

    def estimate(
        self,
        document: DocumentNode,
        operation_name: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> int:
        """The cost of the operation ``operation_name`` of a *validated* ``document``."""
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return 0
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        given = dict(variables or {})
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in given and definition.default_value is not None:
                given[name] = value_from_ast_untyped(definition.default_value)
        walk = _Walk(self, document, given)
        return walk.selection_cost(operation.selection_set, root, {}, frozenset())


class _Walk:
    """One estimate's state: the fragments and variables of the document being priced."""

    def __init__(
        self, model: CostModel, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.model = model
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def selection_cost(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLCompositeType,
        sizes: Mapping[str, int],
        entered: frozenset[str],
    ) -> int:
        """The cost of the selection on one object of type ``parent``; ``sizes`` holds the
        item counts the parent field's slicing argument gives some of its fields."""
        shared = 0
        by_type: dict[str, int] = {}
        for selection in selection_set.selections:
            if not included(selection, self.variables):
                continue
            if isinstance(selection, FieldNode):
                shared += self.field_cost(selection, parent, sizes, entered)
                continue
            inside = entered
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = selection.selection_set
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in entered or name not in self.fragments:
                    continue  # validation refuses cycles; this only guards the walk
                fragment = self.fragments[name]
                condition, inner = fragment.type_condition, fragment.selection_set
                inside = entered | {name}
            else:  # pragma: no cover - graphql-core has no other selection kinds
                continue
            target = (
                parent if condition is None else self.model.schema.get_type(condition.name.value)
            )
            if not is_composite_type(target):  # pragma: no cover - validation refuses these
                continue
            cost = self.selection_cost(inner, target, sizes, inside)
            if is_abstract_type(parent) and not is_abstract_type(target):
                # fragments on different concrete types of a union exclude each other
                key = target.name
                by_type[key] = by_type.get(key, 0) + cost
            else:
                shared += cost
        return shared + max(by_type.values(), default=0)

    def field_cost(
        self,
        node: FieldNode,
        parent: GraphQLCompositeType,
        sizes: Mapping[str, int],
        entered: frozenset[str],
    ) -> int:
        """The cost of one field on one object of type ``parent``."""
        name = node.name.value
        if name == "__typename":
            return 0
        if name in ("__schema", "__type"):
            return INTROSPECTION_COST
        field = parent.fields[name]  # type: ignore[union-attr]
        declared = self.model.costs.get((parent.name, name), FREE)
        if node.selection_set is None:
            return declared.weight
        size = 1
        if is_list_field(field):
            size = sizes.get(name, self.list_size(node, field, declared))
        slice_size = self.slicing_value(node, field, declared)
        child_sizes = dict.fromkeys(declared.sized_fields, slice_size) if slice_size else {}
        target = get_named_type(field.type)
        per_item = 1 + self.selection_cost(node.selection_set, target, child_sizes, entered)
        return declared.weight + size * per_item

    def list_size(self, node: FieldNode, field: GraphQLField, declared: FieldCost) -> int:
        """How many items a list field returns at most."""
        value = self.slicing_value(node, field, declared)
        if value is not None:
            return value
        if declared.assumed_size is not None:
            return declared.assumed_size
        return MAX_PAGE

    def slicing_value(
        self, node: FieldNode, field: GraphQLField, declared: FieldCost
    ) -> int | None:
        """The page size the field's slicing argument asks for (its default when absent, the
        largest page when unknown), or ``None`` when it has no slicing argument."""
        if not declared.slicing_arguments:
            return None
        for argument_name in declared.slicing_arguments:
            value: object = None
            given = False
            for argument in node.arguments or ():
                if argument.name.value != argument_name:
                    continue
                given = True
                if isinstance(argument.value, IntValueNode):
                    value = int(argument.value.value)
                elif isinstance(argument.value, VariableNode):
                    value = self.variables.get(argument.value.name.value)
            if not given:
                definition = field.args.get(argument_name)
                value = None if definition is None else definition.default_value
            if isinstance(value, int) and not isinstance(value, bool):
                return max(0, min(value, MAX_PAGE))
        return MAX_PAGE
