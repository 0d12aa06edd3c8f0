"""A deterministic, seeded generator of MovieLens-shaped data at any scale.

It writes the ml-latest-small layout — ``ratings.csv``, ``movies.csv``, ``tags.csv``,
``links.csv`` and ``overviews.csv`` (``movieId,tmdbId,overview``, as in
``ml-latest-small-overviews``) — so ``recsys-gql data fetch --source DIR`` and
``recsys-gql train --data-dir DIR`` accept it unchanged. Run from the repository root::

    python -m bench.synth --preset small --out /tmp/synth-small [--seed 42] [--scale 1.0]

The planted structure, so collaborative filtering has something real to find:

* **Taste niches.** Every movie belongs to one niche; a niche has one to three core genres and
  a few motif words. A movie's genres are its niche's core genres plus the odd extra one, and
  its title and overview are drawn from its genres' and niche's vocabularies (so the content
  arm has signal too).
* **Users** like a handful of niches (Dirichlet weights) plus a "mainstream" share drawn from
  global popularity. Each rating picks the mainstream list or one of the user's niches, then a
  movie in it by popularity. Ratings are higher inside the user's niches.
* **Item popularity** follows a power law (Zipf over a random ranking); **user activity** is
  20 ratings plus a log-normal long tail, as in MovieLens (every user has at least 20).

Everything is vectorised numpy. Users are generated and written in chunks, each with its own
random stream derived from the seed, so memory stays bounded (about 600 MB at 25M
ratings) and the output depends only on the preset, the scale and the seed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pandas as pd

from bench.synth_csv import render_rows
from bench.synth_text import GENRE_FREQUENCY, GENRES, MOTIFS, TAGS, movie_frame

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MIN_RATINGS = 20
"""Every MovieLens user has at least 20 ratings."""
FIRST_TIME = 828_000_000  # 1996-03-28
LAST_TIME = 1_537_800_000  # 2018-09-24
USER_CHUNK_RATINGS = 2_000_000
"""Users are generated in chunks of about this many ratings."""


@dataclass(frozen=True)
class Spec:
    """The size of a synthetic data set."""

    users: int
    movies: int
    ratings: int
    tags: int
    zipf: float = 1.1
    """Exponent of the item popularity power law."""
    activity_sigma: float = 1.4
    """Log-normal sigma of the user activity tail (above the 20-rating floor)."""
    mainstream: float = 0.15
    """Mean share of a user's ratings drawn from global popularity rather than their niches."""

    def scaled(self, factor: float) -> Spec:
        """The same shape with users, movies, ratings and tags multiplied by ``factor``."""
        users = max(1, round(self.users * factor))
        movies = max(50, round(self.movies * factor))
        # Ratings per user stay the same, unless that would fill over 1/8 of a small matrix.
        ratings = max(users * MIN_RATINGS, min(round(self.ratings * factor), users * movies // 8))
        return replace(
            self, users=users, movies=movies, ratings=ratings, tags=round(self.tags * factor)
        )

    def check(self) -> None:
        """Raise ``ValueError`` when the sizes cannot be generated."""
        if self.users < 1 or self.movies < 2 * MIN_RATINGS:
            raise ValueError(f"need at least 1 user and {2 * MIN_RATINGS} movies")
        if self.ratings < self.users * MIN_RATINGS:
            raise ValueError(f"need at least {MIN_RATINGS} ratings per user")
        if self.ratings > self.users * self.movies // 2:
            raise ValueError("more ratings than half the users x movies matrix")


PRESETS: dict[str, Spec] = {
    # ml-latest-small: 610 users, 9,742 movies, 100,836 ratings, 3,683 tags.
    "small": Spec(users=610, movies=9_742, ratings=100_836, tags=3_683),
    # ml-25m: 162,541 users, 62,423 movies, 25,000,095 ratings, 1,093,360 tags.
    "25m": Spec(users=162_541, movies=62_423, ratings=25_000_095, tags=1_093_360),
    # A million-movie catalog for serving benchmarks, rated by 100k users.
    "1m-items": Spec(users=100_000, movies=1_000_000, ratings=10_000_000, tags=400_000),
}


@dataclass(frozen=True)
class Catalog:
    """Per-movie and per-niche arrays shared by every user chunk."""

    movie_ids: IntArray
    niche: IntArray
    """Niche of each movie (index order)."""
    popularity: FloatArray
    """Power-law weight of each movie."""
    quality: FloatArray
    """Rating bias of each movie."""
    global_cdf: FloatArray
    explore_cdf: FloatArray
    """Popularity flattened to its square root: where heavy users go once niches run dry."""
    niche_cdf: FloatArray
    """Cumulative popularity within niches, movies sorted by niche, niche c spans (c, c+1]."""
    niche_order: IntArray
    """Movie indices sorted by niche (the order of ``niche_cdf``)."""
    niche_motifs: IntArray
    """Motif word indices of each niche (niches x 4)."""


def niche_count(movies: int) -> int:
    """Number of taste niches: about one per 80 movies, between 20 and 500."""
    return int(np.clip(round(movies / 80), 20, 500))


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    ranks = rng.permutation(n).astype(np.float64) + 1.0
    return np.power(ranks, -exponent)


def _gumbel_top(rng: np.random.Generator, logits: FloatArray, rows: int, k: int) -> IntArray:
    """``k`` distinct columns per row sampled without replacement with weights ``exp(logits)``."""
    keys = logits[None, :] + rng.gumbel(size=(rows, logits.size))
    return np.argsort(-keys, axis=1)[:, :k].astype(np.int64)


def _cdf_draw(cdf: FloatArray, u: FloatArray) -> IntArray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1).astype(np.int64)


def make_catalog(spec: Spec, rng: np.random.Generator) -> tuple[Catalog, pd.DataFrame]:
    """The movies: niches, genres, popularity, quality, ids, and the text frame."""
    n, c = spec.movies, niche_count(spec.movies)
    genre_logp = np.log(GENRE_FREQUENCY / GENRE_FREQUENCY.sum())
    core_k = rng.choice([1, 2, 3], size=c, p=[0.3, 0.45, 0.25])
    core = _gumbel_top(rng, genre_logp, c, 3)
    core_mask = np.zeros((c, len(GENRES)), dtype=bool)
    for k in (1, 2, 3):  # three vectorised steps, not a loop over niches
        rows = np.flatnonzero(core_k >= k)
        core_mask[rows, core[rows, k - 1]] = True
    niche_size = rng.dirichlet(np.full(c, 2.0))
    niche = _cdf_draw(np.cumsum(niche_size), rng.random(n))
    genres = core_mask[niche] & (rng.random((n, len(GENRES))) < 0.85)
    extra_p = 0.12 * GENRE_FREQUENCY / GENRE_FREQUENCY.max()
    genres |= rng.random((n, len(GENRES))) < extra_p[None, :]
    genres[rng.random(n) < 0.0035] = False  # "(no genres listed)", as 34 of 9,742 real movies

    # Popularity: a power law inside each niche (Zipf over a random ranking) times a power law
    # over niches, so the most popular movies are spread over many niches and tastes.
    order = np.lexsort((rng.random(n), niche))  # movies by niche, in random order inside
    sorted_niche = niche[order]
    rank = np.arange(n) - np.searchsorted(sorted_niche, sorted_niche, side="left") + 1.0
    within_weight = rank**-spec.zipf
    within_total = np.bincount(sorted_niche, weights=within_weight, minlength=c)
    offset = np.r_[0.0, np.cumsum(within_total)][sorted_niche]
    niche_cdf = sorted_niche + (np.cumsum(within_weight) - offset) / within_total[sorted_niche]
    niche_share = _zipf_weights(rng, c, 0.8)
    popularity = np.empty(n)
    popularity[order] = niche_share[sorted_niche] * within_weight / within_total[sorted_niche]
    log_pop = np.log(popularity)
    quality = 0.25 * (log_pop - log_pop.mean()) / log_pop.std() + rng.normal(0.0, 0.35, n)
    global_cdf = np.cumsum(popularity) / popularity.sum()
    explore_cdf = np.cumsum(np.sqrt(popularity)) / np.sqrt(popularity).sum()
    movie_ids = np.cumsum(rng.geometric(0.5, size=n)).astype(np.int64)
    motifs = _gumbel_top(rng, np.zeros(len(MOTIFS)), c, 4)
    catalog = Catalog(
        movie_ids=movie_ids,
        niche=niche,
        popularity=popularity,
        quality=quality,
        global_cdf=global_cdf,
        explore_cdf=explore_cdf,
        niche_cdf=niche_cdf,
        niche_order=order.astype(np.int64),
        niche_motifs=motifs,
    )
    return catalog, movie_frame(rng, movie_ids, motifs[niche], genres)


@dataclass(frozen=True)
class Users:
    """Per-user parameters."""

    count: IntArray
    niches: IntArray
    """users x K liked niches."""
    niche_cdf: FloatArray
    """users x K cumulative niche weights."""
    mainstream: FloatArray
    bias: FloatArray
    whole_stars: npt.NDArray[np.bool_]
    start: FloatArray
    span: FloatArray
    tagger: npt.NDArray[np.bool_]


def activity(spec: Spec, rng: np.random.Generator) -> IntArray:
    """Ratings per user: 20 plus a log-normal tail, summing exactly to ``spec.ratings``."""
    cap = spec.movies // 2
    weights = rng.lognormal(0.0, spec.activity_sigma, spec.users)
    counts = np.full(spec.users, MIN_RATINGS, dtype=np.int64)
    for _ in range(50):  # hand out what is left in proportion; capped users drop out
        left = spec.ratings - int(counts.sum())
        open_ = counts < cap
        if left <= 0 or not open_.any():
            break
        exact = left * np.where(open_, weights, 0.0) / weights[open_].sum()
        extra = np.floor(exact).astype(np.int64)
        remainder = left - int(extra.sum())  # largest remainders get one more each
        extra[np.argsort(extra - exact, kind="stable")[:remainder]] += 1
        counts = np.minimum(counts + extra, cap)
    return counts


def make_users(spec: Spec, catalog: Catalog, rng: np.random.Generator) -> Users:
    """Activity, liked niches with Dirichlet weights, rating habits and active period."""
    n, c, k = spec.users, int(catalog.niche.max()) + 1, 5
    # Liked niches are drawn (with repeats, which merge) by the square root of niche popularity.
    niche_weight = np.sqrt(np.bincount(catalog.niche, weights=catalog.popularity, minlength=c))
    niches = _cdf_draw(np.cumsum(niche_weight) / niche_weight.sum(), rng.random((n, k)))
    weights = rng.dirichlet(np.full(k, 0.6), size=n)
    start = FIRST_TIME + rng.random(n) * (LAST_TIME - FIRST_TIME)
    span = np.minimum(rng.exponential(2.0e7, n) + 3600.0, LAST_TIME - start)
    counts = activity(spec, rng)
    tagger = rng.random(n) < 0.1
    return Users(
        count=counts,
        niches=niches,
        niche_cdf=np.cumsum(weights, axis=1),
        mainstream=rng.beta(2.0, 2.0 / spec.mainstream - 2.0, n),
        bias=rng.normal(0.0, 0.45, n),
        whole_stars=rng.random(n) < 0.25,
        start=start,
        span=span,
        tagger=tagger if tagger.any() else np.r_[True, tagger[1:]],
    )


def _draw_items(
    catalog: Catalog, users: Users, owner: IntArray, rng: np.random.Generator
) -> IntArray:
    """One movie per entry of ``owner`` (a user row): mainstream or one of the user's niches."""
    m = owner.size
    mainstream = rng.random(m) < users.mainstream[owner]
    slot = (rng.random(m)[:, None] > users.niche_cdf[owner]).sum(axis=1)
    slot = np.minimum(slot, users.niches.shape[1] - 1)
    niche = users.niches[owner, slot]
    in_niche = catalog.niche_order[_cdf_draw(catalog.niche_cdf, niche + rng.random(m))]
    in_world = _cdf_draw(catalog.global_cdf, rng.random(m))
    return np.where(mainstream, in_world, in_niche)


def _distinct(keys: IntArray) -> IntArray:
    """Sorted distinct values (a plain sort: ``np.unique`` hashes, far slower here)."""
    keys.sort()
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


def chunk_ratings(
    catalog: Catalog, users: Users, rows: IntArray, rng: np.random.Generator
) -> pd.DataFrame:
    """The ratings of user rows ``rows``: distinct movies per user, sorted by user then movie."""
    n_movies = catalog.movie_ids.size
    need = users.count[rows]
    keys = np.zeros(0, dtype=np.int64)
    wanted = need.copy()
    for attempt in range(64):  # heavy users exhaust their niches: then uniform draws fill up
        extra = 2 ** max(0, attempt - 5)
        owner = np.repeat(rows, wanted * extra + wanted // 4 + (wanted > 0))
        items = (
            _draw_items(catalog, users, owner, rng)
            if attempt < 6
            else _cdf_draw(catalog.explore_cdf, rng.random(owner.size))
        )
        keys = _distinct(np.concatenate([keys, owner * n_movies + items]))
        have = np.bincount(keys // n_movies - rows[0], minlength=rows.size)
        wanted = np.maximum(need - have, 0)
        if not wanted.any():
            break
    owner, items = keys // n_movies, keys % n_movies
    # Keep a random subset of each user's distinct movies, exactly their count.
    order = np.lexsort((rng.random(keys.size), owner))
    start = np.searchsorted(owner[order], owner[order], side="left")
    keep = order[(np.arange(keys.size) - start) < users.count[owner[order]]]
    keep.sort()
    owner, items = owner[keep], items[keep]
    liked = (users.niches[owner] == catalog.niche[items][:, None]).any(axis=1)
    score = (
        3.35 + users.bias[owner] + catalog.quality[items] + np.where(liked, 0.45, -0.35)
        + rng.normal(0.0, 0.7, owner.size)
    )  # fmt: skip
    step = np.where(users.whole_stars[owner], 1.0, 0.5)
    rating = np.clip(np.round(score / step) * step, np.where(step == 1.0, 1.0, 0.5), 5.0)
    stamp = users.start[owner] + rng.random(owner.size) * users.span[owner]
    return pd.DataFrame(
        {
            "userId": owner + 1,
            "movieId": catalog.movie_ids[items],
            "rating": rating.astype(np.float32),
            "timestamp": stamp.astype(np.int64),
            "_item": items,
        }
    )


def chunk_tags(
    ratings: pd.DataFrame, users: Users, catalog: Catalog, n_tags: int, rng: np.random.Generator
) -> pd.DataFrame:
    """``n_tags`` tag applications on ratings of tagging users: niche motifs or generic tags."""
    pool = np.flatnonzero(users.tagger[ratings["userId"].to_numpy() - 1])
    if pool.size == 0 or n_tags <= 0:
        return pd.DataFrame(columns=["userId", "movieId", "tag", "timestamp"])
    chosen = np.sort(rng.choice(pool, size=min(n_tags, pool.size), replace=False))
    picked = ratings.iloc[chosen]
    items = picked["_item"].to_numpy()
    motif = catalog.niche_motifs[catalog.niche[items], rng.integers(0, 4, items.size)]
    generic = rng.integers(0, len(TAGS), items.size)
    tag = np.where(
        rng.random(items.size) < 0.6,
        np.array(MOTIFS, dtype=object)[motif],
        np.array(TAGS, dtype=object)[generic],
    )
    return pd.DataFrame(
        {
            "userId": picked["userId"].to_numpy(),
            "movieId": picked["movieId"].to_numpy(),
            "tag": tag,
            "timestamp": picked["timestamp"].to_numpy() + rng.integers(1, 600, items.size),
        }
    )


def _write_ratings(frame: pd.DataFrame, handle: BinaryIO, *, header: bool) -> None:
    if header:
        handle.write(b"userId,movieId,rating,timestamp\n")
    tenths = np.round(frame["rating"].to_numpy(dtype=np.float64) * 10).astype(np.int64)
    columns = [frame["userId"].to_numpy(), frame["movieId"].to_numpy(), tenths]
    handle.write(render_rows([*columns, frame["timestamp"].to_numpy()], [0, 0, 1, 0]))


def generate(spec: Spec, out: Path, *, seed: int = 42) -> dict[str, int]:
    """Write the five CSVs of ``spec`` into ``out`` and return their row counts."""
    spec.check()
    out.mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(seed)
    catalog_seq, users_seq, chunks_seq = root.spawn(3)
    catalog, movies = make_catalog(spec, np.random.default_rng(catalog_seq))
    users = make_users(spec, catalog, np.random.default_rng(users_seq))
    movies[["movieId", "title", "genres"]].to_csv(out / "movies.csv", index=False)
    movies[["movieId", "imdbId", "tmdbId"]].to_csv(out / "links.csv", index=False)
    movies[["movieId", "tmdbId", "overview"]].to_csv(out / "overviews.csv", index=False)
    bounds = np.searchsorted(
        np.cumsum(users.count), np.arange(USER_CHUNK_RATINGS, spec.ratings, USER_CHUNK_RATINGS)
    )
    edges = np.unique(np.r_[0, bounds + 1, spec.users].clip(0, spec.users))
    chunk_seqs = chunks_seq.spawn(edges.size - 1)
    counts = {"movies": spec.movies, "users": spec.users, "ratings": 0, "tags": 0}
    with (
        (out / "ratings.csv").open("wb") as ratings_out,
        (out / "tags.csv").open("w", encoding="utf-8", newline="") as tags_out,
    ):
        for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
            rng = np.random.default_rng(chunk_seqs[i])
            rows = np.arange(lo, hi, dtype=np.int64)
            ratings = chunk_ratings(catalog, users, rows, rng)
            n_tags = round(spec.tags * users.count[rows].sum() / spec.ratings)
            tags = chunk_tags(ratings, users, catalog, n_tags, rng)
            _write_ratings(ratings, ratings_out, header=i == 0)
            tags.to_csv(tags_out, header=i == 0, index=False, lineterminator="\n")
            counts["ratings"] += len(ratings)
            counts["tags"] += len(tags)
    return counts


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.synth", description="Write a synthetic MovieLens-shaped folder."
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the CSVs into")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply users, movies, ratings and tags"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: generate one preset and print what was written."""
    args = build_parser().parse_args(argv)
    if args.scale <= 0:
        print("bench.synth: error: --scale must be positive", file=sys.stderr)
        return 2
    spec = PRESETS[args.preset]
    if args.scale != 1.0:
        spec = spec.scaled(args.scale)
    start = time.perf_counter()
    try:
        counts = generate(spec, args.out, seed=args.seed)
    except ValueError as exc:
        print(f"bench.synth: error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    print(f"{args.out}: {summary} in {seconds:.1f}s (preset {args.preset}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
