"""The committed SDL is the live schema (the examples run in tests/fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_gql.api.schema import build_schema
from recsys_gql.cli import main
from tests.api.conftest import schema_path


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
