"""What a resolver's field selects: lets a resolver skip work nobody asked for."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.types.nodes import SelectedField, Selection

from recsys_gql.api.context import Info


def asks_for(info: Info, name: str) -> bool:
    """Whether the field being resolved selects the subfield ``name``, directly or through
    fragments (a subfield under ``@skip``/``@include`` counts as asked for)."""
    return any(_selects(field.selections, name) for field in info.selected_fields)


def _selects(selections: Sequence[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                return True
        elif _selects(selection.selections, name):
            return True
    return False
