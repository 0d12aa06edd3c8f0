"""What one artifact run needs while it is served: the engine, the catalog the database holds
for it (plain :class:`~recsys_gql.db.models.MovieRecord` records), and the per-run caches (the
recommendation memo of engine results and the search batcher).

They live and die together. A request takes one :class:`ServedRun` when its context is built
and uses it to the end, so a reload (:mod:`recsys_gql.reload`) never mixes two runs inside a
request; the caches belong to the run, so a memo entry computed by one model can never answer
for the next. It lives in :mod:`recsys_gql.api` beside the context it fills
(:func:`~recsys_gql.api.view.request_context`) and holds no GraphQL type.

**How the catalog follows a run.** The database is the catalog's source of truth (ratings
reference its movies). A run is served only when the database holds exactly the dataset it was
trained on (the same check as at start-up: :func:`~recsys_gql.readiness.check_database`) and
every movie the run can recommend: :func:`open_run` refuses one with movies the database does
not hold, naming a few, so a run trained on newer data is refused until ``recsys-gql db init``
has loaded that data. The catalog is then read afresh from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys_gql.api.search_batcher import SearchBatcher
from recsys_gql.db.models import MovieRecord
from recsys_gql.db.repository import all_movies
from recsys_gql.db.session import Database
from recsys_gql.metrics.hooks import memo_lookup, search_cache_lookup
from recsys_gql.readiness import StartupError, check_database
from recsys_gql.recsys.engine import Engine, Recommendation, ScoredMovie, check_query
from recsys_gql.recsys.memo import RecommendationMemo
from recsys_gql.settings import Settings

__all__ = ["ServedRun", "open_run"]


@dataclass(frozen=True)
class ServedRun:
    """One run's engine, catalog and caches (see the module docstring)."""

    engine: Engine
    catalog: dict[int, MovieRecord]
    memo: RecommendationMemo[Recommendation]
    search_batcher: SearchBatcher[ScoredMovie]

    @property
    def run_id(self) -> str:
        """The served run's id (its manifest's)."""
        return self.engine.manifest.run_id

    async def close(self) -> None:
        """Stop the search batcher (once no request can use this run any more)."""
        await self.search_batcher.close()


async def open_run(engine: Engine, database: Database, settings: Settings) -> ServedRun:
    """The run of ``engine`` ready to serve: checked against the database (see the module
    docstring), with its catalog read and fresh caches; raises :class:`StartupError`."""
    await check_database(database, engine)
    async with database.sessions() as session:
        catalog = await all_movies(session)
    missing = [int(m) for m in engine.movies.ids if int(m) not in catalog]
    if missing:
        raise StartupError(
            f"run {engine.manifest.run_id} recommends {len(missing)} movies the database does "
            f"not hold (e.g. {', '.join(map(str, missing[:5]))}): load its data with "
            "`recsys-gql db init` first"
        )
    return ServedRun(
        engine=engine,
        catalog=catalog,
        memo=RecommendationMemo(settings.recommendation_memo_size, on_lookup=memo_lookup),
        search_batcher=SearchBatcher(
            engine.search_many,
            check_query,
            window_s=settings.search_batch_window_ms / 1000,
            max_batch=settings.search_batch_max,
            cache_size=settings.search_cache_size,
            on_cache_lookup=search_cache_lookup,
        ),
    )
