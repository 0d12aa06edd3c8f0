"""A server refuses a database whose schema is not the code's, and says what to run; the
operator's path from a database made before migrations to a serving one keeps every rating."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from recsys_gql.cli import main
from recsys_gql.db.migrate import BASELINE, downgrade, head_revision, upgrade
from recsys_gql.db.session import create_db_engine
from recsys_gql.settings import Settings
from tests.api.conftest import running
from tests.processes import served_process, wait_ready

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

RECSYS_GQL = [sys.executable, "-c", "from recsys_gql.cli import main; raise SystemExit(main())"]


def copy_database(api_settings: Settings, folder: Path) -> str:
    """A private copy of the session's SQLite database (WAL contents included)."""
    source = api_settings.database_url.removeprefix("sqlite+aiosqlite:///")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "copy.db"
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    return f"sqlite+aiosqlite:///{target}"


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    async def run() -> None:
        engine = create_db_engine(url)
        try:
            await (downgrade(engine, revision) if down else upgrade(engine, revision))
        finally:
            await engine.dispose()

    asyncio.run(run())


def ratings_of(url: str) -> list[tuple[object, ...]]:
    path = url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT * FROM ratings ORDER BY user_id, movie_id").fetchall()


def test_serve_refuses_a_schema_behind_the_code(
    api_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = copy_database(api_settings, tmp_path)
    migrate(url, BASELINE, down=True)
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(api_settings.artifacts_dir))
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", url)

    assert main(["serve", "--port", "1"]) == 2

    err = capsys.readouterr().err
    assert f"at schema revision {BASELINE} but this version needs {head_revision()}" in err
    assert "run `recsys-gql db upgrade`" in err
    assert main(["db", "current"]) == 1


def test_readyz_turns_unavailable_when_the_schema_falls_behind(
    api_settings: Settings, tmp_path: Path
) -> None:
    url = copy_database(api_settings, tmp_path)
    with running(api_settings.model_copy(update={"database_url": url})) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        migrate(url, BASELINE, down=True)

        behind = httpx.get(f"{server.url}/readyz")

        assert behind.status_code == 503
        assert "run `recsys-gql db upgrade`" in " ".join(behind.json()["problems"])
        migrate(url, "head")
        assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_a_database_from_before_migrations_is_upgraded_then_served(
    api_settings: Settings, tmp_path: Path
) -> None:
    """The operator's path, with real processes: `serve` refuses the old database with the
    command to run; `db upgrade` stamps and upgrades it; `serve` then serves every rating."""
    url = copy_database(api_settings, tmp_path / "db")
    # The schema create_all made before migrations is revision 0001 without alembic_version.
    migrate(url, BASELINE, down=True)
    with sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///")) as connection:
        connection.execute("DROP TABLE alembic_version")
    before = ratings_of(url)
    env = {
        "RECSYS_GQL_ARTIFACTS_DIR": str(api_settings.artifacts_dir),
        "RECSYS_GQL_DATA_DIR": str(api_settings.data_dir),
        "RECSYS_GQL_DATABASE_URL": url,
        "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
    }
    environment = {**os.environ, **env}

    refused = subprocess.run(
        [*RECSYS_GQL, "serve", "--port", "1"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "created before schema migrations: run `recsys-gql db upgrade`" in refused.stderr

    upgraded = subprocess.run(
        [*RECSYS_GQL, "db", "upgrade"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert f"stamped it {BASELINE}; schema now at revision {head_revision()}" in upgraded.stdout
    assert ratings_of(url) == before

    log = tmp_path / "serve.log"
    settings = api_settings.model_copy(update={"database_url": url})
    with served_process(settings, {"RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false"}, log) as served:
        wait_ready([served], [log])
        answer = httpx.post(
            f"{served}/graphql", json={"query": "{ user(id: 1) { ratingsCount } }"}, timeout=30
        )
    expected = sum(1 for row in before if row[0] == 1)
    assert answer.json() == {"data": {"user": {"ratingsCount": expected}}}
