"""The synthetic MovieLens generator: the `small` preset end to end (the suite's only scale
test), its determinism, the layout the data step and training accept, and the planted shape."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.synth import PRESETS, Spec, generate, main
from bench.synth_csv import render_rows
from bench.synth_report import WIDE_ALS, als_vs_popularity, describe
from recsys_gql.movielens import MovieLensData, load_movielens
from recsys_gql.recsys.content import SentenceEncoder
from training.config import TrainConfig
from training.fetch import fetch
from training.pipeline import train

FILES = ("ratings.csv", "movies.csv", "tags.csv", "links.csv", "overviews.csv")


def digests(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full `small` preset, written once for this module."""
    out = tmp_path_factory.mktemp("synth") / "small"
    assert main(["--preset", "small", "--out", str(out), "--seed", "7"]) == 0
    return out


@pytest.fixture(scope="module")
def small_data(small: Path) -> MovieLensData:
    return load_movielens(small)


def test_same_seed_same_bytes_other_seed_other_data(small: Path, tmp_path: Path) -> None:
    generate(PRESETS["small"], tmp_path / "again", seed=7)
    assert digests(tmp_path / "again") == digests(small)
    generate(PRESETS["small"], tmp_path / "other", seed=8)
    other = digests(tmp_path / "other")
    assert all(other[f] != digest for f, digest in digests(small).items())


def test_small_has_the_ml_latest_small_counts(small_data: MovieLensData) -> None:
    ratings = small_data.ratings
    assert len(small_data.movies) == 9_742
    assert ratings["userId"].nunique() == 610
    assert len(ratings) == 100_836
    assert small_data.tags is not None
    assert len(small_data.tags) == 3_683
    assert small_data.links is not None
    assert len(small_data.links) == 9_742
    assert small_data.overviews is not None
    with_text = (small_data.overviews["overview"] != "").mean()
    assert 0.95 < with_text < 1.0
    assert set(np.unique(ratings["rating"])) <= {x / 2 for x in range(1, 11)}
    assert ratings.groupby("userId").size().min() >= 20  # as in MovieLens
    assert 3.0 < ratings["rating"].mean() < 4.0
    genres = small_data.movies["genres"].str.split("|").explode()
    assert genres.nunique() == 19 + 1  # the 19 MovieLens genres and "no genres" (empty)
    # Genres follow ml-latest-small's frequencies, where Drama and Comedy lead.
    assert genres.value_counts().index[0] in {"Drama", "Comedy"}
    assert small_data.movies["year"].notna().mean() > 0.99


def test_popularity_and_activity_are_long_tailed(small_data: MovieLensData) -> None:
    shape = describe(small_data)
    per_movie = small_data.ratings.groupby("movieId").size()
    per_user = small_data.ratings.groupby("userId").size()
    # The top 1% of movies hold far more than 1% of ratings (ml-latest-small: 16%).
    assert shape["top_1pct_movies_share"] > 0.08
    assert per_movie.max() > 25 * per_movie.median()
    # Log-log slope of count against rank over the head of the curve (real data: -0.52).
    assert -1.5 < shape["popularity_loglog_slope_top1000"] < -0.3
    # A few heavy users, most users light (ml-latest-small: top 10% hold 48%).
    assert shape["top_10pct_users_share"] > 0.35
    assert per_user.mean() > 1.5 * per_user.median()


def test_users_have_genre_tastes(small_data: MovieLensData) -> None:
    """A user's favourite genre takes a larger share of their ratings than it would if they
    rated movies at random by popularity, and they rate it higher than other genres."""
    lead = small_data.movies.assign(genre=small_data.movies["genres"].str.split("|").str[0])
    rated = small_data.ratings.merge(lead[["movieId", "genre"]], on="movieId")
    share = (
        rated.groupby(["userId", "genre"]).size().groupby(level=0).max()
        / rated.groupby("userId").size()
    )
    shuffled = rated.assign(genre=rated["genre"].sample(frac=1.0, random_state=0).to_numpy())
    share_random = shuffled.groupby(["userId", "genre"]).size().groupby(level=0).max() / (
        shuffled.groupby("userId").size()
    )
    assert share.mean() > share_random.mean() + 0.05


def test_als_finds_the_planted_taste_better_than_popularity(small_data: MovieLensData) -> None:
    figures = als_vs_popularity(small_data, {"wide": WIDE_ALS})
    assert figures["popularity_ndcg_at_10"] > 0.0
    assert figures["als_wide_over_popularity"] > 1.4


def test_the_data_step_and_training_accept_the_layout(
    tmp_path: Path, sentence_encoder: SentenceEncoder
) -> None:
    """A scaled-down `small` through `data fetch --source` and the real training pipeline."""
    spec = PRESETS["small"].scaled(0.01)
    generate(spec, tmp_path / "synth", seed=3)
    fetched = fetch(tmp_path / "raw", str(tmp_path / "synth"))
    assert fetched.has_overviews
    assert not fetched.official_release
    config = TrainConfig.model_validate({"als": {"factors": 4, "iterations": 5}})
    result = train(
        fetched.destination, tmp_path / "artifacts", config, cache_dir=None,
        encoder_factory=lambda _: sentence_encoder, report=lambda _: None, show_progress=False,
    )  # fmt: skip
    counts = result.manifest.counts
    assert (counts["movies"], counts["users"], counts["ratings"]) == (
        spec.movies,
        spec.users,
        spec.ratings,
    )
    assert result.embeddings_encoded == spec.movies


def test_bad_sizes_and_scale_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="20 ratings per user"):
        generate(Spec(users=10, movies=100, ratings=100, tags=0), tmp_path)
    assert main(["--preset", "small", "--out", str(tmp_path), "--scale", "0"]) == 2


def test_rendered_csv_matches_pandas() -> None:
    rng = np.random.default_rng(0)
    columns = [rng.integers(0, 10**k, 500) for k in (1, 3, 10)]
    tenths = rng.integers(1, 11, 500) * 5
    text = render_rows([*columns, tenths], [0, 0, 0, 1]).decode()
    frame = pd.DataFrame({"a": columns[0], "b": columns[1], "c": columns[2], "r": tenths / 10})
    assert text == frame.to_csv(index=False, header=False, lineterminator="\n")
