"""Start-up and readiness checks shared by ``serve``, the lifespan and ``/readyz``.

Each failure says what is wrong and which command fixes it.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from recsys_gql.db.migrate import SchemaState, schema_state
from recsys_gql.db.models import DatasetInfo
from recsys_gql.db.session import Database
from recsys_gql.errors import ArtifactError
from recsys_gql.recsys.content import TextEncoder
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings


class StartupError(RuntimeError):
    """The service cannot serve; the message says why and what to run."""


def load_current(settings: Settings, encoder: TextEncoder | None = None) -> Engine:
    """Verify and load ``<artifacts_dir>/current`` as the settings say: queries encoded by
    ``search_encoder`` on ``search_encoder_threads`` threads (or by ``encoder``, already
    loaded), the ranking stage's trees on ``ranker_backend``. Raises ``ArtifactError``."""
    backend = None if settings.search_encoder == "run" else settings.search_encoder
    return Engine.load(
        settings.artifacts_dir / "current",
        encoder=encoder,
        encoder_threads=settings.search_encoder_threads,
        encoder_backend=backend,
        ranker_backend=settings.ranker_backend,
    )


def open_engine(settings: Settings) -> Engine:
    """:func:`load_current` at start-up, a damaged or missing run told as a
    :class:`StartupError` with what to run."""
    try:
        return load_current(settings)
    except ArtifactError as exc:
        raise StartupError(
            f"artifacts not usable: {exc.message}. Run `recsys-gql train` (or `make serve`)."
        ) from exc


def schema_problem(state: SchemaState, url: str) -> str | None:
    """Why a database's schema cannot be served by this code, with what to run; ``None`` when
    it is at the code's revision."""
    if state.current:
        return None
    if state.revision is None:
        if not state.tables:
            return f"database {url} is empty: run `recsys-gql db init`"
        return (
            f"database {url} was created before schema migrations: run `recsys-gql db upgrade` "
            "(it recognises the tables and keeps every row)"
        )
    if not state.known:
        return (
            f"database {url} is at schema revision {state.revision}, which this version does "
            f"not know (a newer release migrated it; this one needs {state.head}): serve that "
            f"release, or run its `recsys-gql db downgrade {state.head}`"
        )
    return (
        f"database {url} is at schema revision {state.revision} but this version needs "
        f"{state.head}: run `recsys-gql db upgrade`"
    )


async def check_database(database: Database, engine: Engine) -> None:
    """The database answers, its schema is at the code's revision, it is initialised, and it
    holds the catalog the model was trained on."""
    url = database.engine.url.render_as_string(hide_password=True)
    try:
        problem = schema_problem(await schema_state(database.engine), url)
        if problem is not None:
            raise StartupError(problem)
        async with database.sessions() as session:
            info = (await session.exec(select(DatasetInfo))).first()
    except SQLAlchemyError as exc:
        raise StartupError(
            f"database {url} is not ready ({exc.__class__.__name__}): run `recsys-gql db init`"
        ) from exc
    if info is None:
        raise StartupError(f"database {url} is empty: run `recsys-gql db init`")
    trained_on = engine.manifest.data.sha256
    if info.sha256 != trained_on:
        raise StartupError(
            f"database {url} holds dataset {info.sha256[:12]} but the model was trained on "
            f"{trained_on[:12]}: run `recsys-gql db init --force` or retrain"
        )
