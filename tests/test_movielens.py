"""Validation of MovieLens-shaped folders: each bad input fails with file, line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_gql.errors import DataValidationError
from recsys_gql.movielens import fingerprint, load_movielens


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def append(path: Path, line: str) -> int:
    """Append a line; return its 1-based line number (header = 1)."""
    text = path.read_text()
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n")
    return len(path.read_text().splitlines())


def test_a_valid_folder_loads_with_types(tiny_movielens: Path) -> None:
    data = load_movielens(tiny_movielens)
    assert len(data.movies) == 20
    assert len(data.ratings) == 240
    assert str(data.ratings["rating"].dtype) == "float32"
    assert data.movies.loc[data.movies["movieId"] == 1, "year"].item() == 1991
    assert data.links is not None
    assert data.links["imdbId"].iloc[0] == "0000000"
    assert data.overviews is not None
    assert len(data.overviews) == 20
    assert data.tags is not None
    assert set(data.tags["tag"]) == {"pixar", "gore"}


def test_wrong_columns(tiny_movielens: Path) -> None:
    rewrite(tiny_movielens / "ratings.csv", "userId,movieId,rating", "user,movieId,score")
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert err.value.file == "ratings.csv"
    assert err.value.line == 1
    assert "missing required column(s) userId, rating" in str(err.value)


def test_a_rating_of_seven(tiny_movielens: Path) -> None:
    line = append(tiny_movielens / "ratings.csv", "1,15,7,1500000000")
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert str(err.value) == (
        f"ratings.csv, line {line}: rating 7 is not in 0.5-5.0 in steps of 0.5"
    )


def test_a_rating_off_the_half_star_grid(tiny_movielens: Path) -> None:
    line = append(tiny_movielens / "ratings.csv", "1,15,3.3,1500000000")
    with pytest.raises(DataValidationError, match=rf"line {line}: rating 3.3 is not in"):
        load_movielens(tiny_movielens)


def test_a_duplicate_pair(tiny_movielens: Path) -> None:
    first = (tiny_movielens / "ratings.csv").read_text().splitlines()[1]
    user, movie = first.split(",")[:2]
    line = append(tiny_movielens / "ratings.csv", f"{user},{movie},3.0,1600000000")
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert err.value.line == line
    assert err.value.problem == f"duplicate rating for user {user} and movie {movie}"


def test_text_in_a_numeric_column(tiny_movielens: Path) -> None:
    line = append(tiny_movielens / "ratings.csv", "abc,3,4.0,1500000000")
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert (
        str(err.value) == f"ratings.csv, line {line}: column userId must be an integer, got 'abc'"
    )


def test_a_fractional_id(tiny_movielens: Path) -> None:
    line = append(tiny_movielens / "movies.csv", "2.5,Half Movie (2000),Drama")
    with pytest.raises(DataValidationError, match=rf"movies.csv, line {line}: column movieId"):
        load_movielens(tiny_movielens)


def test_a_rated_movie_missing_from_movies(tiny_movielens: Path) -> None:
    line = append(tiny_movielens / "ratings.csv", "1,999,4.0,1500000000")
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert err.value.line == line
    assert err.value.problem == "movie 999 is rated but is not in movies.csv"


def test_a_missing_required_file(tiny_movielens: Path) -> None:
    (tiny_movielens / "movies.csv").unlink()
    with pytest.raises(DataValidationError, match=r"movies.csv: file not found"):
        load_movielens(tiny_movielens)


def test_optional_files_are_optional(tiny_movielens: Path) -> None:
    for name in ("links.csv", "tags.csv", "overviews.csv"):
        (tiny_movielens / name).unlink()
    data = load_movielens(tiny_movielens)
    assert data.links is None
    assert data.tags is None
    assert data.overviews is None


def test_bad_tmdb_and_imdb_ids_in_links(tiny_movielens: Path) -> None:
    rewrite(tiny_movielens / "links.csv", "1,0000000,1000", "1,tt000,1000")
    with pytest.raises(DataValidationError, match=r"links.csv, line 2: column imdbId"):
        load_movielens(tiny_movielens)


def test_the_fingerprint_follows_the_content(tiny_movielens: Path) -> None:
    before = fingerprint(tiny_movielens)
    assert set(before.files) == {
        "ratings.csv", "movies.csv", "links.csv", "tags.csv", "overviews.csv"
    }  # fmt: skip
    assert fingerprint(tiny_movielens) == before
    append(tiny_movielens / "tags.csv", "2,3,new,1500000000")
    after = fingerprint(tiny_movielens)
    assert after.sha256 != before.sha256
    assert after.files["ratings.csv"] == before.files["ratings.csv"]


def test_the_typed_fast_path_reads_exactly_what_the_text_path_does(tmp_path: Path) -> None:
    """Large files are read typed; the result must equal the line-by-line text validation."""
    import pandas as pd

    from bench.synth import PRESETS, generate
    from recsys_gql import movielens

    folder = generate_folder = tmp_path / "synth"
    generate(PRESETS["small"].scaled(0.05), generate_folder, seed=1)
    movies = load_movielens(folder).movies["movieId"]
    fast_ratings = movielens._fast_ratings(folder / "ratings.csv", movies)
    fast_tags = movielens._fast_tags(folder / "tags.csv", movies)
    assert fast_ratings is not None
    assert fast_tags is not None
    text = movielens._read_text_frame
    pd.testing.assert_frame_equal(
        fast_ratings, movielens._validate_ratings(text(folder / "ratings.csv"), movies)
    )
    pd.testing.assert_frame_equal(
        fast_tags, movielens._validate_tags(text(folder / "tags.csv"), movies), check_dtype=False
    )


@pytest.mark.parametrize(
    "line", ["1,15,4.0,", "1,15,4.0,1.5", "1,15,,1500000000", "x,15,4.0,1", "1,15,4.0,1,extra"]
)
def test_odd_rows_fall_back_to_the_text_path_and_its_message(
    tiny_movielens: Path, line: str
) -> None:
    number = append(tiny_movielens / "ratings.csv", line)
    with pytest.raises(DataValidationError) as err:
        load_movielens(tiny_movielens)
    assert err.value.file == "ratings.csv"
    assert f"line {number}" in str(err.value) or "malformed CSV" in str(err.value)
