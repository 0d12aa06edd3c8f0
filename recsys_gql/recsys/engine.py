"""The engine: one immutable object, loaded from a verified artifact directory, that answers
``recommend``, ``similar``, ``search`` and ``popular``.

It is pure and synchronous (no GraphQL, no database); callers pass a user's *current* ratings,
so the engine never holds per-user state and every replica gives the same answer. A
recommendation is: the user's ratings as a :class:`~recsys_gql.recsys.arm.History`, every arm's
scores (:mod:`recsys_gql.recsys.arms`), then either the ranking stage over the arms'
candidates (:mod:`recsys_gql.recsys.ranker`; the default) or, when the request names ``α``,
the linear blend of ALS and content (:mod:`recsys_gql.recsys.blend`), then filters and
explanations (:mod:`recsys_gql.recsys.explain`).

Threads: a request is a handful of small matrix-vector products. Multi-threaded BLAS gains a
fraction of a millisecond on them on an idle machine, but once requests run concurrently or
the cores are busy its threads oversubscribe the cores and stall each other for tens of
milliseconds. Constructing an engine therefore limits BLAS to one thread for the whole
process, once, with threadpoolctl (as training does around ALS). FAISS's bundled OpenBLAS runs
on OpenMP, so FAISS's OpenMP pool follows; a one-query FAISS search is single-threaded anyway.
Setting ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``OMP_NUM_THREADS`` keeps the
environment's choice instead. One thread also makes the floats independent of the core count.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from recsys_gql.artifacts import ArtifactDir, Manifest
from recsys_gql.errors import ArtifactError, InvalidParameter, UnknownMovie
from recsys_gql.recsys import ann
from recsys_gql.recsys.arm import AnyArm, Catalog, History
from recsys_gql.recsys.arms import ARMS, REQUIRED, arm_type
from recsys_gql.recsys.arms.als import AlsArm
from recsys_gql.recsys.arms.content import ContentArm
from recsys_gql.recsys.arms.ease import EaseArm
from recsys_gql.recsys.arms.popularity import PopularityArm
from recsys_gql.recsys.blend import (
    DENSE_BELOW,
    PriorContent,
    candidate_top_n,
    first_allowed,
    popularity_prior,
    ramped_alpha,
    ramped_prior_weight,
    scale,
)
from recsys_gql.recsys.content import ContentGraph, SentenceEncoder, TextEncoder, read_index
from recsys_gql.recsys.diversity import check_diversity, mmr, pool_size
from recsys_gql.recsys.explain import ArmPart, Contribution, explain
from recsys_gql.recsys.features import Scored, feature_names, score_arms
from recsys_gql.recsys.filters import GenreMatch, exclude_movies, genre_columns, genre_mask
from recsys_gql.recsys.history import RatingsStore
from recsys_gql.recsys.onnx_encoder import BACKENDS, EncoderBackend
from recsys_gql.recsys.ranker import MODEL_FILE, Ranker, rank
from recsys_gql.recsys.runs import open_run
from recsys_gql.recsys.trees import TreeBackend
from recsys_gql.recsys.vocab import IdVocab

MAX_N = 100
RECOMMEND_SECONDS_PER_MOVIE = 25e-9
RECOMMEND_SECONDS_PER_NEIGHBOUR = 15e-9
"""Rates behind :meth:`Engine.recommend_cost` for the linear blend (per catalog movie, per
rated movie's neighbour); see BENCHMARKS.md for how they were measured."""
RANKED_SECONDS_FIXED = 1.0e-3
RANKED_SECONDS_PER_MOVIE = 100e-9
RANKED_SECONDS_PER_EASE_CELL = 1.0e-9
"""Rates of the ranking stage: features and the model (fixed), the arms' passes over the
catalog (per movie), EASE^R's rows of the rated movies (per cell); BENCHMARKS.md."""
MAX_QUERY_CHARS = 1000
StageTimer = Callable[[str, str, float], None]
"""Told ``(stage, arm, seconds)`` after each stage of a recommendation (``arm`` is ``-`` for
stages that are not one arm's): ``arm`` (one arm's scores), ``rank``, ``blend``, ``explain``.
The server's metrics set one (:attr:`Engine.stage_timer`); the engine knows nothing of them."""
BLAS_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

_blas_lock = threading.Lock()
_blas_limited = False


def limit_blas_threads() -> None:
    """Run BLAS single-threaded in this process (once; see the module docstring), unless the
    environment already chose a BLAS thread count."""
    global _blas_limited
    with _blas_lock:
        if _blas_limited:
            return
        _blas_limited = True
        if not any(os.environ.get(name) for name in BLAS_THREAD_ENV):
            threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True)
