"""The server refuses to start half-loaded, and says what to run."""

from __future__ import annotations

import gc
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from recsys_gql.app import YOUNG_GC_THRESHOLD
from recsys_gql.cli import main
from recsys_gql.settings import Settings
from tests.api.conftest import running
from tests.processes import served_process, wait_ready

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_serve_refuses_missing_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot serve: artifacts not usable" in err
    assert "recsys-gql train" in err


def test_serve_refuses_an_uninitialised_database(
    api_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECSYS_GQL_ARTIFACTS_DIR", str(api_settings.artifacts_dir))
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["serve", "--port", "1"]) == 2
    assert "run `recsys-gql db init`" in capsys.readouterr().err


def test_the_app_does_not_start_on_tampered_artifacts(
    api_settings: Settings, tmp_path: Path
) -> None:
    run = (api_settings.artifacts_dir / "current").resolve()
    copy = tmp_path / "artifacts" / run.name
    shutil.copytree(run, copy)
    (tmp_path / "artifacts" / "current").symlink_to(run.name)
    with (copy / "item_factors.npy").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x7f")
    broken = api_settings.model_copy(update={"artifacts_dir": tmp_path / "artifacts"})
    with pytest.raises(RuntimeError, match=r"did not start \(exit code \[3\]\)"), running(broken):
        pass


def test_a_started_app_exempts_its_long_lived_objects_from_collection(
    api_settings: Settings,
) -> None:
    gc.unfreeze()  # another app of this test session may have frozen its own
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    with running(api_settings) as server:
        assert server.graphql("{ __typename }")["data"] == {"__typename": "Query"}
        # the catalog, the schema, the engine: far more than serving allocates per request
        assert gc.get_freeze_count() > 100_000
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
    assert gc.get_freeze_count() == 0  # given back to the collector on shutdown
    assert gc.get_threshold() == before


@SQLITE_ONLY
def test_serve_runs_workers_on_the_configured_event_loop(
    api_settings: Settings, tmp_path: Path
) -> None:
    """The standard library's loop by default, here with two workers on one socket;
    ``RECSYS_GQL_EVENT_LOOP=uvloop`` picks uvloop."""
    choices = {
        "default": {"RECSYS_GQL_WORKERS": "2"},
        "uvloop": {"RECSYS_GQL_EVENT_LOOP": "uvloop"},
    }
    logs = {name: tmp_path / f"{name}.log" for name in choices}
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                served_process(
                    api_settings, {**env, "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false"}, logs[name]
                )
            )
            for name, env in choices.items()
        ]
        wait_ready(urls, list(logs.values()))
        for url in urls:
            answer = httpx.post(f"{url}/graphql", json={"query": "{ movie(id: 1) { title } }"})
            assert answer.json() == {"data": {"movie": {"title": "Toy Story"}}}
        deadline = time.monotonic() + 120  # /readyz answered from one worker; the other may lag
        while logs["default"].read_text().count("movies, on ") < 2:
            assert time.monotonic() < deadline, logs["default"].read_text()[-3000:]
            time.sleep(0.25)
    default = logs["default"].read_text()
    assert "with 2 workers" in default
    assert default.count("movies, on asyncio") == 2
    assert "movies, on uvloop" in logs["uvloop"].read_text()


def test_serve_refuses_an_unknown_event_loop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSYS_GQL_EVENT_LOOP", "trio")
    assert main(["serve", "--port", "1"]) == 2
    assert "RECSYS_GQL_EVENT_LOOP" in capsys.readouterr().err
