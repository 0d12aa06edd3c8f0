"""docs/configuration.md is generated from ``Settings`` and fails here when it drifts."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_gql.settings import Settings
from recsys_gql.settings_doc import main, render, type_name

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_committed_page_matches_the_settings() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `python -m recsys_gql.settings_doc`"
    )


def test_every_field_is_documented_with_its_variable() -> None:
    page = render()
    for name, field in Settings.model_fields.items():
        assert f"### `RECSYS_GQL_{name.upper()}`" in page
        assert field.description, f"Settings.{name} has no docstring"
        assert " ".join(field.description.split()) in page


def test_types_and_machine_independent_defaults() -> None:
    page = render()
    assert type_name(Settings.model_fields["log_format"].annotation) == '"json" | "text" | None'
    assert "| `int` | `10000` |" in page  # max_query_cost
    assert str(Path.home()) not in page  # cache_dir's default is described, not evaluated


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "configuration.md"
    assert main(["--out", str(out), "--check"]) == 1
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    out.write_text(render().replace("Type", "Kind", 1), encoding="utf-8")
    assert main(["--out", str(out), "--check"]) == 1
