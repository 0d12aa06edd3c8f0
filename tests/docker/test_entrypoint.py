"""docker/entrypoint.sh, run outside a container on the image's own command line.

Each test runs ``ENTRYPOINT + CMD`` of the runtime stage (``docker-entrypoint serve``) with the
stage's ``ENV`` as the environment, resolving ``docker-entrypoint`` and ``docker-healthcheck``
through ``PATH`` to the repository files the Dockerfile copies there. Only what a deployment
would mount or set differs: the artifacts and data paths, the database URL, the port, and the
bind address (loopback here; the image binds 0.0.0.0).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from recsys_gql.settings import Settings
from tests.conftest import RealRun
from tests.docker.conftest import Image, parse_json_list

READY_TIMEOUT = 240.0
"""Two workers each load the engine and the sentence model, on a machine others share."""
STARTUP_LINE = "Application startup complete."


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Container:
    """The image's command line and environment, as a container would get them."""

    command: list[str]
    healthcheck: list[str]
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run the entrypoint with ``args`` (the image's CMD when none) to its end."""
        command = [self.command[0], *args] if args else self.command
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def probe(self) -> subprocess.CompletedProcess[str]:
        """Run the image's HEALTHCHECK command once."""
        return subprocess.run(
            self.healthcheck, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )


@pytest.fixture
def container(image: Image, tmp_path: Path) -> Container:
    """The runtime stage's command line with its ENV; paths point into ``tmp_path``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker-entrypoint", "docker-healthcheck"):
        (bin_dir / name).symlink_to(image.installed_from(f"/usr/local/bin/{name}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_GQL_")}
    env.update({k: v for k, v in image.env.items() if k != "PATH"})
    env.update(
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
        RECSYS_GQL_HOST="127.0.0.1",
        RECSYS_GQL_PORT=str(free_port()),
        RECSYS_GQL_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
        RECSYS_GQL_DATA_DIR=str(tmp_path / "data"),
        RECSYS_GQL_CACHE_DIR=str(tmp_path / "cache"),
        RECSYS_GQL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'recsys.db'}",
    )
    healthcheck = image.healthcheck.split("CMD", 1)[1].strip()
    return Container(image.command_line, parse_json_list(healthcheck), env)


def test_refuses_to_start_without_artifacts(container: Container, tmp_path: Path) -> None:
    result = container.run()
    assert result.returncode == 78, result
    current = tmp_path / "artifacts" / "current"
    assert f"refusing to start: no verified artifacts at {current}" in result.stderr
    assert "docker compose run --rm train" in result.stderr
    assert "recsys-gql: error:" in result.stderr  # verify's own reason comes first
    assert "GraphQL on" not in result.stdout  # serve never ran


def test_refuses_to_start_on_damaged_artifacts(
    container: Container, real_run: RealRun, tmp_path: Path
) -> None:
    run = real_run.current.resolve()
    copy = tmp_path / "artifacts" / run.name
    shutil.copytree(run, copy)
    (tmp_path / "artifacts" / "current").symlink_to(run.name)
    with (copy / "item_factors.npy").open("r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\x00\x00\x80\x7f")
    result = container.run()
    assert result.returncode == 78, result
    assert "item_factors.npy" in result.stderr
    assert "refusing to start" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("RECSYS_GQL_WORKERS", "two"), ("RECSYS_GQL_WORKERS", "0"), ("RECSYS_GQL_PORT", "80a")],
)
def test_refuses_malformed_numbers(container: Container, name: str, value: str) -> None:
    container.env[name] = value
    result = container.run()
    assert result.returncode == 64, result
    assert f"{name} must be a positive whole number, not '{value}'" in result.stderr


def test_any_other_command_runs_as_given(container: Container, real_run: RealRun) -> None:
    result = container.run("recsys-gql", "artifacts", "verify", str(real_run.current))
    assert result.returncode == 0, result
    assert "files verified" in result.stdout


@contextmanager
def started(container: Container, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the image's command line; always stop it (SIGTERM, then SIGKILL) at the end."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            container.command,
            env=container.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, workers: int) -> None:
    """Until ``/readyz`` is 200 and every worker has started; fails if the process exits."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        log = log_path.read_text(encoding="utf-8", errors="replace")
        assert process.poll() is None, f"exited with {process.returncode}:\n{log[-3000:]}"
        try:
            ready = httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and log.count(STARTUP_LINE) >= workers:
            return
        time.sleep(0.5)
    raise AssertionError(f"not ready in {READY_TIMEOUT:.0f}s:\n{log_path.read_text()[-3000:]}")


def test_starts_with_artifacts_and_answers_readyz(
    container: Container, api_settings: Settings, tmp_path: Path
) -> None:
    container.env.update(
        RECSYS_GQL_ARTIFACTS_DIR=str(api_settings.artifacts_dir),
        RECSYS_GQL_DATABASE_URL=api_settings.database_url,
        RECSYS_GQL_WORKERS="2",
    )
    url = f"http://127.0.0.1:{container.env['RECSYS_GQL_PORT']}"
    down = container.probe()
    assert down.returncode == 1, down  # nothing listens yet: unhealthy
    log_path = tmp_path / "server.log"
    with started(container, log_path) as process:
        wait_ready(url, process, log_path, workers=2)
        ready = httpx.get(f"{url}/readyz", timeout=30).json()
        run_id = (api_settings.artifacts_dir / "current").resolve().name
        assert ready == {"status": "ready", "run": run_id}
        answer = httpx.post(
            f"{url}/graphql", json={"query": "{ movie(id: 1) { title year } }"}, timeout=30
        )
        assert answer.json() == {"data": {"movie": {"title": "Toy Story", "year": 1995}}}
        healthy = container.probe()
        assert healthy.returncode == 0, healthy
        assert '"status":"ready"' in healthy.stdout.replace(" ", "")
        log = log_path.read_text(encoding="utf-8", errors="replace")
        # verified first, then served with the workers the environment asked for
        assert log.index("files verified") < log.index(f"GraphQL on {url}/graphql")
        assert log.count(STARTUP_LINE) == 2
        assert "Started parent process" in log
        # the entrypoint exec'd: the process started is the server itself
        assert (Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[1:3]) == [
            str(Path(sys.executable).parent / "recsys-gql").encode(),
            b"serve",
        ]
    assert process.returncode == 0, log_path.read_text()[-3000:]
    gone = container.probe()
    assert gone.returncode == 1, gone
