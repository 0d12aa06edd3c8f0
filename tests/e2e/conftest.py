"""Fixtures for the GraphiQL tests: the real API server (from ``tests/api``) and a headless
Debian Chromium driven by Python Playwright.

Chromium, Playwright and the GraphiQL assets are optional locally (the tests skip with the
command to run) and required under ``CI=true`` (the tests fail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from recsys_gql import graphiql
from tests.api.conftest import api, api_settings, database_url  # noqa: F401

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail under ``CI=true``, where everything must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_assets() -> None:
    """The GraphiQL assets must be installed (``npm ci --prefix recsys_gql/graphiql``)."""
    rendered = graphiql.render()
    if not rendered.ok:
        unavailable(
            f"GraphiQL assets unavailable ({' '.join(rendered.problems)}): run {rendered.command}"
        )


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched through Playwright (never its own download).

    Module-scoped: Playwright's sync API marks an event loop as running in this thread while
    it is started, which would break the asyncio tests of other modules.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (.venv/bin/pip install playwright)")
    if not CHROMIUM.is_file():
        unavailable(f"no {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
