"""Synthetic engine artifacts at any catalog size, written exactly as training writes them.

``bench/scale_serve.py`` needs catalogs of 62k and 1M movies. Encoding a million texts is not
what it measures, so the arrays are synthesised directly and saved with the pipeline's own
:func:`training.pipeline.save_catalog` and :func:`~training.pipeline.save_stack`; the engine
then loads, verifies and serves them like any trained run.

What is planted, so that approximate search and the arms behave as on real data:

* **embeddings** (384-d, unit): 20 genre directions, about one sub-cluster ("franchise") per
  ``movies_per_cluster`` movies around them, and each movie its sub-cluster centre plus a
  low-rank (48-d) variation, isotropic noise and a direction shared by all (sentence
  embeddings are anisotropic: random pairs have cosine ~0.2). Uniform noise on the sphere
  would make every neighbour equally far, tight clusters would make search trivial; the
  spreads were set so the mean cosine of the 1st/10th/50th/100th neighbour and of random
  pairs match the real ml-latest-small embeddings (0.59/0.47/0.42/0.39 and 0.20; synthetic
  at 9,742 movies ≈ 0.58/0.52/0.46/0.42 and 0.19). Real data stays somewhat harder for
  HNSW at equal size (recall@11 with M=16, efSearch=16: 0.88 real, ~0.95 synthetic).
* **popularity**: rating counts follow a power law over a random order of the movies, so
  most of a million movies have few or no ratings, as in any real long tail.
* **ratings**: users with a long-tailed number of ratings and one to three favourite genres
  rate movies of those genres, picked by popularity.
* **ALS item factors** (16): a genre component plus noise, shrunk toward zero for movies with
  few ratings (what ALS's regularisation does to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

DIM = 384
GENRES = 20
FACTORS = 16
LOCAL_RANK = 48


@dataclass(frozen=True)
class SynthSpec:
    """Shape and spread of a synthetic catalog (defaults: calibrated, see module docstring)."""

    movies: int
    users: int = 20_000
    seed: int = 42
    movies_per_cluster: int = 100
    centre_spread: float = 1.0
    local_spread: float = 1.2
    noise: float = 1.0
    common: float = 0.85


@dataclass(frozen=True)
class Catalog:
    """The synthetic arrays, in the engine's row order."""

    embeddings: npt.NDArray[np.float32]
    genres: npt.NDArray[np.uint8]
    years: npt.NDArray[np.int16]
    item_factors: npt.NDArray[np.float32]
    ratings: sp.csr_matrix


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def embeddings(spec: SynthSpec, genre_of: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Clustered unit embeddings, generated in chunks (a million rows is 1.5 GB)."""
    rng = np.random.default_rng(spec.seed)
    genre_dirs = _unit(rng.standard_normal((GENRES, DIM)).astype(np.float32))
    n_clusters = max(1, spec.movies // spec.movies_per_cluster)
    cluster_genre = rng.integers(0, GENRES, n_clusters)
    # Spreads are norms: a standard normal vector in DIM dimensions has norm ~sqrt(DIM).
    scale = np.float32(1 / np.sqrt(DIM))
    centres = _unit(
        genre_dirs[cluster_genre]
        + spec.centre_spread * scale * rng.standard_normal((n_clusters, DIM)).astype(np.float32)
    )
    basis = rng.standard_normal((LOCAL_RANK, DIM)).astype(np.float32) * scale / np.sqrt(LOCAL_RANK)
    # Each movie joins a cluster of its own genre (clusters of a genre drawn uniformly).
    by_genre = [np.flatnonzero(cluster_genre == g) for g in range(GENRES)]
    # Sentence embeddings share a common direction (random pairs have cosine ~0.2, not 0).
    shared = spec.common * _unit(rng.standard_normal((1, DIM)).astype(np.float32))
    out = np.empty((spec.movies, DIM), dtype=np.float32)
    for start in range(0, spec.movies, 100_000):
        stop = min(start + 100_000, spec.movies)
        genre = genre_of[start:stop]
        cluster = np.empty(stop - start, dtype=np.int64)
        for g in range(GENRES):
            at = np.flatnonzero(genre == g)
            pool = by_genre[g] if by_genre[g].size else np.arange(n_clusters)
            cluster[at] = pool[rng.integers(0, pool.size, at.size)]
        local = rng.standard_normal((stop - start, LOCAL_RANK)).astype(np.float32) @ basis
        noise = rng.standard_normal((stop - start, DIM)).astype(np.float32) * scale
        out[start:stop] = _unit(
            centres[cluster] + spec.local_spread * local + spec.noise * noise + shared
        )
    return out


def rating_counts(spec: SynthSpec, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Power-law popularity: the movie of rank r gets about ``C / r^0.9`` ratings."""
    ranks = rng.permutation(spec.movies) + 1
    return np.floor(5_000 / ranks.astype(np.float64) ** 0.9).astype(np.int64)


def catalog(spec: SynthSpec) -> Catalog:
    """Every synthetic array for ``spec``."""
    rng = np.random.default_rng(spec.seed + 1)
    genre_of = rng.integers(0, GENRES, spec.movies)
    genres = np.zeros((spec.movies, GENRES), dtype=np.uint8)
    genres[np.arange(spec.movies), genre_of] = 1
    second = rng.random(spec.movies) < 0.5
    genres[np.flatnonzero(second), rng.integers(0, GENRES, int(second.sum()))] = 1
    years = rng.integers(1920, 2025, spec.movies).astype(np.int16)
    weight = rating_counts(spec, rng).astype(np.float64) + 0.05

    # Users: lognormal activity (median ~30, long tail, capped), one to three genres.
    n_ratings = np.clip(rng.lognormal(3.4, 1.0, spec.users), 5, 2_000).astype(np.int64)
    n_ratings = np.minimum(n_ratings, spec.movies // 2)
    likes = [rng.choice(GENRES, rng.integers(1, 4), replace=False) for _ in range(spec.users)]
    members = [np.flatnonzero(genres[:, g]) for g in range(GENRES)]
    cdfs = [np.cumsum(weight[m]) / weight[m].sum() for m in members]
    rows, cols = [], []
    for user, (count, liked) in enumerate(zip(n_ratings, likes, strict=True)):
        picks = []
        for g, share in zip(
            liked, rng.multinomial(count, [1 / len(liked)] * len(liked)), strict=True
        ):
            at = np.searchsorted(cdfs[g], rng.random(share))
            picks.append(members[g][np.minimum(at, members[g].size - 1)])
        movies = np.unique(np.concatenate(picks))
        rows.append(np.full(movies.size, user))
        cols.append(movies)
    r, c = np.concatenate(rows), np.concatenate(cols)
    values = np.clip(np.round(rng.normal(3.6, 1.0, r.size) * 2) / 2, 0.5, 5.0).astype(np.float32)
    ratings = sp.csr_matrix((values, (r, c)), shape=(spec.users, spec.movies), dtype=np.float32)
    ratings.sort_indices()

    count = np.diff(ratings.tocsc().indptr)
    genre_factors = rng.standard_normal((GENRES, FACTORS)).astype(np.float32) * 0.3
    shrink = (np.log1p(count) / np.log1p(max(int(count.max()), 1))).astype(np.float32)
    factors = genre_factors[genre_of] + 0.1 * rng.standard_normal((spec.movies, FACTORS)).astype(
        np.float32
    )
    factors *= shrink[:, None]
    return Catalog(embeddings(spec, genre_of), genres, years, factors, ratings)


def write_run(
    spec: SynthSpec,
    out: Path,
    *,
    index: Any,
    index_spec: Any,
    graph: Any,
    cat: Catalog,
    stages: dict[str, float],
) -> Path:
    """Write ``cat`` with its index and graph as an artifact run in ``out`` (like training):
    the planted ALS factors, popularity from the planted ratings (one rating a day, in user
    order), no EASE^R (skipped: not fitted on synthetic data) and no ranking stage."""
    from recsys_gql.artifacts import ArmRecord, ArtifactWriter, DataFingerprint, RankerRecord
    from recsys_gql.recsys.arm import Catalog as ArmCatalog
    from recsys_gql.recsys.arm import TrainingSet
    from recsys_gql.recsys.arms import ARMS
    from recsys_gql.recsys.arms.als import AlsArm
    from recsys_gql.recsys.arms.content import ContentArm
    from recsys_gql.recsys.arms.popularity import PopularityArm
    from recsys_gql.recsys.vocab import IdVocab
    from training.config import TrainConfig
    from training.pipeline import library_versions, save_catalog, save_stack
    from training.stack import Stack

    config = TrainConfig()
    writer = ArtifactWriter(out)
    items = IdVocab(np.arange(1, spec.movies + 1, dtype=np.int64))
    times = cat.ratings.copy().astype(np.float64)
    times.data = 1_500_000_000.0 + 86_400.0 * np.arange(times.nnz, dtype=np.float64)
    data = TrainingSet(cat.ratings, times, ArmCatalog(items, cat.genres, cat.years, graph))
    genre_names = [f"Genre{g:02d}" for g in range(GENRES)]
    save_catalog(
        writer, items=items, users=IdVocab(np.arange(1, spec.users + 1, dtype=np.int64)),
        embeddings=cat.embeddings, index=index, graph=graph, data=data,
        genre_names=genre_names,
    )  # fmt: skip
    arms = [
        AlsArm(config.arm(AlsArm), cat.item_factors),
        ContentArm.fit(data, config.arm(ContentArm)),
        PopularityArm.fit(data, config.arm(PopularityArm)),
    ]
    skipped = {
        kind.name: ArmRecord(
            status="skipped",
            reason="not fitted on synthetic data",
            config=config.arm(kind).model_dump(mode="json"),
        )
        for kind in ARMS
        if kind.name not in {arm.name for arm in arms}
    }
    stack = Stack(arms, skipped, None, RankerRecord(status="skipped", reason="synthetic run"))
    arm_records, ranker = save_stack(writer, stack)
    writer.finalize(
        run_id=f"synthetic-{spec.movies}-seed{spec.seed}",
        libraries=library_versions(),
        config=config.model_dump(mode="json"),
        data=DataFingerprint(sha256="synthetic", files={}),
        counts={
            "movies": spec.movies,
            "users": spec.users,
            "ratings": int(cat.ratings.nnz),
            "embedding_dim": DIM,
            "factors": FACTORS,
            "genres": GENRES,
        },
        models={"embedding": "synthetic", "index": type(index).__name__},
        content_index=index_spec,
        arms=arm_records,
        ranker=ranker,
        stages=stages,
    )
    return out
