"""Real ml-latest-small artifacts, built once per test session through the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recsys_gql.cli import main


@dataclass(frozen=True)
class RealRun:
    """Where the session's real data and artifacts live."""

    data_dir: Path
    artifacts_dir: Path

    @property
    def raw(self) -> Path:
        return self.data_dir / "raw" / "ml-latest-small"

    @property
    def current(self) -> Path:
        return self.artifacts_dir / "current"


@pytest.fixture(scope="session")
def real_run(real_data_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRun]:
    """`data fetch --source <mirror>` then `train` on the real data, into a temp folder."""
    root = tmp_path_factory.mktemp("real")
    run = RealRun(root / "data", root / "artifacts")
    saved = {k: os.environ.get(k) for k in ("RECSYS_GQL_DATA_DIR", "RECSYS_GQL_ARTIFACTS_DIR")}
    os.environ["RECSYS_GQL_DATA_DIR"] = str(run.data_dir)
    os.environ["RECSYS_GQL_ARTIFACTS_DIR"] = str(run.artifacts_dir)
    try:
        assert main(["data", "fetch", "--source", str(real_data_source)]) == 0
        assert main(["train", "--quiet"]) == 0
        yield run
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
