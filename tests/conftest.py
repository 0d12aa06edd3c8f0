"""Shared fixtures: a tiny synthetic MovieLens folder with planted taste blocks, the real
sentence encoder (loaded once), and the real ml-latest-small data when it is available."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_gql.cli import main
from recsys_gql.recsys.content import SentenceEncoder

REPO = Path(__file__).resolve().parent.parent

# Two planted tastes: block A (movies 1-10) is animated family fare, block B (11-20) horror.
BLOCK_A = list(range(1, 11))
BLOCK_B = list(range(11, 21))
USERS_A = list(range(1, 21))
USERS_B = list(range(21, 41))
A_PLOTS = [
    "A young toy cowboy and a space ranger learn to be friends.",
    "A clownfish father crosses the ocean to find his lost son.",
    "A family of superheroes comes out of retirement to save the day.",
    "A little mermaid dreams of life on land.",
    "Talking animals in a zoo escape to the wild and sing songs.",
    "An ogre and a talking donkey rescue a princess.",
    "A lion cub grows up to reclaim his kingdom.",
    "A rat who loves cooking becomes a chef in Paris.",
    "Toys come alive when the children leave the room.",
    "A robot cleans up a deserted planet and falls in love.",
]
B_PLOTS = [
    "A masked killer stalks teenagers on Halloween night.",
    "A haunted house terrifies the family that moves in.",
    "A demon possesses a young girl and a priest performs an exorcism.",
    "Zombies overrun a city and survivors hide in a mall.",
    "A serial killer hunts victims in their dreams.",
    "A cursed videotape kills whoever watches it within seven days.",
    "Campers are murdered one by one at a lake.",
    "A vampire terrorises a small village at night.",
    "A creature from space hunts the crew of a ship.",
    "A possessed doll commits gruesome murders.",
]


def write_tiny_movielens(folder: Path, *, seed: int = 7) -> Path:
    """Write a MovieLens-shaped folder: 20 movies, 40 users, two planted taste blocks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    movies = pd.DataFrame(
        {
            "movieId": BLOCK_A + BLOCK_B,
            "title": [f"Family Film {i} ({1990 + i})" for i in BLOCK_A]
            + [f"Scary Film {i} ({1960 + i})" for i in BLOCK_B],
            "genres": ["Animation|Children|Comedy"] * 10 + ["Horror|Thriller"] * 10,
        }
    )
    movies.to_csv(folder / "movies.csv", index=False)
    rows = []
    for users, block in ((USERS_A, BLOCK_A), (USERS_B, BLOCK_B)):
        for user in users:
            seen = rng.choice(block, size=6, replace=False)
            for k, movie in enumerate(seen):
                rating = float(rng.choice([4.0, 4.5, 5.0]))
                rows.append((user, int(movie), rating, 1_500_000_000 + user * 1000 + k))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    ratings.to_csv(folder / "ratings.csv", index=False)
    links = pd.DataFrame(
        {
            "movieId": BLOCK_A + BLOCK_B,
            "imdbId": [f"{i:07d}" for i in range(20)],
            "tmdbId": [1000 + i for i in range(20)],
        }
    )
    links.to_csv(folder / "links.csv", index=False)
    tags = pd.DataFrame(
        [(1, m, "pixar", 1_500_000_000) for m in BLOCK_A[:5]]
        + [(21, m, "gore", 1_500_000_000) for m in BLOCK_B[:5]],
        columns=["userId", "movieId", "tag", "timestamp"],
    )
    tags.to_csv(folder / "tags.csv", index=False)
    overviews = pd.DataFrame(
        {
            "movieId": BLOCK_A + BLOCK_B,
            "tmdbId": [1000 + i for i in range(20)],
            "overview": A_PLOTS + B_PLOTS,
        }
    )
    overviews.to_csv(folder / "overviews.csv", index=False)
    return folder


@pytest.fixture
def tiny_movielens(tmp_path: Path) -> Path:
    """A fresh tiny MovieLens folder (see :func:`write_tiny_movielens`)."""
    return write_tiny_movielens(tmp_path / "tiny")


@pytest.fixture(scope="session")
def sentence_encoder() -> SentenceEncoder:
    """The real packaged all-MiniLM-L6-v2, loaded once per test session."""
    return SentenceEncoder()


def shared_data_source() -> Path | None:
    """The local MovieLens copy CI points at (``$RECSYS_GQL_DATA_SOURCE`` or ../shared/data)."""
    configured = os.environ.get("RECSYS_GQL_DATA_SOURCE")
    candidate = Path(configured) if configured else REPO.parent / "shared" / "data"
    return candidate if candidate.exists() else None


@pytest.fixture(scope="session")
def real_data_source() -> Iterator[Path]:
    """The real ml-latest-small source; required under CI, skipped elsewhere when absent."""
    source = shared_data_source()
    if source is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no MovieLens source: set RECSYS_GQL_DATA_SOURCE")
        pytest.skip("no local MovieLens copy (set RECSYS_GQL_DATA_SOURCE to run)")
    return source


@dataclass(frozen=True)
class RealRun:
    """Where the session's real data and artifacts live."""

    data_dir: Path
    artifacts_dir: Path

    @property
    def raw(self) -> Path:
        return self.data_dir / "raw" / "ml-latest-small"

    @property
    def current(self) -> Path:
        return self.artifacts_dir / "current"


@pytest.fixture(scope="session")
def real_run(real_data_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRun]:
    """`data fetch --source <mirror>` then `train` on the real data, into a temp folder."""
    root = tmp_path_factory.mktemp("real")
    run = RealRun(root / "data", root / "artifacts")
    saved = {k: os.environ.get(k) for k in ("RECSYS_GQL_DATA_DIR", "RECSYS_GQL_ARTIFACTS_DIR")}
    os.environ["RECSYS_GQL_DATA_DIR"] = str(run.data_dir)
    os.environ["RECSYS_GQL_ARTIFACTS_DIR"] = str(run.artifacts_dir)
    try:
        assert main(["data", "fetch", "--source", str(real_data_source)]) == 0
        assert main(["train", "--quiet"]) == 0
        yield run
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the real data (the ``real_run`` or ``real_data_source``
    fixtures, directly or through another fixture) ``integration``, so that
    ``pytest -m "not integration"`` runs the tiers that need neither (docs/testing.md)."""
    for item in items:
        needs = getattr(item, "fixturenames", ())
        if "real_run" in needs or "real_data_source" in needs:
            item.add_marker(pytest.mark.integration)
