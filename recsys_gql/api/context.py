"""The typed per-request context and the ``Info`` alias every resolver uses.

The context holds what the request may use (the engine, the database, loaders, settings,
the app's shared caches) as domain objects: no GraphQL type lives here, so the services and
the extensions can read it without importing the types built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import strawberry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from recsys_gql.api.limiter import Verdict
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.request_work import RequestWork
from recsys_gql.api.search_batcher import SearchBatcher
from recsys_gql.db.models import MovieRecord
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine, Recommendation, ScoredMovie
from recsys_gql.recsys.memo import RecommendationMemo
from recsys_gql.settings import Settings


@dataclass
class Context:
    """What a resolver may use: the engine, the database, per-request loaders and settings."""

    request: Request | WebSocket
    response: Response | WebSocket
    engine: Engine
    database: Database
    loaders: Loaders
    catalog: Mapping[int, MovieRecord]
    """Every movie by id, read once at start-up and shared by requests (the catalog cannot
    change while the server runs, and the records are never mutated)."""
    settings: Settings
    rating_writer: RatingWriter
    """Group-committing ``rateMovie`` writer, one per app."""
    recommendation_memo: RecommendationMemo[Recommendation]
    """The engine's answers for repeat ``recommendations`` requests, one per app."""
    search_batcher: SearchBatcher[ScoredMovie]
    """Encodes concurrent ``searchMovies`` queries together and caches answers, one per app."""
    viewer_id: int | None = None
    """The user an ``Authorization: Bearer`` token belongs to (``None`` when anonymous)."""
    auth_problem: str | None = None
    """Why a presented token was not accepted (``None`` when none was sent or it was fine)."""
    work: RequestWork = field(default_factory=RequestWork)
    """How this request's engine calls and listings run: taking turns, never after its
    deadline."""
    query_cost: int | None = None
    """The operation's estimated cost, set by the ``QueryCost`` extension before execution."""
    rate_limit: Verdict | None = None
    """What ``Throttling`` charged this operation (``None``: not throttled)."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Factory of short-lived read sessions."""
        return self.database.sessions


Info = strawberry.Info[Context, None]
