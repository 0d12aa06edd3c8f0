"""Where the image's builder takes torch from: PyTorch's CPU index, or a local mirror of it.

The Dockerfile installs ``torch==<pin>`` with ``--index-url $TORCH_INDEX_URL`` (default
``https://download.pytorch.org/whl/cpu``). When that index answers, the check uses it as a
user's build would. Where it is out of reach (this project's machines reach PyPI, Debian and
npm only), the check mirrors the part the build needs: the CPU wheel this machine already has
(pip's configured ``find-links``) and torch's dependencies from PyPI, laid out as a PEP 503
"simple" index and served on loopback for the build (which then runs on the host network).
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OFFICIAL = "https://download.pytorch.org/whl/cpu"


def torch_pin(repo: Path) -> str:
    """The ``torch==X`` requirement of pyproject.toml (the Dockerfile installs the same)."""
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"(torch==[0-9][^"]*)"', text)
    if match is None:
        raise ValueError("pyproject.toml pins no torch==X")
    return match[1]


def official_reachable(timeout: float = 10.0) -> bool:
    """Whether PyTorch's CPU index answers from here."""
    try:
        with urllib.request.urlopen(f"{OFFICIAL}/torch/", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def normalized(name: str) -> str:
    """A project name as PEP 503 spells its directory."""
    return re.sub(r"[-_.]+", "-", name).lower()


def write_simple_index(wheels: Path, root: Path) -> None:
    """``root/<project>/index.html`` linking each wheel of ``wheels`` (hard links beside it)."""
    for wheel in sorted(wheels.glob("*.whl")):
        project = root / normalized(wheel.name.split("-")[0])
        project.mkdir(parents=True, exist_ok=True)
        target = project / wheel.name
        if not target.exists():
            target.hardlink_to(wheel)
        links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in sorted(project.glob("*.whl")))
        (project / "index.html").write_text(f"<!doctype html>\n{links}", encoding="utf-8")


def download_cpu_wheels(pin: str, wheels: Path) -> None:
    """torch's CPU build for ``pin`` and its dependencies, by this interpreter's pip.

    The ``+cpu`` local version is asked for explicitly, so a machine without that wheel at
    hand fails here instead of mirroring PyPI's multi-GB CUDA build.
    """
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    result = subprocess.run(
        [*command, "--dest", str(wheels), f"{pin}+cpu"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"no CPU wheel for {pin} here and {OFFICIAL} is out of reach; "
            f"set TORCH_INDEX_URL to a mirror of it.\n{result.stderr[-2000:]}"
        )


PREFERRED_PORT = 38765
"""The mirror's port when free: the URL is a build argument, and the same one on every run
lets Docker reuse the cached layers after it."""


@contextmanager
def serve(root: Path, port: int = 0) -> Iterator[str]:
    """Serve ``root`` on loopback (``port``, else a free one); yields the index URL."""
    handler = functools.partial(QuietHandler, directory=str(root.parent))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{root.name}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not worth a line each in the check's output."""


@contextmanager
def torch_index(repo: Path, cache: Path) -> Iterator[tuple[str, bool]]:
    """The ``TORCH_INDEX_URL`` for the build, and whether the build needs the host network."""
    if official_reachable():
        yield OFFICIAL, False
        return
    pin = torch_pin(repo)
    wheels = cache / "torch-wheels" / pin.replace("==", "-")
    if not any(wheels.glob("torch-*+cpu-*.whl")):
        download_cpu_wheels(pin, wheels)
    root = cache / "torch-index" / pin.replace("==", "-") / "simple"
    write_simple_index(wheels, root)
    with serve(root, PREFERRED_PORT) as url:
        yield url, True
