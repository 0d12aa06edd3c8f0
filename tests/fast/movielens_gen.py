"""A generated MovieLens-shaped folder for the fast tier: a few hundred users, about two hundred
movies with titles, years, genres, links, tags and overview text, and ratings drawn from
planted tastes (each user prefers one genre family), so the trained engine has something real
to find in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FAMILIES: dict[str, tuple[str, list[str]]] = {
    "family": (
        "Animation|Children|Comedy",
        ["toy", "talking animal", "young princess", "friendly robot", "lost puppy"],
    ),
    "horror": (
        "Horror|Thriller",
        ["masked killer", "haunted house", "cursed doll", "hungry zombie", "vampire"],
    ),
    "space": (
        "Sci-Fi|Adventure",
        ["starship crew", "alien empire", "space station", "time traveller", "android"],
    ),
    "romance": (
        "Romance|Drama",
        ["two strangers", "old flame", "wedding planner", "poet in Paris", "summer love"],
    ),
}
"""Genre families: the genres a movie of the family has and the heroes its plots are about."""

PLOTS = {
    "family": "A {hero} and friends sing, laugh and learn to share on a sunny adventure.",
    "horror": "A {hero} stalks and terrifies a small town at night; nobody survives the dark.",
    "space": "A {hero} travels across the galaxy to stop a war between distant planets.",
    "romance": "A {hero} falls in love and must choose between the heart and a career.",
}

MOVIES_PER_FAMILY = 50
USERS_PER_FAMILY = 75
FIRST_TIMESTAMP = 1_500_000_000


def movie_ids() -> dict[str, list[int]]:
    """Each family's movie ids: 1-50 family films, 51-100 horror, 101-150 space, 151-200
    romance."""
    return {
        name: list(range(k * MOVIES_PER_FAMILY + 1, (k + 1) * MOVIES_PER_FAMILY + 1))
        for k, name in enumerate(FAMILIES)
    }


def user_ids() -> dict[str, list[int]]:
    """Each family's fans: users 1-75 like family films, 76-150 horror, and so on."""
    return {
        name: list(range(k * USERS_PER_FAMILY + 1, (k + 1) * USERS_PER_FAMILY + 1))
        for k, name in enumerate(FAMILIES)
    }


def write_generated_movielens(folder: Path, *, seed: int = 20) -> Path:
    """Write ``movies.csv``, ``ratings.csv``, ``links.csv``, ``tags.csv`` and
    ``overviews.csv`` into ``folder``: 200 movies, 300 users, ~12,000 ratings."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    movies, overviews = [], []
    for name, ids in movie_ids().items():
        genres, heroes = FAMILIES[name]
        for k, movie_id in enumerate(ids):
            hero = heroes[k % len(heroes)]
            title = f"{name.title()} Story {k + 1} ({1970 + movie_id % 50})"
            movies.append((movie_id, title, genres))
            overviews.append((movie_id, 5000 + movie_id, PLOTS[name].format(hero=hero)))
    pd.DataFrame(movies, columns=["movieId", "title", "genres"]).to_csv(
        folder / "movies.csv", index=False
    )
    pd.DataFrame(overviews, columns=["movieId", "tmdbId", "overview"]).to_csv(
        folder / "overviews.csv", index=False
    )
    pd.DataFrame(
        [(m, f"{m:07d}", 5000 + m) for m, _, _ in movies],
        columns=["movieId", "imdbId", "tmdbId"],
    ).to_csv(folder / "links.csv", index=False)

    all_movies = [m for m, _, _ in movies]
    ratings, tags = [], []
    for name, users in user_ids().items():
        liked = movie_ids()[name]
        for user in users:
            seen = rng.choice(liked, size=int(rng.integers(20, 40)), replace=False)
            others = rng.choice(all_movies, size=5, replace=False)
            time = FIRST_TIMESTAMP + user * 10_000
            for k, movie in enumerate(seen):
                ratings.append((user, int(movie), float(rng.choice([4.0, 4.5, 5.0])), time + k))
            for k, movie in enumerate(others):
                if int(movie) not in seen:
                    ratings.append((user, int(movie), float(rng.choice([1.0, 2.0])), time + 50 + k))
            tags.append((user, int(seen[0]), name, time))
    pd.DataFrame(ratings, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False
    )
    pd.DataFrame(tags, columns=["userId", "movieId", "tag", "timestamp"]).to_csv(
        folder / "tags.csv", index=False
    )
    return folder
