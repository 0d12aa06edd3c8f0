"""A client's bad input is answered with a code and logs nothing; a crash is masked for the
client and logged once, with its traceback, for the operator."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from recsys_gql.api.schema import build_schema
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings
from tests.api.conftest import direct_context


class _BrokenEngine:
    @property
    def genre_names(self) -> list[str]:
        raise RuntimeError("the genre table is corrupt")


async def _execute(settings: Settings, engine: Any, query: str) -> dict[str, Any]:
    database = Database.open(settings.database_url)
    try:
        async with database.sessions() as session:
            catalog = await all_movies(session)
        context = direct_context(settings, engine, database, catalog)
        result = await build_schema().execute(query, context_value=context)
    finally:
        await database.dispose()
    assert result.errors
    return {
        "message": result.errors[0].message,
        "code": (result.errors[0].extensions or {}).get("code"),
    }


async def test_bad_input_logs_nothing(
    api_settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        error = await _execute(
            api_settings, engine, "{ recommendations(userId: 1, first: 0) { score } }"
        )
    assert error["code"] == "INVALID_ARGUMENT"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_crash_is_masked_and_logged_once_with_its_traceback(
    api_settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        error = await _execute(api_settings, _BrokenEngine(), "{ genres }")
    assert error == {"message": "Unexpected error.", "code": "INTERNAL_SERVER_ERROR"}
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].name == "recsys_gql.api"
    assert logged[0].exc_info is not None
    assert "genre table is corrupt" in str(logged[0].exc_info[1])
