"""Shape and signal of a MovieLens-shaped folder: long tails, and ALS against popularity.

    python -m bench.synth_report DIR [--out bench/results/synth_small.json]

Works on real data too, so a synthetic preset can be set beside ml-latest-small.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine_info, write_json_atomic
from recsys_gql.movielens import MovieLensData, load_movielens
from recsys_gql.recsys.arms.als import AlsConfig, fit_factors
from recsys_gql.recsys.vocab import IdVocab
from training.fit import rating_matrix
from training.metrics import summarise, temporal_split, top_k_excluding

JsonDict = dict[str, Any]

# An ALS configuration with room for the planted niches (the served default, 16 factors and
# regularization 20, was tuned on ml-latest-small).
WIDE_ALS = AlsConfig(factors=64, regularization=2.0, alpha=1.0)


def describe(data: MovieLensData) -> JsonDict:
    """Counts and long-tail figures of the ratings."""
    ratings = data.ratings
    per_movie = np.sort(ratings.groupby("movieId").size().to_numpy())[::-1]
    per_user = np.sort(ratings.groupby("userId").size().to_numpy())[::-1]
    head = per_movie[:1000].astype(float)
    slope = np.polyfit(np.log(np.arange(1, head.size + 1)), np.log(head), 1)[0]
    movies = len(data.movies)
    return {
        "movies": movies,
        "users": int(per_user.size),
        "ratings": len(ratings),
        "tags": 0 if data.tags is None else len(data.tags),
        "rating_mean": round(float(ratings["rating"].mean()), 3),
        "top_1pct_movies_share": round(float(per_movie[: movies // 100].sum() / len(ratings)), 4),
        "top_10pct_users_share": round(
            float(per_user[: per_user.size // 10].sum() / len(ratings)), 4
        ),
        "movie_ratings_median_max": [float(np.median(per_movie)), int(per_movie[0])],
        "user_ratings_min_median_mean_max": [
            int(per_user[-1]),
            float(np.median(per_user)),
            round(float(per_user.mean()), 1),
            int(per_user[0]),
        ],
        "popularity_loglog_slope_top1000": round(float(slope), 3),
    }


def als_vs_popularity(data: MovieLensData, configs: dict[str, AlsConfig]) -> JsonDict:
    """NDCG@10 on a 20% temporal hold-out (relevant = rating >= 4) of popularity (rating
    count) and of ALS under each config; ALS's ratio to popularity is reported too."""
    items = IdVocab(np.sort(data.movies["movieId"].to_numpy()))
    train_part, test_part = temporal_split(data.ratings, 0.2)
    users = IdVocab.from_values(train_part["userId"].to_numpy())
    matrix = rating_matrix(train_part, users, items)
    liked = test_part[test_part["rating"] >= 4.0]
    relevant = np.zeros(matrix.shape, dtype=bool)
    relevant[users.indices(liked["userId"]), items.indices(liked["movieId"])] = True
    rows = np.flatnonzero(relevant.any(axis=1))
    relevant, exclude = relevant[rows], matrix[rows].toarray() > 0
    counts = np.diff(matrix.tocsc().indptr)

    def ndcg(scores: np.ndarray) -> float:
        top = top_k_excluding(scores, exclude, 20)
        return round(summarise(top, relevant, counts).ndcg_at_10, 4)

    popular = ndcg(np.broadcast_to(counts.astype(np.float32), relevant.shape))
    out: JsonDict = {"users": int(rows.size), "popularity_ndcg_at_10": popular}
    for name, config in configs.items():
        factors = fit_factors(matrix, config)
        value = ndcg(factors.user_factors[rows] @ factors.item_factors.T)
        out[f"als_{name}_ndcg_at_10"] = value
        out[f"als_{name}_over_popularity"] = round(value / popular, 2) if popular else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Describe a folder and compare ALS with popularity on it."""
    parser = argparse.ArgumentParser(prog="python -m bench.synth_report")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = load_movielens(args.folder)
    report: JsonDict = {
        "folder": str(args.folder),
        "shape": describe(data),
        "als_vs_popularity": als_vs_popularity(
            data, {"default": AlsConfig(), "64_factors": WIDE_ALS}
        ),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine_info(),
    }
    for key in ("shape", "als_vs_popularity"):
        print(key, report[key])
    if args.out:
        write_json_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
