"""Runtime settings, read once from ``RECSYS_GQL_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/recsys-gql`` (``~/.cache/recsys-gql``): survives a fresh clone."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recsys-gql"


class Settings(BaseSettings):
    """Every knob of the service; each field maps to ``RECSYS_GQL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_GQL_", frozen=True, extra="ignore")

    data_dir: Path = Path("data")
    """Where ``data fetch`` puts raw data (``<data_dir>/raw/ml-latest-small``)."""

    data_source: str | None = None
    """A local folder or zip to fetch MovieLens from instead of downloading it."""

    artifacts_dir: Path = Path("artifacts")
    """Where training writes ``<run-id>/`` folders and the ``current`` link."""

    cache_dir: Path = default_cache_dir()
    """Embedding and TMDB caches; safe to delete."""

    database_url: str = "sqlite+aiosqlite:///data/recsys.db"
    """SQLAlchemy async URL of the catalog and ratings database: ``sqlite+aiosqlite:///<path>``
    (a relative path is relative to the working directory; the folder is created) or
    ``postgresql+asyncpg://user@host:5432/dbname``."""

    graphiql: bool = True
    """Serve the GraphiQL explorer at ``/graphql`` (browsers get it on GET)."""

    host: str = "127.0.0.1"
    """Address ``recsys-gql serve`` binds to."""

    port: int = 8000
    """Port ``recsys-gql serve`` listens on."""

    workers: int = 1
    """uvicorn worker processes (each loads its own engine)."""

    @property
    def raw_data_dir(self) -> Path:
        """The MovieLens folder training reads by default."""
        return self.data_dir / "raw" / "ml-latest-small"
