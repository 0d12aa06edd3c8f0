"""A real uvicorn on loopback serving the real ml-latest-small artifacts, once against a SQLite
file and once against a fresh PostgreSQL database (required under ``CI=true``)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from recsys_gql.api.context import Context
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.search_batcher import SearchBatcher
from recsys_gql.app import create_app
from recsys_gql.db.hot_reads import SqliteHotReads
from recsys_gql.db.loader import init_database
from recsys_gql.db.models import MovieRecord
from recsys_gql.db.rating_writer import RatingWriter
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine, Recommendation, check_query
from recsys_gql.recsys.memo import RecommendationMemo
from recsys_gql.settings import Settings
from tests.conftest import RealRun

PG_ADMIN_URLS = [f"postgresql+asyncpg://{u}@127.0.0.1:5432/postgres" for u in ("postgres", "root")]


@dataclass(frozen=True)
class Server:
    """A running server and how to reach it."""

    url: str
    settings: Settings

    def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        status: int = 200,
    ) -> dict[str, Any]:
        """POST one operation (with a bearer token when given) and return the decoded body
        (asserting the HTTP status: 200, or 400 for an operation stopped by bad input)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body


@contextmanager
def running(settings: Settings, app: Starlette | None = None) -> Iterator[Server]:
    """Run ``app`` (default: ``create_app(settings)``) under uvicorn in a thread until the
    block exits."""
    config = uvicorn.Config(
        app or create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    exit_codes: list[object] = []

    def serve() -> None:
        try:
            server.run()
        except SystemExit as exc:  # uvicorn's exit on a failed startup
            exit_codes.append(exc.code)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start (exit code {exit_codes})")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _create_postgres_database() -> str:
    name = f"recsys_api_{uuid.uuid4().hex[:10]}"
    reasons = []
    for admin_url in PG_ADMIN_URLS:

        async def create(url: str = admin_url) -> None:
            admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
            try:
                async with admin.connect() as connection:
                    await connection.execute(text(f'CREATE DATABASE "{name}"'))
            finally:
                await admin.dispose()

        try:
            asyncio.run(create())
            return admin_url.rsplit("/", 1)[0] + f"/{name}"
        except Exception as exc:
            reasons.append(f"{admin_url}: {type(exc).__name__}: {exc}")
    message = f"PostgreSQL is not reachable ({'; '.join(reasons)})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def _drop_postgres_database(url: str) -> None:
    admin_url, name = url.rsplit("/", 1)

    async def drop() -> None:
        admin = create_async_engine(f"{admin_url}/postgres", isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()

    asyncio.run(drop())


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, real_run: RealRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database initialised from the real data with `db init`'s loader."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('api-db') / 'recsys.db'}"
    else:
        url = _create_postgres_database()
    asyncio.run(init_database(url, real_run.raw))
    yield url
    if request.param == "postgres":
        _drop_postgres_database(url)


@pytest.fixture(scope="session")
def api_settings(database_url: str, real_run: RealRun) -> Settings:
    """Settings pointing at the session's artifacts and database, with limits no functional
    test reaches (tests/reliability narrows them with ``model_copy``)."""
    return Settings(
        artifacts_dir=real_run.artifacts_dir,
        data_dir=real_run.data_dir,
        database_url=database_url,
        rate_limit_reads="100000/minute",
        rate_limit_writes="100000/minute",
        preload_search_model=False,  # only the shared server below searches
    )


@pytest.fixture(scope="session")
def api(api_settings: Settings) -> Iterator[Server]:
    """The server every API test talks to (one per database backend)."""
    with running(api_settings.model_copy(update={"preload_search_model": True})) as server:
        yield server


SIGN_UP = "mutation { signUp { message token user { id } } }"


def sign_up(server: Server) -> tuple[int, str]:
    """A brand-new user and its token."""
    signed = server.graphql(SIGN_UP)["data"]["signUp"]
    return int(signed["user"]["id"]), str(signed["token"])


def fresh_user() -> int:
    """A user id no other test uses."""
    return 10_000_000 + uuid.uuid4().int % 1_000_000_000


def schema_path() -> Path:
    """The committed SDL."""
    return Path(__file__).resolve().parents[2] / "schema.graphql"


# --- executing the schema directly, without HTTP ------------------------------------------------


@pytest.fixture(scope="session")
def engine(api_settings: Settings) -> Engine:
    """The session's trained engine, loaded in this process."""
    return Engine.load(api_settings.artifacts_dir / "current")


def record_statements(database: Database) -> list[str]:
    """Every SQL statement ``database`` runs from now on, through SQLAlchemy or the SQLite hot
    reads (the list fills as they run)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    if isinstance(database.reads, SqliteHotReads):
        database.reads.trace = statements.append
    return statements


def direct_context(
    settings: Settings,
    engine: Engine,
    database: Database,
    catalog: dict[int, MovieRecord],
    memo: RecommendationMemo[Recommendation] | None = None,
) -> Context:
    """A request's context as the app builds it, for ``schema.execute`` (no request or
    response; fresh loaders; ``memo`` keeps nothing unless given)."""
    return Context(
        request=None,  # type: ignore[arg-type]
        response=None,  # type: ignore[arg-type]
        engine=engine,
        database=database,
        loaders=Loaders.create(database.reads, catalog),
        catalog=catalog,
        settings=settings,
        rating_writer=RatingWriter(database),
        recommendation_memo=RecommendationMemo(0) if memo is None else memo,
        search_batcher=SearchBatcher(
            lambda texts, n: engine.search_many(texts, n), check_query, window_s=0.0
        ),
    )


# --- watching the engine of an in-process server ----------------------------------------------


@dataclass
class EngineSpy:
    """When each engine serving method was called (the server runs in this process)."""

    starts: dict[str, list[float]] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return len(self.starts.get(name, []))

    @property
    def total(self) -> int:
        return sum(len(times) for times in self.starts.values())


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> EngineSpy:
    """Records the start of every call of the engine's serving methods from now on."""
    spy = EngineSpy()

    def spying(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Engine, *args: Any, **kwargs: Any) -> Any:
            spy.starts.setdefault(name, []).append(time.monotonic())
            return method(self, *args, **kwargs)

        return wrapper

    for name in ("recommend", "similar", "search", "popular"):
        monkeypatch.setattr(Engine, name, spying(name, getattr(Engine, name)))
    return spy
