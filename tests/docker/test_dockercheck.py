"""The parts of ``make docker-check`` (docker/dockercheck) that need no Docker engine: the
local mirror of PyTorch's CPU index that the image build installs torch from here, and the
free port range the api replicas are published on. The check itself needs an engine and runs
as ``make docker-check`` (docs/docker.md)."""

from __future__ import annotations

import logging
import socket
import threading
from logging.handlers import BufferingHandler
from pathlib import Path

import httpx
import pytest
import uvicorn.supervisors.multiprocess
from dockercheck import compose, stack, torch_index  # importable through tests/docker/conftest.py

from tests.conftest import REPO


def test_the_mirror_is_a_pep_503_index_pip_can_read(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in (
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "typing_extensions-4.16.0-py3-none-any.whl",
        "MarkupSafe-3.0.4-cp311-cp311-manylinux_2_17_x86_64.whl",
    ):
        (wheels / name).write_bytes(name.encode())
    root = tmp_path / "index" / "simple"
    torch_index.write_simple_index(wheels, root)
    torch_index.write_simple_index(wheels, root)  # a second run reuses what is there
    assert sorted(p.name for p in root.iterdir()) == ["markupsafe", "torch", "typing-extensions"]
    with torch_index.serve(root) as url:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/simple")
        page = httpx.get(f"{url}/typing-extensions/", timeout=10)
        assert page.status_code == 200
        assert '<a href="typing_extensions-4.16.0-py3-none-any.whl">' in page.text
        wheel = httpx.get(f"{url}/torch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
        assert wheel.content == b"torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
        assert httpx.get(f"{url}/numpy/", timeout=10).status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/torch/", timeout=5)  # stopped with the block


def test_the_mirror_serves_the_torch_the_project_pins() -> None:
    pin = torch_index.torch_pin(REPO)
    assert pin.startswith("torch==")
    assert f"{pin}\n" in (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")


def test_the_replicas_port_range_is_free() -> None:
    first = compose.free_port_range(4)
    for port in range(first, first + 4):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        assert compose.free_port_range(4) != first


def test_a_replaced_worker_is_recognised_in_the_log_as_uvicorn_writes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``stack.WORKER_DIED`` reads the line uvicorn's supervisor logs when it kills and replaces
    a worker; this drives that code path with a worker that no longer answers."""

    class Silent:
        pid, exitcode = 4242, None

        def is_alive(self, timeout: float) -> bool:
            return False

        def kill(self) -> None:
            pass

        def join(self) -> None:
            pass

    class Replacement:
        def __init__(self, *args: object) -> None:
            pass

        def start(self) -> None:
            pass

    supervisor = uvicorn.supervisors.multiprocess.Multiprocess.__new__(
        uvicorn.supervisors.multiprocess.Multiprocess
    )
    supervisor.config, supervisor.sockets = uvicorn.Config(app=None, log_config=None), []
    supervisor.should_exit = threading.Event()
    supervisor.processes = [Silent()]  # type: ignore[list-item]
    # read on uvicorn's logger itself: its logging config may stop propagation to the root
    uvicorn_log, kept = logging.getLogger("uvicorn.error"), BufferingHandler(capacity=100)
    uvicorn_log.addHandler(kept)
    try:
        with pytest.MonkeyPatch.context() as patch, caplog.at_level("INFO", "uvicorn.error"):
            patch.setattr(uvicorn.supervisors.multiprocess, "Process", Replacement)
            supervisor.keep_subprocess_alive()
    finally:
        uvicorn_log.removeHandler(kept)
    logged = [record.getMessage() for record in kept.buffer]
    assert [line for line in logged if stack.WORKER_DIED.search(line)] == [
        "Child process [4242] died"
    ]
    assert not stack.WORKER_DIED.search("Started server process [4242]")
