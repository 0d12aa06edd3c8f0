"""The examples run against the API tests' real server."""

from tests.api.conftest import api, api_settings, database_url  # noqa: F401
