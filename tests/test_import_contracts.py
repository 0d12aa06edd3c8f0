"""The import contracts of pyproject.toml ([tool.importlinter]) hold: the engine imports nothing
of the API or the database, the database nothing of the API, only the CLI imports training,
services and the context import no GraphQL type, and no two packages or modules of recsys_gql
import each other in a circle, at any depth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout + result.stderr
    assert "0 broken" in report, report
    assert result.returncode == 0, report
