"""Authentication for writes: bearer tokens, stored only as their sha256.

A token is ``rgq_`` followed by 43 URL-safe random characters (256 bits), shown once when it
is issued (``signUp`` or ``recsys-gql users token``). Requests carry it as
``Authorization: Bearer <token>``; the request's viewer is the token's user. Reads need no
token; ``rateMovie`` needs one whose user is ``input.userId``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from recsys_gql.db import repository as repo
from recsys_gql.db.hot_reads import HotReads
from recsys_gql.db.session import Database

TOKEN_PREFIX = "rgq_"
MAX_HEADER_LENGTH = 200


def new_token() -> str:
    """A fresh random token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database stores for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """Who a request is: a user id, or anonymous with the reason a token was not accepted."""

    user_id: int | None
    problem: str | None = None


def bearer_token(header: str | None) -> tuple[str | None, str | None]:
    """``(token, problem)`` from an ``Authorization`` header value."""
    if header is None:
        return None, None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the Authorization header must be `Bearer <token>`"
    token = token.strip()
    if len(token) > MAX_HEADER_LENGTH or not token.startswith(TOKEN_PREFIX):
        return None, "the token is not a recsys-gql token"
    return token, None


async def identify(reads: HotReads, header: str | None) -> Viewer:
    """The viewer of a request with this ``Authorization`` header."""
    token, problem = bearer_token(header)
    if token is None:
        return Viewer(None, problem)
    user_id = await reads.user_for_token(token_digest(token))
    if user_id is None:
        return Viewer(None, "the token is unknown or revoked")
    return Viewer(user_id)


async def issue_token(database: Database, user_id: int) -> str:
    """Store a new token for an existing user and return it (the only time it is visible)."""
    token = new_token()
    async with database.write() as session:
        await repo.add_token(session, user_id, token_digest(token), datetime.now(UTC))
    return token


async def revoke(database: Database, token: str) -> bool:
    """Revoke ``token``; ``False`` when it was not a live token."""
    async with database.write() as session:
        return await repo.revoke_token(session, token_digest(token), datetime.now(UTC))
