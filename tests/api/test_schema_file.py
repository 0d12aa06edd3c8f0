"""The committed SDL is the live schema, and every example query runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_gql.api.schema import build_schema
from recsys_gql.cli import main
from tests.api.conftest import Server, schema_path, sign_up

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_committed_schema_matches_the_live_one() -> None:
    assert schema_path().read_text(encoding="utf-8") == build_schema().as_str() + "\n", (
        "schema.graphql is stale: run `recsys-gql export-schema`"
    )


def test_export_schema_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schema.graphql"
    assert main(["export-schema", "--out", str(out), "--check"]) == 1
    assert main(["export-schema", "--out", str(out)]) == 0
    assert main(["export-schema", "--out", str(out), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.graphql")), ids=lambda p: p.stem)
def test_every_example_runs(api: Server, example: Path) -> None:
    user, token = sign_up(api)
    variables = {"userId": user, "movieId": 1, "rating": 4.5, "query": "space robot"}
    body = api.graphql(example.read_text(encoding="utf-8"), variables, token=token)
    assert "errors" not in body, body
    assert body["data"]
