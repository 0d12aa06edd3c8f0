"""Schema migrations: bring a database to the code's revision, or back, and say where it is.

The revisions live in :mod:`recsys_gql.db.migrations` (Alembic). Every function here opens one
write transaction (:func:`~recsys_gql.db.session.write_connection`: ``BEGIN IMMEDIATE`` on
SQLite, plus an advisory lock on PostgreSQL so two upgrades never interleave) and runs Alembic
inside it on the async engine's connection (``run_sync``). PostgreSQL and SQLite both run DDL
transactionally, so a failed upgrade leaves the previous schema and every row as they were.

**Databases from before migrations.** ``recsys-gql db init`` used to create the tables with
``create_all``; such a database has no ``alembic_version`` table. :func:`upgrade` recognises
one by its tables and columns (exactly those of revision ``0001``, which is that schema),
*stamps* it as ``0001`` without touching a table, then applies the later revisions. A database
holding only some of those tables, or other columns, is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recsys_gql.db.session import write_connection
from recsys_gql.errors import RecsysError

__all__ = [
    "BASELINE",
    "MIGRATIONS",
    "MigrationResult",
    "SchemaNotRecognised",
    "SchemaState",
    "downgrade",
    "head_revision",
    "schema_state",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")
"""Alembic's script location (``env.py``, ``versions/``), installed with the package."""
BASELINE = "0001"
"""The revision that is the schema ``create_all`` made before migrations existed."""
_LOCK_KEY = 0x7265637372
"""PostgreSQL advisory lock key held while migrating."""


class SchemaNotRecognised(RecsysError):
    """The database has tables but no revision, and they are not the pre-migration schema."""

    code = "SCHEMA_NOT_RECOGNISED"


@dataclass(frozen=True)
class MigrationResult:
    """The revision a database was at before and after a migration command (``None``: no
    revision), and whether it was a pre-migration database stamped as :data:`BASELINE`."""

    before: str | None
    after: str | None
    stamped: bool = False

    @property
    def changed(self) -> bool:
        """Whether the command changed the schema or its recorded revision."""
        return self.before != self.after


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against the code."""

    revision: str | None
    """The revision recorded in ``alembic_version`` (``None``: not under migrations)."""
    head: str
    """The code's newest revision."""
    known: bool
    """Whether ``revision`` is one of the code's revisions (a newer release may have written
    one this code does not have)."""
    tables: frozenset[str]
    """The tables of the application present in the database."""

    @property
    def current(self) -> bool:
        """The schema is exactly what the code expects."""
        return self.revision == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the packaged revisions, running on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision the code has (what ``db upgrade`` brings a database to)."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


def _baseline_columns() -> dict[str, frozenset[str]]:
    module = _script().get_revision(BASELINE).module
    columns: dict[str, frozenset[str]] = module.TABLE_COLUMNS
    return columns


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _is_known(revision: str | None) -> bool:
    if revision is None:
        return True
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def _state(connection: Connection) -> SchemaState:
    tables = frozenset(inspect(connection).get_table_names()) & set(_baseline_columns())
    revision = _revision(connection)
    return SchemaState(revision, head_revision(), _is_known(revision), tables)


def _stamp_if_created_by_create_all(connection: Connection, config: Config) -> bool:
    """Stamp a pre-migration database as :data:`BASELINE`; ``False`` for an empty one."""
    expected = _baseline_columns()
    inspector = inspect(connection)
    present = set(inspector.get_table_names()) & set(expected)
    if not present:
        return False
    problems = [f"table {name} is missing" for name in sorted(set(expected) - present)]
    for name in sorted(present):
        columns = {column["name"] for column in inspector.get_columns(name)}
        if columns != expected[name]:
            extra, missing = sorted(columns - expected[name]), sorted(expected[name] - columns)
            problems.append(f"table {name} has columns {extra} extra and {missing} missing")
    if problems:
        raise SchemaNotRecognised(
            "the database has tables but no schema revision, and they are not the schema "
            f"`recsys-gql db init` created before migrations: {'; '.join(problems)}. "
            "Nothing was changed; point RECSYS_GQL_DATABASE_URL at an empty database, or fix "
            f"the tables and run `alembic stamp {BASELINE}`."
        )
    command.stamp(config, BASELINE)
    return True


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


def _upgrade(connection: Connection, revision: str) -> MigrationResult:
    _lock(connection)
    config = alembic_config(connection)
    before = _revision(connection)
    stamped = before is None and _stamp_if_created_by_create_all(connection, config)
    command.upgrade(config, revision)
    return MigrationResult(before, _revision(connection), stamped)


def _downgrade(connection: Connection, revision: str) -> MigrationResult:
    _lock(connection)
    config = alembic_config(connection)
    before = _revision(connection)
    command.downgrade(config, revision)
    return MigrationResult(before, _revision(connection))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> MigrationResult:
    """Bring the schema to ``revision`` (default: the newest) in one transaction: create it
    in an empty database, stamp a pre-migration one first (see the module docstring)."""
    async with write_connection(engine) as connection:
        return await connection.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> MigrationResult:
    """Take the schema back to ``revision`` (``"-1"``: one step; ``"base"``: nothing), in one
    transaction."""
    async with write_connection(engine) as connection:
        return await connection.run_sync(_downgrade, revision)


async def schema_state(target: AsyncEngine | AsyncConnection) -> SchemaState:
    """Where the schema of ``target`` stands against the code (read only)."""
    if isinstance(target, AsyncConnection):
        return await target.run_sync(_state)
    async with target.connect() as connection:
        return await connection.run_sync(_state)
