"""Relay-style pagination: opaque cursors and the ``PageInfo`` of a connection.

A cursor is ``base64("<listing>:<key>")``, the key being what the listing is ordered by (a
movie id); a cursor from another listing, or none at all, is refused as an ``after``
argument. The connections themselves (``MovieConnection``, ``RatingConnection``) are types of
:mod:`recsys_gql.api.types`, built from a service's :class:`~recsys_gql.api.services.Page`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import strawberry

from recsys_gql.errors import InvalidArgument

MAX_ID = 2**31 - 1
"""Ids are 32-bit, like GraphQL's Int."""


def encode_cursor(kind: str, key: int) -> str:
    """An opaque cursor for ``key`` in a ``kind`` listing."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The key inside a cursor made by :func:`encode_cursor`; a foreign cursor is an error."""
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(key)
        if prefix != kind or not 0 <= value <= MAX_ID:
            raise ValueError(prefix)
        return value
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument("after", "is not a cursor from this listing") from None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: Sequence[str], has_next_page: bool) -> PageInfo:
        """The page info of a page whose edges have ``cursors``."""
        return cls(has_next_page=has_next_page, end_cursor=cursors[-1] if cursors else None)