class HybridSettings:
    """The linear blend's defaults (from the manifest: the config, tuned by ``evaluate``)."""

    alpha: float = 0.9
    ramp: float = 5.0
    popularity_weight: float = 1.6

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> HybridSettings:
        """Read ``manifest.config['hybrid']``, overridden by what evaluation chose."""
        raw: dict[str, Any] = dict(manifest.config.get("hybrid", {}))
        raw.update(manifest.metrics.get("chosen", {}))
        return cls(**{k: float(raw[k]) for k in ("alpha", "ramp", "popularity_weight") if k in raw})


@dataclass(frozen=True)
class Recommendation:
    """One recommended movie, its scores (each 0-1 over the request's candidates) and why."""

    movie_id: int
    score: float
    collab_score: float
    content_score: float
    because: list[Contribution] = field(default_factory=list)
    source: str = "ranker"
    """``ranker`` (the default), ``hybrid`` (the linear blend) or ``popularity`` (cold start)."""
    arm_scores: dict[str, float] = field(default_factory=dict)
    """Each arm's score, scaled to 0-1 over the candidates."""
    leaning: dict[str, float] = field(default_factory=dict)
    """How much of the result each arm drove: the blend's weights, or the arms' shares of the
    ranker's score (:meth:`Ranker.arm_leaning`; ``context`` for user and movie features and
    the genre guard); only filled when explanations are asked for."""


@dataclass(frozen=True)
class ScoredMovie:
    """A movie and a similarity or popularity score."""

    movie_id: int
    score: float


@dataclass(frozen=True)
class ArmStatus:
    """Whether the run serves an arm, and why not."""

    name: str
    serving: bool
    reason: str | None = None


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise InvalidParameter("n", f"must be an integer from 1 to {MAX_N}")
    if not 1 <= int(n) <= MAX_N:
        raise InvalidParameter("n", f"must be from 1 to {MAX_N}, got {n}")
    return int(n)


