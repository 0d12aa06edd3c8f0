"""What a SQLite database URL names: an in-memory database, a ``file:`` URI or a plain file.

One place decides it, for the engine's pragmas and folder creation (:mod:`.session`) and for
the paths that open the file with the standard library's ``sqlite3`` (:mod:`.hot_reads`,
:mod:`.inline_writes`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL


def is_sqlite_memory(url: URL) -> bool:
    """Whether a SQLite ``url`` names an in-memory database (no file, so no WAL)."""
    database = url.database or ""
    # SQLAlchemy parses "?mode=memory" of a "file:" URI into the query, not the database.
    return (
        database in ("", ":memory:")
        or ":memory:" in database
        or "mode=memory" in database
        or url.query.get("mode") == "memory"
    )


def sqlite_file_path(url: URL) -> Path | None:
    """The database file a SQLite ``url`` names; ``None`` for an in-memory database, a
    ``file:`` URI (its options may matter, so it is left to the driver) or another backend."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url) or database.startswith("file:"):
        return None
    return Path(database).expanduser()
