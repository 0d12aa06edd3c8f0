"""The engine on the real ml-latest-small artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.recsys.engine import Engine
from tests.conftest import RealRun

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(real_run: RealRun) -> Engine:
    return Engine.load(real_run.current)


def genre_share(engine: Engine, movie_ids: list[int], genre: str) -> float:
    column = engine.genre_names.index(genre)
    rows = engine.movies.indices(movie_ids)
    return float(engine.movie_genres[rows, column].mean())


def test_five_five_star_ratings_in_a_genre_bring_more_of_it(engine: Engine) -> None:
    """The 30 lightest users (20-ish ratings each), before and after five 5-star ratings of
    popular animated films they had not rated: their lists hold more animation."""
    counts = np.diff(engine.train_ratings.indptr)
    users = [engine.users.id_of(int(row)) for row in np.argsort(counts, kind="stable")[:30]]
    animated = [m.movie_id for m in engine.popular(80, genres=["Animation"])]
    before_shares, after_shares = [], []
    for user in users:
        before = engine.training_ratings(user)
        added = [m for m in animated if m not in before][:5]
        after = {**before, **{m: 5.0 for m in added}}
        top_before = [r.movie_id for r in engine.recommend(user, n=20, ratings=before)]
        top_after = [r.movie_id for r in engine.recommend(user, n=20, ratings=after)]
        assert not set(added) & set(top_after)  # rated movies are not recommended again
        before_shares.append(genre_share(engine, top_before, "Animation"))
        after_shares.append(genre_share(engine, top_after, "Animation"))
    assert np.mean(after_shares) > np.mean(before_shares)
    gained = np.greater(after_shares, before_shares).mean()
    assert gained >= 0.6, f"only {gained:.0%} of users got more animation"


def share_of_any(engine: Engine, movie_ids: list[int], genres: set[str]) -> float:
    columns = [engine.genre_names.index(g) for g in genres]
    rows = engine.movies.indices(movie_ids)
    return float(engine.movie_genres[np.ix_(rows, columns)].any(axis=1).mean())


def test_a_new_user_with_five_animated_favourites(engine: Engine) -> None:
    ratings = {1: 5.0, 2355: 5.0, 4886: 5.0, 6377: 5.0, 8961: 5.0}  # Pixar films
    recs = engine.recommend(1_000_001, n=20, ratings=ratings)
    cold = engine.recommend(1_000_002, n=20)
    personal = genre_share(engine, [r.movie_id for r in recs], "Animation")
    assert personal > genre_share(engine, [r.movie_id for r in cold], "Animation")
    family = share_of_any(engine, [r.movie_id for r in recs], {"Animation", "Children"})
    assert family > 0.5, f"only {family:.0%} Animation/Children"
    assert all(c.movie_id in ratings for r in recs for c in r.because)
    assert any(r.because for r in recs)


def test_a_new_user_with_five_horror_favourites(engine: Engine) -> None:
    ratings = {1258: 5.0, 1347: 5.0, 1982: 5.0, 1997: 5.0, 2459: 5.0}
    # The Shining, A Nightmare on Elm Street, Halloween, The Exorcist, The Texas Chainsaw Massacre
    recs = engine.recommend(1_000_003, n=20, ratings=ratings)
    scary = share_of_any(engine, [r.movie_id for r in recs], {"Horror", "Thriller"})
    assert scary > 0.5, f"only {scary:.0%} Horror/Thriller"
    assert all(r.source == "ranker" for r in recs)


def test_cold_start_and_similar_on_real_data(engine: Engine) -> None:
    popular = engine.recommend(2_000_000, n=10, genres=["Animation"])
    assert all(r.source == "popularity" for r in popular)
    assert genre_share(engine, [r.movie_id for r in popular], "Animation") == 1.0
    assert 3114 in [m.movie_id for m in engine.similar(1, n=5)]  # Toy Story -> Toy Story 2
