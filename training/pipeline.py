"""The training pipeline: data -> texts -> embeddings -> index -> arms and ranker -> artifacts.

Each run writes ``<out>/<run-id>/`` and flips ``<out>/current`` only after the manifest is
written, so a failed or interrupted run never replaces a good one.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys_gql.artifacts import (
    CURRENT_LINK,
    ArmRecord,
    ArtifactWriter,
    Manifest,
    RankerRecord,
    publish,
)
from recsys_gql.errors import ArtifactError
from recsys_gql.index_spec import IndexSpec
from recsys_gql.movielens import MovieLensData, fingerprint, load_movielens
from recsys_gql.recsys import ann
from recsys_gql.recsys.arm import Catalog, TrainingSet
from recsys_gql.recsys.arms import ARMS
from recsys_gql.recsys.content import ContentGraph, SentenceEncoder, TextEncoder, write_index
from recsys_gql.recsys.ranker import MODEL_FILE
from recsys_gql.recsys.runs import verify_run
from recsys_gql.recsys.vocab import IdVocab
from training.config import TrainConfig
from training.embed import embed_texts
from training.fit import training_set
from training.stack import Stack, fit_stack
from training.stages import StageResult, StageTimer
from training.text import movie_texts

LIBRARIES = (
    "numpy", "scipy", "pandas", "implicit", "lightgbm", "faiss-cpu", "sentence-transformers",
    "torch", "onnxruntime", "scikit-learn", "recsys-gql",
)  # fmt: skip

EncoderFactory = Callable[[TrainConfig], TextEncoder]


def default_encoder(config: TrainConfig) -> TextEncoder:
    """The configured sentence model, loaded offline from the packaged weights."""
    return SentenceEncoder(
        config.embedding.model_path,
        model_name=config.embedding.model_name,
        max_seq_length=config.embedding.max_seq_length,
        batch_size=config.embedding.batch_size,
        backend=config.embedding.backend,
    )


@dataclass(frozen=True)
class TrainResult:
    """Where the run went and how long each stage took."""

    run_dir: Path
    manifest: Manifest
    stages: list[StageResult]
    embeddings_encoded: int
    embeddings_cached: int


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the artifacts."""
    versions = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def genre_matrix(movies: pd.DataFrame) -> tuple[list[str], npt.NDArray[np.uint8]]:
    """Sorted genre names and a movies x genres 0/1 matrix (rows in ``movies`` order)."""
    split = movies["genres"].str.split("|")
    names = sorted({g for gs in split for g in gs if g})
    column = {g: j for j, g in enumerate(names)}
    matrix = np.zeros((len(movies), len(names)), dtype=np.uint8)
    for row, gs in enumerate(split):
        for g in gs:
            if g:
                matrix[row, column[g]] = 1
    return names, matrix


def content_graph(
    index: Any, spec: IndexSpec, embeddings: npt.NDArray[np.float32], k: int, probe: int = 4
) -> ContentGraph:
    """Each movie's ``k`` nearest: one batched search of the index for every movie when it is
    flat (exact) or HNSW (recall ~0.9+); for an IVF index (a catalog too large to search once
    per movie in bounded time) its lists are compared by BLAS, ``probe`` lists per list
    (:func:`recsys_gql.recsys.ann.knn_graph`): bounded, but with low recall on diffuse data
    (BENCHMARKS.md, "Serving at scale")."""
    if spec.kind != "ivf":
        return ContentGraph.build(index, embeddings, k)
    return ContentGraph.build_approximate(embeddings, k, probe=probe, ivf=index)


def save_catalog(
    writer: ArtifactWriter,
    *,
    items: IdVocab,
    users: IdVocab,
    embeddings: npt.NDArray[np.float32],
    index: Any,
    graph: ContentGraph,
    data: TrainingSet,
    genre_names: list[str],
) -> None:
    """Write the files every arm and operation share: ids, embeddings, the index and its
    neighbour graph, the training ratings with their times, genres and years (also used by
    ``bench/scale_data.py``, so its synthetic catalogs are served exactly like a trained run)."""
    writer.save_array("movie_ids.npy", items.ids)
    writer.save_array("user_ids.npy", users.ids)
    writer.save_array("embeddings.npy", embeddings)
    write_index(index, writer.directory / "content.faiss")
    writer.add_file("content.faiss", (int(index.ntotal), int(index.d)))
    writer.save_array("content_neighbors.npy", graph.neighbors)
    writer.save_array("content_similarities.npy", graph.similarities)
    writer.save_sparse("user_ratings.npz", data.ratings)
    writer.save_array("user_rating_times.npy", data.times.data.astype(np.float64))
    writer.save_array("movie_genres.npy", data.catalog.genres)
    writer.save_json("genres.json", genre_names)
    writer.save_array("movie_years.npy", data.catalog.years)


def save_stack(writer: ArtifactWriter, stack: Stack) -> tuple[dict[str, ArmRecord], RankerRecord]:
    """Write every fitted arm's files and the ranker's model; their manifest sections."""
    records = dict(stack.records)
    for arm in stack.arms:
        details = arm.save(writer)
        if arm.name in stack.tuning:
            details = {**details, "tuning": stack.tuning[arm.name]}
        records[arm.name] = ArmRecord(
            status="fitted", config=arm.config.model_dump(mode="json"),
            files=list(arm.files()), details=details,
        )  # fmt: skip
    if stack.ranker is not None:
        writer.save_text(MODEL_FILE, stack.ranker.model)
    order = [arm.name for arm in ARMS]
    return {name: records[name] for name in order}, stack.ranker_record


