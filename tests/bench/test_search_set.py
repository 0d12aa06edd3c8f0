"""The labelled search set: its loader resolves sentence rows from the data, keeps the
written paraphrases, refuses rows it cannot resolve, and its build is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.search_set import SET_PATH, build, load_search_set, read_set, sentences
from tests.conftest import A_PLOTS


def test_overviews_are_cut_into_sentences() -> None:
    text = 'He wins. Then he loses! Does he? "Yes," she says. In 1999 the end. a.k.a. one'
    assert sentences(text) == [
        "He wins.",
        "Then he loses!",
        "Does he?",
        '"Yes," she says.',
        "In 1999 the end. a.k.a. one",
    ]


def test_sentence_rows_are_read_from_the_data_and_paraphrases_kept(
    tiny_movielens: Path, tmp_path: Path
) -> None:
    path = tmp_path / "set.jsonl"
    rows = [
        {"kind": "sentence", "movie_id": 2, "sentence": 0},
        {"kind": "paraphrase", "movie_id": 2, "query": "  a fish looks for his boy  "},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    queries = load_search_set(tiny_movielens, path)
    assert [(q.query, q.movie_id, q.kind) for q in queries] == [
        (A_PLOTS[1], 2, "sentence"),
        ("a fish looks for his boy", 2, "paraphrase"),
    ]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"kind": "sentence", "movie_id": 2, "sentence": 5}, "no overview sentence 5"),
        ({"kind": "sentence", "movie_id": 999, "sentence": 0}, "movie 999 has no"),
        ({"kind": "paraphrase", "movie_id": 2, "query": " "}, "needs its query"),
        ({"kind": "guess", "movie_id": 2}, "expected a kind and a movie_id"),
    ],
)
def test_rows_that_cannot_be_resolved_are_refused_by_line(
    tiny_movielens: Path, tmp_path: Path, row: dict[str, object], problem: str
) -> None:
    path = tmp_path / "set.jsonl"
    good = {"kind": "paraphrase", "movie_id": 1, "query": "toys"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"line 2: .*{problem}"):
        load_search_set(tiny_movielens, path)


def test_build_is_deterministic_and_keeps_written_paraphrases(
    tiny_movielens: Path, tmp_path: Path
) -> None:
    path = tmp_path / "set.jsonl"
    waiting = build(tiny_movielens, path)
    first = path.read_text(encoding="utf-8")
    assert sorted(waiting) == list(range(1, 21))  # every tiny movie is in the sample
    sentence_rows = read_set(path)
    assert {r["movie_id"] for r in sentence_rows} == set(range(1, 21))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"kind": "paraphrase", "movie_id": waiting[0], "query": "x"}))
    assert build(tiny_movielens, path) == waiting[1:]
    assert path.read_text(encoding="utf-8").startswith(first)
    assert len(load_search_set(tiny_movielens, path)) == 21


def test_the_committed_set_has_its_documented_shape() -> None:
    rows = read_set(SET_PATH)
    kinds = [r["kind"] for r in rows]
    assert kinds.count("sentence") == 300
    assert kinds.count("paraphrase") == 100
    sampled = [r["movie_id"] for r in rows if r["kind"] == "sentence"]
    assert len(set(sampled)) == 300
    assert [r["movie_id"] for r in rows if r["kind"] == "paraphrase"] == sampled[:100]


def test_the_committed_set_resolves_on_the_real_data(real_data_source: Path) -> None:
    queries = load_search_set(real_data_source / "ml-latest-small-overviews")
    assert len(queries) == 400
    assert all(len(q.query.split()) >= 6 for q in queries if q.kind == "sentence")
