"""Request bodies decoded strictly: what graphql-core would answer with a 500 is a 400 here."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cross_web import HTTPException


def _check_strings(value: object) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # raises on unpaired surrogates such as "\ud800"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def decode_request_json(data: str | bytes) -> object:
    """``json.loads`` for request bodies, refusing with 400 what graphql-core would turn into
    a 500: invalid UTF-8, unpaired surrogates, and bodies that are not objects (or lists, which
    Strawberry itself refuses as batches)."""
    try:
        decoded = json.loads(data)
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "the request body is not valid UTF-8") from exc
    try:
        _check_strings(decoded)
    except UnicodeEncodeError as exc:
        raise HTTPException(400, "the request contains an unpaired surrogate") from exc
    except RecursionError as exc:
        raise HTTPException(400, "the request body is nested too deeply") from exc
    if not isinstance(decoded, dict | list):
        raise HTTPException(400, "the request body must be a JSON object")
    return decoded
