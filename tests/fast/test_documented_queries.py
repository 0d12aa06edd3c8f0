"""The queries the docs show run: the README's tour and every file of examples/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fast.conftest import FastClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.graphql"))


def readme_queries() -> list[str]:
    """The fenced ``graphql`` blocks of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```graphql\n(.*?)```", text, flags=re.S)


async def test_the_readme_tour_runs(gql: FastClient) -> None:
    queries = readme_queries()
    assert queries
    for query in queries:
        data = await gql.ok(query)
        recs = data["user"]["recommendations"]
        assert len(recs) == 5
        assert all(rec["explanation"]["summary"] for rec in recs)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
async def test_every_example_runs(gql: FastClient, example: Path) -> None:
    user, token = await gql.sign_up()
    variables = {"userId": user, "movieId": 1, "rating": 4.5, "query": "space robot"}
    data = await gql.ok(example.read_text(encoding="utf-8"), variables, token=token)
    assert data