def check_query(text: object) -> str:
    """A search query as it is encoded (without surrounding blanks); raises
    :class:`InvalidParameter` when it is empty, not a string or over :data:`MAX_QUERY_CHARS`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter("text", "must not be empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidParameter(
            "text", f"must be at most {MAX_QUERY_CHARS} characters, got {len(text)}"
        )
    return text.strip()


class Engine:
    """Recommender over one artifact run. Thread-safe for concurrent reads."""

    def __init__(
        self,
        artifacts: ArtifactDir,
        *,
        encoder: TextEncoder | None = None,
        settings: HybridSettings | None = None,
        encoder_threads: int | None = None,
        encoder_backend: EncoderBackend | None = None,
        ranker_backend: TreeBackend = "compiled",
    ) -> None:
        manifest = artifacts.manifest
        self.manifest = manifest
        self.directory = artifacts.directory
        self.settings = settings or HybridSettings.from_manifest(manifest)
        self.movies = IdVocab(artifacts.array("movie_ids.npy"))
        self.users = IdVocab(artifacts.array("user_ids.npy"))
        self.embeddings: npt.NDArray[np.float32] = artifacts.array("embeddings.npy")
        self.graph = ContentGraph(
            artifacts.array("content_neighbors.npy"), artifacts.array("content_similarities.npy")
        )
        self.index = read_index(artifacts.path("content.faiss"))
        self.index_spec = manifest.content_index
        try:
            ann.configure(self.index, self.index_spec)
        except ValueError as exc:
            raise ArtifactError(
                f"{artifacts.path('content.faiss')}: {exc}", path=str(self.directory)
            ) from exc
        self.ratings = RatingsStore(
            self.users,
            self.movies,
            artifacts.sparse("user_ratings.npz"),
            artifacts.array("user_rating_times.npy"),
        )
        self.train_ratings = self.ratings.matrix
        self.catalog_now = self.ratings.now
        self.genre_names: list[str] = list(artifacts.json("genres.json"))
        self._genre_lookup = {g.casefold(): j for j, g in enumerate(self.genre_names)}
        self.movie_genres: npt.NDArray[np.uint8] = artifacts.array("movie_genres.npy")
        self.movie_years: npt.NDArray[np.int16] = artifacts.array("movie_years.npy")
        catalog = Catalog(self.movies, self.movie_genres, self.movie_years, self.graph)
        self.arms, self.arm_status = _load_arms(artifacts, catalog)
        self.als = _arm(self.arms, AlsArm)
        self.content = _arm(self.arms, ContentArm)
        self.popularity = _arm(self.arms, PopularityArm)
        self.prior = popularity_prior(self.popularity.count)
        self.ranker = self._load_ranker(artifacts, ranker_backend)
        self.cold_scores = self.popularity.cold_start()
        self._cold_order = np.argsort(-self.cold_scores, kind="stable")
        self._encoder_threads = encoder_threads
        """Intra-op threads of the query encoder loaded on first use (``None``: default)."""
        self._encoder_backend = encoder_backend
        """How queries are encoded (``None``: as the movies were; else another runtime of the
        same weights, chosen for speed once measured to retrieve as well: BENCHMARKS.md)."""
        self._encoder = None if encoder is None else self._check_encoder(encoder)
        self._encoder_lock = threading.Lock()
        self.dense_blend_below = DENSE_BELOW
        """Catalogs with fewer candidates than this blend every movie (faster when small)."""
        self.stage_timer: StageTimer | None = None
        """Told how long each stage of a recommendation took (``None``: nothing is timed)."""
        limit_blas_threads()

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        encoder: TextEncoder | None = None,
        encoder_threads: int | None = None,
        encoder_backend: EncoderBackend | None = None,
        ranker_backend: TreeBackend = "compiled",
    ) -> Engine:
        """Verify and load the artifact directory at ``path`` (e.g. ``artifacts/current``);
        the ranking stage's trees run on ``ranker_backend`` (:mod:`~recsys_gql.recsys.trees`)."""
        return cls(
            open_run(path),
            encoder=encoder,
            encoder_threads=encoder_threads,
            encoder_backend=encoder_backend,
            ranker_backend=ranker_backend,
        )

    def _load_ranker(self, artifacts: ArtifactDir, backend: TreeBackend) -> Ranker | None:
        record = self.manifest.ranker
        if record.status != "trained":
            return None
        expected = feature_names(self.arms)
        if record.features != expected:
            raise ArtifactError(
                f"{self.directory}: the ranker was trained on features {record.features}, the "
                f"arms of this run give {expected}: retrain with `recsys-gql train`"
            )
        return Ranker.from_record(artifacts.text(record.file or MODEL_FILE), record, backend)

    @property
    def ranking_stage(self) -> str | None:
        """Why the run has no ranking stage (``None`` when it has one)."""
        if self.ranker is not None:
            return None
        return self.manifest.ranker.reason or "not trained"

    # -- inputs -----------------------------------------------------------------------------

    def training_ratings(self, user_id: int) -> dict[int, float]:
        """The ratings the model was trained on for ``user_id`` (empty for unknown users)."""
        return self.ratings.training_ratings(user_id)

    def history(self, user_id: int, ratings: Mapping[int, float] | None = None) -> History:
        """``ratings`` (by default the training ratings) as the arms see them (see
        :class:`~recsys_gql.recsys.history.RatingsStore`)."""
        return self.ratings.history(user_id, ratings)

    def candidate_mask(
        self,
        genres: Sequence[str] | None = None,
        year_range: tuple[int | None, int | None] | None = None,
        genre_match: GenreMatch = GenreMatch.ANY,
    ) -> npt.NDArray[np.bool_]:
        """Movies passing the genre (any of them, or with ``GenreMatch.ALL`` all of them)
        and year filters; raises on bad filters."""
        mask = np.ones(len(self.movies), dtype=bool)
        if genres:
            columns = genre_columns(genres, self._genre_lookup, self.genre_names)
            mask &= genre_mask(self.movie_genres, columns, genre_match)
        if year_range is not None:
            low, high = year_range
            for name, bound in (("year_from", low), ("year_to", high)):
                if bound is not None and (isinstance(bound, bool) or not 1800 <= bound <= 2200):
                    raise InvalidParameter(name, f"must be a year from 1800 to 2200, got {bound}")
            if low is not None and high is not None and low > high:
                raise InvalidParameter("year_from", f"{low} is after the last year {high}")
            known = self.movie_years > 0
            if low is not None:
                mask &= known & (self.movie_years >= low)
            if high is not None:
                mask &= known & (self.movie_years <= high)
        return mask

    # -- recommendations ----------------------------------------------------------------------

    def recommend_cost(self, n_ratings: int, *, explain_results: bool = True) -> float:
        """Roughly how many seconds a default :meth:`recommend` takes for a user with
        ``n_ratings``: passes over the catalog, one neighbour list (and with the ranking
        stage one row of EASE^R's weights) per rated movie, the ranker; explaining adds half
        (the blend: doubles). An estimate for scheduling (worth a thread or not), not a
        bound."""
        neighbours = n_ratings * self.graph.k * RECOMMEND_SECONDS_PER_NEIGHBOUR
        if self.ranker is None:
            seconds = len(self.movies) * RECOMMEND_SECONDS_PER_MOVIE + neighbours
            return 2 * seconds if explain_results else seconds
        ease = sum(arm.columns.size for arm in self.arms if isinstance(arm, EaseArm))
        seconds = (
            RANKED_SECONDS_FIXED
            + len(self.movies) * RANKED_SECONDS_PER_MOVIE
            + 2 * neighbours
            + n_ratings * ease * RANKED_SECONDS_PER_EASE_CELL
        )
        return 1.5 * seconds if explain_results else seconds

    def recommend(
        self,
        user_id: int,
        n: int = 10,
        alpha: float | None = None,
        ratings: Mapping[int, float] | None = None,
        genres: Sequence[str] | None = None,
        year_range: tuple[int | None, int | None] | None = None,
        exclude_rated: bool = True,
        explain_results: bool = True,
        *,
        genre_match: GenreMatch = GenreMatch.ANY,
        exclude: Collection[int] | None = None,
        diversity: float = 0.0,
    ) -> list[Recommendation]:
        """Top-``n`` movies for a user whose current ratings are ``ratings`` (by default the
        training ratings). Without ``alpha`` the ranking stage orders the arms' candidates
        (the ramped blend when the run has none); with it, ``α·collab + (1−α)·content``.
        With ``explain_results=False`` every ``because`` is empty: explaining costs about as
        much as ranking, and most callers never show it.

        ``exclude`` names movies never to return (already shown, hidden). ``diversity`` > 0
        scores a larger pool and re-ranks it by maximal marginal relevance over the content
        embeddings (:mod:`recsys_gql.recsys.diversity`)."""
        n = _check_n(n)
        try:
            diversity = check_diversity(diversity)
        except ValueError as exc:
            raise InvalidParameter("diversity", str(exc).removeprefix("diversity ")) from None
        pool = pool_size(n, diversity)
        if alpha is not None and (
            isinstance(alpha, bool) or not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0
        ):
            raise InvalidParameter("alpha", f"must be a finite number from 0 to 1, got {alpha}")
        user = self.history(user_id, ratings)
        mask = self.candidate_mask(genres, year_range, genre_match)
        exclude_movies(mask, self.movies, exclude)
        if exclude_rated and user.size:
            mask[user.rows] = False
        if user.size == 0:
            return self._diversified(self._popular_recommendations(mask, pool), n, diversity)
        if alpha is None and self.ranker is not None:
            return self._ranked(self.ranker, user, mask, n, explain_results, diversity)
        a = (
            alpha
            if alpha is not None
            else ramped_alpha(self.settings.alpha, user.size, self.settings.ramp)
        )
        return self._blended(user, mask, a, n, explain_results, diversity)

    def _picks(
        self, rows: npt.NDArray[np.integer], score: npt.NDArray[np.floating], n: int, d: float
    ) -> npt.NDArray[np.intp]:
        """Positions of the ``n`` of a ranked pool (catalog ``rows``, best first) that maximal
        marginal relevance picks at diversity ``d`` over the content embeddings."""
        return mmr(score, self.embeddings[rows], n, d)

    def _diversified(
        self, pool: list[Recommendation], n: int, diversity: float
    ) -> list[Recommendation]:
        """The ``n`` of ``pool`` (best first) that MMR picks at ``diversity`` (the first ``n``
        at 0)."""
        if diversity <= 0.0 or len(pool) <= 1:
            return pool[:n]
        rows = self.movies.indices([rec.movie_id for rec in pool])
        picks = self._picks(rows, np.array([rec.score for rec in pool]), n, diversity)
        return [pool[int(k)] for k in picks]

    def _ranked(
        self,
        ranker: Ranker,
        user: History,
        mask: npt.NDArray[np.bool_],
        n: int,
        explained: bool,
        diversity: float = 0.0,
    ) -> list[Recommendation]:
        """The ranking stage's top ``n`` (see :mod:`recsys_gql.recsys.ranker`); with
        ``diversity``, MMR's ``n`` of a larger pool (only those are explained)."""
        timer = self.stage_timer
        scored = score_arms(self.arms, user) if timer is None else self._timed_arms(user, timer)
        started = time.perf_counter()
        result = rank(ranker, scored, self.movie_genres, self.movie_years, mask,
                      pool_size(n, diversity))  # fmt: skip
        started = self._stage_done(timer, "rank", started)
        if diversity > 0.0 and result.rows.size > 1:
            k = self._picks(result.rows, result.score, n, diversity)
            result = dataclasses.replace(
                result,
                rows=result.rows[k],
                score=result.score[k],
                arm_scores={name: values[k] for name, values in result.arm_scores.items()},
                features=result.features[k],
            )
        because: list[list[Contribution]] = [[] for _ in result.rows]
        leaning: list[dict[str, float]] = [{} for _ in result.rows]
        if explained and result.rows.size:
            shares = ranker.leaning(result.features, result.reference, result.guard)
            column = {name: j for j, name in enumerate(ranker.arms)}
            parts = [
                ArmPart(arm.name, shares[:, column[arm.name]],
                        arm.contributions(user, scores, result.rows))
                for arm, scores in scored.arms
                if arm.name in column
            ]  # fmt: skip
            because = explain(self.movies.ids[user.rows], parts, result.rows.size)
            leaning = [
                {name: round(float(v), 6) for name, v in zip(ranker.arms, row, strict=True)}
                for row in shares
            ]
            self._stage_done(timer, "explain", started)
        return [
            Recommendation(
                movie_id=self.movies.id_of(int(row)),
                score=float(result.score[k]),
                collab_score=float(result.arm_scores.get("als", np.zeros(k + 1))[k]),
                content_score=float(result.arm_scores.get("content", np.zeros(k + 1))[k]),
                because=because[k],
                source="ranker",
                arm_scores={name: float(v[k]) for name, v in result.arm_scores.items()},
                leaning=leaning[k],
            )
            for k, row in enumerate(result.rows)
        ]

    def _blended(
        self,
        user: History,
        mask: npt.NDArray[np.bool_],
        alpha: float,
        n: int,
        explained: bool,
        diversity: float = 0.0,
    ) -> list[Recommendation]:
        """The linear blend's top ``n`` (see :mod:`recsys_gql.recsys.blend`); with
        ``diversity``, MMR's ``n`` of a larger pool (only those are explained)."""
        timer = self.stage_timer
        started = time.perf_counter()
        collab = self.als.score(user)
        started = self._stage_done(timer, "arm", started, self.als.name)
        content = self.content.score(user)
        started = self._stage_done(timer, "arm", started, self.content.name)
        assert content.rows is not None
        weight = ramped_prior_weight(self.settings.popularity_weight, user.size, self.settings.ramp)
        sparse = PriorContent(content.rows, content.values, self.prior, weight)
        # Same answer as blending every candidate (see blend.py), touching only a few.
        blend = candidate_top_n(
            collab.values, sparse, mask, alpha, pool_size(n, diversity),
            dense_below=self.dense_blend_below,
        )  # fmt: skip
        started = self._stage_done(timer, "blend", started)
        if diversity > 0.0 and blend.rows.size > 1:
            k = self._picks(blend.rows, blend.score, n, diversity)
            blend = dataclasses.replace(
                blend,
                rows=blend.rows[k],
                score=blend.score[k],
                collab=blend.collab[k],
                content=blend.content[k],
            )
        because: list[list[Contribution]] = [[] for _ in blend.rows]
        if explained:
            size = blend.rows.size
            parts = [
                ArmPart("als", np.full(size, alpha),
                        self.als.contributions(user, collab, blend.rows)),
                ArmPart("content", np.full(size, 1.0 - alpha),
                        self.content.contributions(user, content, blend.rows)),
            ]  # fmt: skip
            because = explain(self.movies.ids[user.rows], parts, size)
            self._stage_done(timer, "explain", started)
        leaning = {"als": alpha, "content": 1.0 - alpha} if explained else {}
        return [
            Recommendation(
                movie_id=self.movies.id_of(int(t)),
                score=float(blend.score[k]),
                collab_score=float(blend.collab[k]),
                content_score=float(blend.content[k]),
                because=because[k],
                source="hybrid",
                arm_scores={"als": float(blend.collab[k]), "content": float(blend.content[k])},
                leaning=leaning,
            )
            for k, t in enumerate(blend.rows)
        ]

    def _timed_arms(self, user: History, timer: StageTimer) -> Scored:
        """:func:`score_arms`, telling ``timer`` how long each arm took."""
        pairs = []
        for arm in self.arms:
            started = time.perf_counter()
            pairs.append((arm, arm.score(user)))
            timer("arm", arm.name, time.perf_counter() - started)
        return Scored(user, pairs)

    @staticmethod
    def _stage_done(timer: StageTimer | None, stage: str, started: float, arm: str = "-") -> float:
        """Tell ``timer`` (when there is one) that ``stage`` ran since ``started``; the time
        now, when the next stage starts."""
        now = time.perf_counter()
        if timer is not None:
            timer(stage, arm, now - started)
        return now

    def _popular_recommendations(self, mask: npt.NDArray[np.bool_], n: int) -> list[Recommendation]:
        """Cold start: the ``n`` candidates the popularity arm ranks best for a user with no
        ratings (:meth:`PopularityArm.cold_start`), scaled min-max over all candidates; read
        off a precomputed order (its head and tail), never the whole catalog."""
        best = first_allowed(self._cold_order, mask, n)
        if best.size == 0:
            return []
        low_row = first_allowed(self._cold_order[::-1], mask, 1)
        high = float(self.cold_scores[best[0]])
        low = float(self.cold_scores[low_row[0]])
        normalised = scale(self.cold_scores[best], low, high)
        return [
            Recommendation(
                movie_id=self.movies.id_of(int(row)),
                score=float(value),
                collab_score=0.0,
                content_score=0.0,
                source="popularity",
                arm_scores={"popularity": float(value)},
            )
            for row, value in zip(best, normalised, strict=True)
        ]

    # -- catalog operations -------------------------------------------------------------------

    def popular(self, n: int = 10, genres: Sequence[str] | None = None) -> list[ScoredMovie]:
        """The ``n`` movies with the best Bayesian-average rating, optionally of some genres."""
        n = _check_n(n)
        mask = self.candidate_mask(genres)
        order = self.popularity.best_rated
        picked = order[mask[order]][:n]
        score = self.popularity.bayesian
        return [ScoredMovie(self.movies.id_of(int(i)), float(score[i])) for i in picked]

    def similar(self, movie_id: int, n: int = 10) -> list[ScoredMovie]:
        """The ``n`` movies whose embeddings are closest to ``movie_id``'s (cosine).

        With a flat index the content graph holds each movie's ``k`` nearest, found by that
        very index at training time, so up to ``k`` are read from it instead of searching
        again (the same movies in the same order; the similarities can differ in the last
        float32 bit, as batched and single searches sum in different orders). Approximate
        indexes, whose graphs may be built another way, are always searched.
        """
        n = _check_n(n)
        row = self.movies.index(movie_id)
        if row is None:
            raise UnknownMovie(movie_id)
        if self.similar_from_graph(n):
            rows, scores = self.graph.neighbors[row, :n], self.graph.similarities[row, :n]
            return [
                ScoredMovie(self.movies.id_of(int(r)), float(s))
                for r, s in zip(rows, scores, strict=True)
            ]
        return self._search_similar(row, n)

    def similar_from_graph(self, n: int) -> bool:
        """Whether :meth:`similar` answers ``n`` movies from the content graph (a lookup of
        microseconds) rather than by searching the index."""
        return self.index_spec.kind == "flat" and n <= self.graph.k

    def _search_similar(self, row: int, n: int) -> list[ScoredMovie]:
        """:meth:`similar` by a search of the index."""
        scores, rows = self.index.search(self.embeddings[row : row + 1], n + 1)
        hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True)]
        return [ScoredMovie(self.movies.id_of(r), s) for r, s in hits if r not in (row, -1)][:n]

    def search(self, text: str, n: int = 10) -> list[ScoredMovie]:
        """Movies whose text is closest in meaning to free ``text``."""
        n = _check_n(n)
        return self.search_many([check_query(text)], n)[0]

    def search_many(self, texts: Sequence[str], n: int = 10) -> list[list[ScoredMovie]]:
        """:meth:`search` for several queries at once: one encoder call and one index search
        for all of them (the encoder's cost per query falls steeply with the batch). Raises on
        the first bad query; a caller that must answer each query alone checks them first with
        :func:`check_query`."""
        n = _check_n(n)
        queries = [check_query(text) for text in texts]
        if not queries:
            return []
        scores, rows = self.index.search(self.encode_queries(queries), n)
        return [
            [
                ScoredMovie(self.movies.id_of(int(r)), float(s))
                for r, s in zip(rows[i], scores[i], strict=True)
                if r != -1
            ]
            for i in range(len(queries))
        ]

    @property
    def search_model_loaded(self) -> bool:
        """Whether the query encoder is loaded (it loads on the first search)."""
        return self._encoder is not None

    @property
    def loaded_encoder(self) -> TextEncoder | None:
        """The query encoder when it is loaded (a reload hands it to the next run's engine
        when that run embedded its movies with the same model), else ``None``."""
        return self._encoder

    def warm_up_search(self) -> None:
        """Load the query encoder now (and run it once) instead of on the first search."""
        self.encode_query("warm-up")

    def encode_query(self, text: str) -> npt.NDArray[np.float32]:
        """Encode a query with the model the movies were embedded with (loaded on first use)."""
        return self.encode_queries([text])

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Encode queries in one batch, as a ``(len(texts), dim)`` array of unit vectors."""
        with self._encoder_lock:
            if self._encoder is None:
                encoder = query_encoder(
                    self.manifest, threads=self._encoder_threads, backend=self._encoder_backend
                )
                self._encoder = self._check_encoder(encoder)
            return self._encoder.encode(list(texts))

    def _check_encoder(self, encoder: TextEncoder) -> TextEncoder:
        """``encoder`` if it is the variant the movies were embedded with (with a chosen
        ``encoder_backend``: the same weights on any runtime), else an error: a query vector
        from another model would be compared with the wrong space."""
        expected = self.manifest.models.get("embedding_key")
        if expected is not None and self._encoder_backend is not None:
            expected, found = _weights_label(expected), _weights_label(encoder.model_key)
        else:
            found = encoder.model_key
        if expected is not None and found != expected:
            raise ArtifactError(
                f"the query encoder {encoder.model_key!r} is not the encoder the movies of run "
                f"{self.manifest.run_id} were embedded with ({expected!r}); retrain, or serve "
                "with the same model, backend and max_seq_length"
            )
        return encoder


def _weights_label(model_key: str) -> str:
    """The model and weights part of an encoder's ``model_key`` (without length and runtime)."""
    return model_key.rsplit("-len", 1)[0]


