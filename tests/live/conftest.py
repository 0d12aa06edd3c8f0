"""Live-update tests run against real servers: the API tests' in-process server and
settings (both database backends), or real processes (tests/live/test_replicas.py)."""

from tests.api.conftest import api, api_settings, database_url  # noqa: F401
