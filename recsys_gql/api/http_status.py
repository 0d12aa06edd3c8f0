"""The HTTP status of a GraphQL answer stopped whole: 400 for bad input, 503 for a deadline.

Bad input that stops a whole operation (parse, validation, variable coercion, an invalid
argument, a cost over the limit) is the client's mistake, so it is not answered 200.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BAD_INPUT_CODES = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "INVALID_ARGUMENT",
        "QUERY_TOO_COSTLY",
    }
)


def error_status(response_data: Mapping[str, Any]) -> int | None:
    """The HTTP status of an operation stopped whole (no data): 400 when only bad input
    stopped it, 503 when it ran out of time (code ``TIMEOUT``: its deadline passed before its
    work could start); ``None`` otherwise (200, partial data and errors included)."""
    errors = response_data.get("errors") or []
    if response_data.get("data") is not None or not errors:
        return None
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    if codes <= BAD_INPUT_CODES:
        return 400
    if "TIMEOUT" in codes:
        return 503
    return None
