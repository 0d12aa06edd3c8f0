"""Wires TMDB enrichment into the data step (used when ``TMDB_API_KEY`` is set)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recsys_gql.movielens import load_movielens
from training.tmdb import enrich_overviews


def tmdb_enricher(api_key: str, cache_dir: Path) -> Callable[[Path], None]:
    """An enricher that writes ``overviews.csv`` into a staged MovieLens folder from TMDB."""

    def enrich(folder: Path) -> None:
        links = load_movielens(folder).links
        if links is None:
            return
        stats = enrich_overviews(
            links, folder / "overviews.csv", cache_dir / "tmdb" / "overviews.jsonl", api_key
        )
        print(
            f"TMDB overviews: {stats.fetched:,} fetched, {stats.from_cache:,} from cache, "
            f"{stats.missing:,} unknown, {stats.failed:,} failed (rerun to retry)"
        )

    return enrich
