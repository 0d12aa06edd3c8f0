"""What a SQLite URL names: the one decision behind WAL, folder creation and direct opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from recsys_gql.db.urls import is_sqlite_memory, sqlite_file_path


@pytest.mark.parametrize(
    ("url", "memory", "file"),
    [
        ("sqlite+aiosqlite:///data/recsys.db", False, Path("data/recsys.db")),
        ("sqlite+aiosqlite:////var/lib/recsys.db", False, Path("/var/lib/recsys.db")),
        ("sqlite+aiosqlite://", True, None),
        ("sqlite+aiosqlite:///:memory:", True, None),
        ("sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true", True, None),
        ("sqlite+aiosqlite:///file:data/recsys.db?uri=true", False, None),
        ("postgresql+asyncpg://localhost/test", False, None),
    ],
)
def test_what_a_url_names(url: str, memory: bool, file: Path | None) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert is_sqlite_memory(parsed) is memory
    assert sqlite_file_path(parsed) == file


def test_home_folder_is_expanded() -> None:
    path = sqlite_file_path(make_url("sqlite+aiosqlite:///~/recsys.db"))
    assert path == Path.home() / "recsys.db"