def prune_runs(out_root: Path, *, keep: int, current: Path) -> None:
    """Delete all but the newest ``keep`` completed runs (never ``current``)."""
    runs = sorted(
        (p for p in out_root.iterdir() if p.is_dir() and not p.is_symlink()),
        key=lambda p: p.name,
        reverse=True,
    )
    for old in runs[keep:]:
        if old.resolve() != current.resolve():
            shutil.rmtree(old, ignore_errors=True)


def is_fresh(out_root: Path, data_dir: Path, config: TrainConfig) -> tuple[bool, str]:
    """Whether ``out_root/current`` verifies and was trained on this data with this config."""
    current = out_root / CURRENT_LINK
    if not current.exists():
        return False, f"{current} does not exist"
    try:
        manifest = verify_run(current.resolve())
    except ArtifactError as exc:
        return False, f"current artifacts are invalid: {exc.message}"
    if manifest.data.sha256 != fingerprint(data_dir).sha256:
        return False, f"the data in {data_dir} changed since run {manifest.run_id}"
    if manifest.config != config.model_dump(mode="json"):
        return False, f"the training config changed since run {manifest.run_id}"
    return True, f"run {manifest.run_id} is up to date"


def train(
    data_dir: Path,
    out_root: Path,
    config: TrainConfig,
    *,
    cache_dir: Path | None,
    encoder_factory: EncoderFactory = default_encoder,
    report: Callable[[str], None] = print,
    show_progress: bool = True,
    keep_runs: int = 3,
) -> TrainResult:
    """Run the whole pipeline and publish the run as ``out_root/current``."""
    timer = StageTimer(report=report)
    np.random.seed(config.seed)
    with timer.stage("load") as info:
        data: MovieLensData = load_movielens(data_dir)
        data_print = fingerprint(data_dir)
        info["detail"] = (
            f"{len(data.movies):,} movies, {len(data.ratings):,} ratings, "
            f"{data.ratings['userId'].nunique():,} users"
        )
    items = IdVocab(np.sort(data.movies["movieId"].to_numpy(dtype=np.int64)))
    users = IdVocab.from_values(data.ratings["userId"].to_numpy())
    movies = data.movies.set_index("movieId").loc[items.ids].reset_index()

    with timer.stage("text") as info:
        texts = movie_texts(data, config.text.top_tags)
        overviews = data.overviews
        with_overview = 0 if overviews is None else int((overviews["overview"] != "").sum())
        info["detail"] = f"{with_overview:,} overviews"
    encoder = encoder_factory(config)
    with timer.stage("embed") as info:
        embeddings, stats = embed_texts(
            texts.tolist(), encoder, cache_dir, show_progress=show_progress
        )
        info["detail"] = f"{stats.encoded:,} encoded, {stats.cached:,} from cache"
    with timer.stage("index") as info:
        index_spec = config.index.spec(len(items))
        index = ann.build(embeddings, index_spec, seed=config.seed)
        graph = content_graph(
            index, index_spec, embeddings, config.index.content_neighbors, config.index.graph_probe
        )
        info["detail"] = (
            f"{type(index).__name__} ({index_spec.reason}), {index.ntotal:,} vectors, "
            f"{graph.k} neighbours each"
        )
    genre_names, genres = genre_matrix(movies)
    years = movies["year"].fillna(0).to_numpy(dtype=np.int16)
    catalog = Catalog(items, genres, years, graph)
    with timer.stage("matrix") as info:
        training = training_set(data.ratings, users, catalog)
        matrix = training.ratings
        info["detail"] = f"{matrix.shape[0]:,} x {matrix.shape[1]:,}, {matrix.nnz:,} nonzeros"
    del data  # the ratings frame (1.4 GB at 25M ratings) is not needed past the matrix
    stack = fit_stack(training, config, stage=timer.stage)

    created = datetime.now(UTC)
    run_id = f"{created:%Y%m%d-%H%M%S}-{data_print.sha256[:8]}"
    run_dir = out_root / run_id
    if run_dir.exists():
        shutil.rmtree(run_dir)
    with timer.stage("export") as info:
        writer = ArtifactWriter(run_dir)
        try:
            save_catalog(
                writer, items=items, users=users, embeddings=embeddings, index=index,
                graph=graph, data=training, genre_names=genre_names,
            )  # fmt: skip
            arms, ranker = save_stack(writer, stack)
            manifest = writer.finalize(
                content_index=index_spec,
                arms=arms,
                ranker=ranker,
                run_id=run_id,
                libraries=library_versions(),
                config=config.model_dump(mode="json"),
                data=data_print,
                counts={
                    "movies": len(items),
                    "users": len(users),
                    "ratings": int(matrix.nnz),
                    "embedding_dim": int(embeddings.shape[1]),
                    "genres": len(genre_names),
                },
                models={
                    "embedding": config.embedding.model_name,
                    "embedding_key": encoder.model_key,
                    "embedding_backend": str(getattr(encoder, "backend", "torch")),
                    "embedding_max_seq_length": str(
                        getattr(encoder, "max_seq_length", config.embedding.max_seq_length)
                    ),
                    "index": type(index).__name__,
                    "collaborative": "implicit.cpu.als.AlternatingLeastSquares",
                    "ranker": "lightgbm LambdaRank" if stack.ranker else "none",
                },
                stages=timer.as_dict(),
            )
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        publish(run_dir, out_root)
        prune_runs(out_root, keep=keep_runs, current=run_dir)
        info["detail"] = f"{run_dir}"
    return TrainResult(
        run_dir=run_dir,
        manifest=manifest,
        stages=timer.results,
        embeddings_encoded=stats.encoded,
        embeddings_cached=stats.cached,
    )
