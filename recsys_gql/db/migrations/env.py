"""Alembic's environment: runs the revisions on a connection.

``recsys-gql db upgrade`` (:mod:`recsys_gql.db.migrate`) opens the async engine itself and
hands a synchronous connection in through ``config.attributes["connection"]`` (Alembic's
"connection sharing" with ``AsyncConnection.run_sync``): the migration then runs inside that
connection's transaction, with the same SQLite pragmas and ``BEGIN IMMEDIATE`` as every other
write. Run by the ``alembic`` command (``alembic revision --autogenerate`` while developing),
it opens an async engine on ``sqlalchemy.url`` or ``RECSYS_GQL_DATABASE_URL`` itself.
"""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import recsys_gql.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from recsys_gql.db.session import create_db_engine, write_connection
from recsys_gql.settings import Settings


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite alters most things by copying the table: let autogenerate write batch ops.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_own_engine(url: str) -> None:
    engine = create_db_engine(url)
    try:
        async with write_connection(engine) as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or Settings().database_url
    if context.is_offline_mode():  # `alembic upgrade --sql`: print the DDL, touch nothing
        context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    if config.config_file_name is not None:  # the `alembic` command: its ini's logging
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_on_own_engine(url))


_main()
