"""The fast tier: the real schema executed in-process (``schema.execute``) over a tiny engine
trained in seconds on a generated MovieLens-shaped set (:mod:`tests.fast.movielens_gen`) and a
SQLite file loaded by the project's own loader. No uvicorn, no real data, no network.

The app's own lifespan opens the engine, database, catalog and caches; each operation gets a
context from :func:`fast_context`, the one place that knows how the app builds a request's
context (adapt it, and only it, when ``Context`` changes). Every test of this folder runs on
one session event loop so it can share the lifespan's state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pytest_asyncio import is_async_test
from starlette.requests import Request
from starlette.responses import Response

from recsys_gql.api.context import Context
from recsys_gql.api.limiter import RequestLimiter
from recsys_gql.api.schema import RecsysSchema, build_schema
from recsys_gql.api.security import identify
from recsys_gql.api.view import request_context
from recsys_gql.app import create_app
from recsys_gql.db.loader import init_database
from recsys_gql.recsys.content import SentenceEncoder
from recsys_gql.settings import Settings, default_cache_dir
from tests.fast.movielens_gen import write_generated_movielens
from training.config import TrainConfig
from training.pipeline import train

FAST_DIR = Path(__file__).resolve().parent

TINY_CONFIG = TrainConfig.model_validate(
    {"arms": {"als": {"factors": 8, "iterations": 10, "regularization": 1.0}}}
)
"""Defaults but a small ALS: every arm and the ranking stage are trained, in seconds."""

CLIENT = "203.0.113.7"
"""The client address every fast-tier request comes from (a documentation address)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``fast`` and run them on the session's event loop."""
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if FAST_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fast)
            if is_async_test(item):  # first, so it wins over asyncio_mode=auto's own marker
                item.add_marker(session_loop, append=False)


@dataclass(frozen=True)
class TinyWorld:
    """The generated data folder, the trained run and the settings that serve them."""

    data: Path
    settings: Settings


@pytest.fixture(scope="session")
def tiny_world(
    tmp_path_factory: pytest.TempPathFactory, sentence_encoder: SentenceEncoder
) -> TinyWorld:
    """Generate the data set and train the tiny engine on it (once per session)."""
    root = tmp_path_factory.mktemp("fast")
    data = write_generated_movielens(root / "ml")
    artifacts = root / "artifacts"
    train(
        data,
        artifacts,
        TINY_CONFIG,
        cache_dir=default_cache_dir(),  # the texts are embedded once per machine, then read
        encoder_factory=lambda _: sentence_encoder,
        report=lambda _: None,
        show_progress=False,
    )
    settings = Settings(
        artifacts_dir=artifacts,
        data_dir=root / "data",
        cache_dir=root / "cache",
        database_url=f"sqlite+aiosqlite:///{root / 'recsys.db'}",
        rate_limit_reads="100000/minute",
        rate_limit_writes="100000/minute",
        preload_search_model=False,
        search_encoder="run",  # the run's own torch encoder: no ONNX export in tests
        access_log=False,
    )
    return TinyWorld(data, settings)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def app_state(tiny_world: TinyWorld) -> AsyncIterator[Mapping[str, Any]]:
    """The app's lifespan state (engine, database, catalog, memo, batcher, turnstile) over a
    database loaded from the generated folder by ``db init``'s loader."""
    await init_database(tiny_world.settings.database_url, tiny_world.data)
    app = create_app(tiny_world.settings)
    async with app.router.lifespan_context(app) as state:
        state["engine"].warm_up_search()  # the query encoder, loaded before any test times out
        yield state


async def fast_context(
    state: Mapping[str, Any], token: str | None = None, client: str = CLIENT
) -> Context:
    """A request's context built the way the app builds it: the viewer from the bearer
    ``token`` (``identify``), then ``request_context`` over the lifespan ``state``, with a
    minimal HTTP request (client address and headers, for throttling) and response."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": headers,
            "client": (client, 40000),
            "state": {},
        }
    )
    viewer = await identify(state["database"].reads, request.headers.get("authorization"))
    return request_context(state, request, Response(), viewer)


@dataclass
class Answer:
    """An operation's result as a client reads it."""

    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    context: Context | None = None

    @property
    def codes(self) -> list[str]:
        """Each error's ``extensions.code``."""
        return [str((e.get("extensions") or {}).get("code")) for e in self.errors]


@dataclass
class FastClient:
    """Executes operations against ``schema`` with a fresh context per operation."""

    schema: RecsysSchema
    state: Mapping[str, Any]

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        client: str = CLIENT,
    ) -> Answer:
        context = await fast_context(self.state, token, client)
        result = await self.schema.execute(query, variable_values=variables, context_value=context)
        errors = [error.formatted for error in result.errors or []]
        return Answer(result.data, [dict(e) for e in errors], context)

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The data of an operation that must succeed."""
        answer = await self.run(query, variables, **kw)
        assert not answer.errors, answer.errors
        assert answer.data is not None
        return answer.data

    async def sign_up(self) -> tuple[int, str]:
        """A brand-new user and its token."""
        data = await self.ok("mutation { signUp { token user { id } } }")
        return int(data["signUp"]["user"]["id"]), str(data["signUp"]["token"])


def fast_schema(settings: Settings) -> RecsysSchema:
    """The app's schema for ``settings``, throttled by its own in-memory limiter."""
    return build_schema(settings, RequestLimiter(settings))


@pytest.fixture(scope="session")
def gql(tiny_world: TinyWorld, app_state: Mapping[str, Any]) -> FastClient:
    """A client of the schema as the app serves it (limits no functional test reaches)."""
    return FastClient(fast_schema(tiny_world.settings), app_state)
