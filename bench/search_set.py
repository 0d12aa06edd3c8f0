"""The labelled search set: queries a person might type, each with the one movie it is about.

Two kinds of query, both about movies drawn by a seeded sample (no movie is picked by hand,
and the set is never tuned to an encoder):

- ``sentence`` — one sentence of the movie's TMDB overview, chosen by the same seed. The set
  file holds only the movie id and the sentence's position (the overviews are TMDB's text and
  stay out of the repository); :func:`load_search_set` reads the sentence from the data.
- ``paraphrase`` — the movie's plot retold in plain words, as a person searching would put it:
  written from the overview (and, here and there, what is commonly known of the film), with
  no title, no character or actor name and no sentence copied; written for the first
  :data:`PARAPHRASED` movies of the sample, in sample order, every one of them, before any
  encoder was run on them.

``python -m bench.search_set build`` rewrites the ``sentence`` rows and lists the movies to
paraphrase (with their overviews, on stdout); the paraphrases already written are kept.
Rerunning it on the same data gives the same file.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SET_PATH = REPO_ROOT / "bench" / "search_set.jsonl"
DEFAULT_DATA = REPO_ROOT / "data" / "raw" / "ml-latest-small"
SEED = 19
SAMPLE = 300
"""Movies in the sample: one ``sentence`` query each."""
PARAPHRASED = 100
"""The first this many movies of the sample also get a ``paraphrase`` query."""
MIN_WORDS = 6
"""Shortest overview sentence taken as a query."""
KINDS = ("sentence", "paraphrase")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class LabelledQuery:
    """A query and the movie it is about."""

    query: str
    movie_id: int
    kind: str


def sentences(overview: str) -> list[str]:
    """The overview cut into sentences (at ``.``, ``!`` or ``?`` before a capital)."""
    return [part.strip() for part in _SENTENCE_END.split(overview.strip()) if part.strip()]


def read_overviews(data_dir: Path) -> dict[int, str]:
    """``movieId`` -> overview, for movies that have one."""
    path = data_dir / "overviews.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            int(row["movieId"]): row["overview"].strip()
            for row in csv.DictReader(handle)
            if row.get("overview", "").strip()
        }


def sample_rows(overviews: dict[int, str]) -> list[dict[str, object]]:
    """The ``sentence`` rows: :data:`SAMPLE` movies with a usable sentence, seeded."""
    usable = {
        movie: [k for k, s in enumerate(sentences(text)) if len(s.split()) >= MIN_WORDS]
        for movie, text in sorted(overviews.items())
    }
    candidates = [movie for movie, positions in usable.items() if positions]
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(len(candidates), size=min(SAMPLE, len(candidates)), replace=False)
    rows: list[dict[str, object]] = []
    for index in chosen:
        movie = candidates[int(index)]
        positions = usable[movie]
        rows.append(
            {
                "kind": "sentence",
                "movie_id": movie,
                "sentence": positions[int(rng.integers(len(positions)))],
            }
        )
    return rows


def read_set(path: Path = SET_PATH) -> list[dict[str, object]]:
    """The set file's rows as written."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_search_set(data_dir: Path, path: Path = SET_PATH) -> list[LabelledQuery]:
    """The labelled queries, ``sentence`` rows resolved against ``data_dir``'s overviews.

    Raises ``ValueError`` naming the row when a row is malformed or the data does not hold
    its sentence (another data set, or another release of it)."""
    overviews = read_overviews(data_dir)
    queries: list[LabelledQuery] = []
    for line, row in enumerate(read_set(path), start=1):
        kind, movie = row.get("kind"), row.get("movie_id")
        if kind not in KINDS or not isinstance(movie, int):
            raise ValueError(f"{path.name}, line {line}: expected a kind and a movie_id: {row}")
        if kind == "paraphrase":
            text = row.get("query")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path.name}, line {line}: a paraphrase needs its query")
            queries.append(LabelledQuery(text.strip(), movie, "paraphrase"))
            continue
        position = row.get("sentence")
        parts = sentences(overviews.get(movie, ""))
        if not isinstance(position, int) or not 0 <= position < len(parts):
            raise ValueError(
                f"{path.name}, line {line}: movie {movie} has no overview sentence {position} "
                f"in {data_dir}"
            )
        queries.append(LabelledQuery(parts[position], movie, "sentence"))
    return queries


def build(data_dir: Path, path: Path = SET_PATH) -> list[int]:
    """Rewrite ``path``'s ``sentence`` rows from the data, keeping its paraphrases; the
    movies (in order) still waiting for a paraphrase."""
    rows = sample_rows(read_overviews(data_dir))
    kept = [r for r in read_set(path) if r.get("kind") == "paraphrase"] if path.exists() else []
    written = {int(str(r["movie_id"])) for r in kept}
    wanted = [int(str(r["movie_id"])) for r in rows[:PARAPHRASED]]
    order = {movie: k for k, movie in enumerate(wanted)}
    kept = sorted(
        (r for r in kept if int(str(r["movie_id"])) in order),
        key=lambda r: order[int(str(r["movie_id"]))],
    )
    lines = [json.dumps(r, ensure_ascii=False) for r in rows + kept]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [movie for movie in wanted if movie not in written]


def main(argv: Sequence[str] | None = None) -> int:
    """``build [--data DIR]``: rewrite the sentence rows, print the movies to paraphrase."""
    parser = argparse.ArgumentParser(prog="python -m bench.search_set")
    parser.add_argument("command", choices=("build",))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    missing = build(args.data)
    overviews = read_overviews(args.data)
    for movie in missing:
        print(json.dumps({"movie_id": movie, "overview": overviews[movie]}, ensure_ascii=False))
    print(f"{len(missing)} movies still need a paraphrase", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
