"""Fixtures for the reliability suite: the session's real artifacts and database from
``tests/api`` (servers are started per test, with the settings each test needs)."""

from __future__ import annotations

from tests.api.conftest import api_settings, database_url, engine  # noqa: F401
