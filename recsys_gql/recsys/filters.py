"""Candidate filters of a recommendation request beyond the catalog's own (year range):
genres with *any*/*all* semantics, and movies the caller excludes (already shown, hidden).

Pure numpy over the engine's movie-by-genre matrix; the engine builds its candidate mask
from these.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from recsys_gql.errors import InvalidParameter
from recsys_gql.recsys.vocab import IdVocab

__all__ = ["MAX_EXCLUDED", "GenreMatch", "exclude_movies", "genre_columns", "genre_mask"]

MAX_EXCLUDED = 500
"""Most movie ids one request may exclude (``excludeMovieIds``): an "already shown" list of a
few pages; bounded so a request's size and filtering work stay small."""


class GenreMatch(enum.Enum):
    """How several genres filter: a movie of at least one (``ANY``) or of every one (``ALL``)."""

    ANY = "any"
    ALL = "all"


def genre_columns(
    genres: Sequence[str], lookup: Mapping[str, int], known: Sequence[str]
) -> list[int]:
    """Columns of the movie-by-genre matrix for ``genres`` (case- and blank-insensitive);
    raises :class:`InvalidParameter` naming the known genres for an unknown one."""
    columns = []
    for genre in genres:
        column = lookup.get(str(genre).strip().casefold())
        if column is None:
            raise InvalidParameter("genres", f"unknown genre {genre!r}; known: {', '.join(known)}")
        columns.append(column)
    return columns


def genre_mask(
    movie_genres: npt.NDArray[np.uint8], columns: Sequence[int], match: GenreMatch
) -> npt.NDArray[np.bool_]:
    """Movies having any (or all) of the genre ``columns``; every movie when none is given."""
    if not columns:
        return np.ones(movie_genres.shape[0], dtype=bool)
    chosen = movie_genres[:, list(columns)].astype(bool)
    passing = chosen.all(axis=1) if match is GenreMatch.ALL else chosen.any(axis=1)
    return np.asarray(passing, dtype=bool)


def exclude_movies(
    mask: npt.NDArray[np.bool_], movies: IdVocab, movie_ids: Iterable[int] | None
) -> None:
    """Clear ``mask`` (in place) at every known movie of ``movie_ids``; unknown ids are
    ignored (a client's "already shown" list may name movies of another catalog)."""
    if not movie_ids:
        return
    rows = [row for row in (movies.index(int(m)) for m in movie_ids) if row is not None]
    if rows:
        mask[np.asarray(rows, dtype=np.intp)] = False
