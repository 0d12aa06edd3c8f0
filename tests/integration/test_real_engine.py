"""The engine on the real ml-latest-small artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_gql.recsys.engine import Engine
from tests.integration.conftest import RealRun

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(real_run: RealRun) -> Engine:
    return Engine.load(real_run.current)


def genre_share(engine: Engine, movie_ids: list[int], genre: str) -> float:
    column = engine.genre_names.index(genre)
    rows = engine.movies.indices(movie_ids)
    return float(engine.movie_genres[rows, column].mean())


def lightest_user(engine: Engine) -> int:
    counts = np.diff(engine.train_ratings.indptr)
    return engine.users.id_of(int(np.argmin(counts)))


def test_five_five_star_ratings_in_a_genre_bring_more_of_it(engine: Engine) -> None:
    user = lightest_user(engine)  # 20 ratings: the case where a few new ratings matter most
    before = engine.training_ratings(user)
    top_before = [r.movie_id for r in engine.recommend(user, n=20, ratings=before)]
    animated = [
        m.movie_id for m in engine.popular(40, genres=["Animation"]) if m.movie_id not in before
    ][:5]
    after = {**before, **{m: 5.0 for m in animated}}
    top_after = [r.movie_id for r in engine.recommend(user, n=20, ratings=after)]
    assert genre_share(engine, top_after, "Animation") > genre_share(
        engine, top_before, "Animation"
    )
    assert not set(animated) & set(top_after)  # rated movies are not recommended again


def test_a_new_user_with_five_animated_favourites(engine: Engine) -> None:
    ratings = {1: 5.0, 2355: 5.0, 4886: 5.0, 6377: 5.0, 8961: 5.0}  # Pixar films
    recs = engine.recommend(1_000_001, n=10, ratings=ratings)
    cold = engine.recommend(1_000_002, n=10)
    personal = genre_share(engine, [r.movie_id for r in recs], "Animation")
    assert personal > genre_share(engine, [r.movie_id for r in cold], "Animation")
    assert personal >= 0.3
    assert all(c.movie_id in ratings for r in recs for c in r.because)
    assert any(r.because for r in recs)


def test_cold_start_and_similar_on_real_data(engine: Engine) -> None:
    popular = engine.recommend(2_000_000, n=10, genres=["Animation"])
    assert all(r.source == "popularity" for r in popular)
    assert genre_share(engine, [r.movie_id for r in popular], "Animation") == 1.0
    assert 3114 in [m.movie_id for m in engine.similar(1, n=5)]  # Toy Story -> Toy Story 2