QUERY_BATCH_SIZE = 8
"""Queries per encoder call within one :meth:`Engine.encode_queries` (sorted by length first):
the model is compute-bound, so one call over many queries of mixed lengths pads the short
ones to the longest; small groups of similar length keep most of batching's saving."""


def _load_arms(artifacts: ArtifactDir, catalog: Catalog) -> tuple[list[AnyArm], list[ArmStatus]]:
    """Every fitted arm of the run, in registry order, and each arm's status."""
    arms: list[AnyArm] = []
    status: list[ArmStatus] = []
    for name, record in artifacts.manifest.arms.items():
        kind = arm_type(name)
        if record.status != "fitted":
            status.append(ArmStatus(name, False, record.reason))
            continue
        config = kind.config_type().model_validate(record.config)
        arms.append(kind.load(artifacts, catalog, config, record.details))
        status.append(ArmStatus(name, True))
    order = {arm.name: k for k, arm in enumerate(ARMS)}
    arms.sort(key=lambda arm: order[arm.name])
    missing = REQUIRED - {arm.name for arm in arms}
    if missing:
        raise ArtifactError(f"{artifacts.directory}: no fitted {', '.join(sorted(missing))} arm")
    return arms, status


A = TypeVar("A", bound=AnyArm)


def _arm(arms: Sequence[AnyArm], kind: type[A]) -> A:
    for arm in arms:
        if isinstance(arm, kind):
            return arm
    raise ArtifactError(f"no {kind.name} arm")


def query_encoder(
    manifest: Manifest, *, threads: int | None = None, backend: EncoderBackend | None = None
) -> SentenceEncoder:
    """The sentence encoder a run's movies were embedded with, as its manifest records it
    (runs from before the ONNX backends were embedded with torch at the configured length),
    computing on ``threads`` intra-op threads (``None``: the library's default); ``backend``
    runs the same weights on another runtime instead."""
    emb = manifest.config.get("embedding", {})
    if backend is None:
        backend = manifest.models.get("embedding_backend", emb.get("backend", "torch"))
    length = manifest.models.get("embedding_max_seq_length", emb.get("max_seq_length", 256))
    if backend not in BACKENDS:
        raise ArtifactError(f"run {manifest.run_id} names an unknown encoder backend {backend!r}")
    return SentenceEncoder(
        emb.get("model_path"),
        model_name=emb.get("model_name", "sentence-transformers/all-MiniLM-L6-v2"),
        max_seq_length=int(length),
        batch_size=QUERY_BATCH_SIZE,
        backend=backend,
        threads=threads,
    )
