"""The text that represents a movie for the sentence model and for TF-IDF."""

from __future__ import annotations

import pandas as pd

from recsys_gql.movielens import MovieLensData


def top_tags(tags: pd.DataFrame | None, limit: int) -> pd.Series:
    """The ``limit`` most frequent tags per movie (case-folded, ties alphabetical), as text."""
    if tags is None or tags.empty or limit == 0:
        return pd.Series(dtype=str)
    folded = tags.assign(tag=tags["tag"].str.lower().str.strip())
    folded = folded[folded["tag"] != ""]
    counts = folded.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    best = counts.groupby("movieId").head(limit)
    return best.groupby("movieId")["tag"].agg(", ".join)


def movie_texts(data: MovieLensData, tag_limit: int) -> pd.Series:
    """One text per movie, indexed by movieId in ascending order.

    ``"Toy Story (1995). Genres: Adventure, Animation. Tags: pixar, fun. <overview>"`` — the
    title carries the year; parts a movie lacks are left out.
    """
    movies = data.movies.set_index("movieId").sort_index()
    tags = top_tags(data.tags, tag_limit).reindex(movies.index)
    if data.overviews is not None:
        overviews = data.overviews.set_index("movieId")["overview"].reindex(movies.index)
    else:
        overviews = pd.Series("", index=movies.index)
    texts = []
    for title, genres, tag_text, overview in zip(
        movies["title"], movies["genres"], tags.fillna(""), overviews.fillna(""), strict=True
    ):
        parts = [f"{title}."]
        if genres:
            parts.append(f"Genres: {genres.replace('|', ', ')}.")
        if tag_text:
            parts.append(f"Tags: {tag_text}.")
        if overview:
            parts.append(overview)
        texts.append(" ".join(parts))
    return pd.Series(texts, index=movies.index, name="text")


def tags_until_cutoff(tags: pd.DataFrame | None, train: pd.DataFrame) -> pd.DataFrame | None:
    """The tags written no later than their author's last training rating (``train``: the
    ratings before a split). A tag written after its author's cut-off belongs to the
    held-out period, like the ratings after it, and would leak it into the movie texts;
    tags of users without training ratings are kept (they have no held-out period)."""
    if tags is None or tags.empty:
        return tags
    cutoff = train.groupby("userId")["timestamp"].max()
    limit = tags["userId"].map(cutoff)
    kept = tags[limit.isna() | (tags["timestamp"] <= limit)]
    return kept.reset_index(drop=True)
