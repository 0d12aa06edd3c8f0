"""The Docker engine the check talks to: found running, or started here and stopped after.

Every ``docker`` call goes through :class:`Docker`, which logs the command and its output to
the check's log file, so a failure names the command and the log holds the rest. The check
never touches what it did not create: its images carry :data:`LABEL`, its containers,
networks and volumes belong to its compose project or carry that label too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LABEL = "org.recsys-gql.check"
"""Label on every image, container and volume the check creates (value: what it is)."""

ENGINE_START_SECONDS = 90.0


class CheckFailed(Exception):
    """A check did not hold; the message says which and what was seen."""


@dataclass
class Docker:
    """Runs ``docker`` (the client on PATH unless ``DOCKER`` names another) and logs it."""

    log: IO[str]
    binary: str = field(default_factory=lambda: os.environ.get("DOCKER", "docker"))

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float | None = 600,
        env: dict[str, str] | None = None,
        quiet: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS``; output captured (and logged unless ``quiet``)."""
        return self.command(
            [self.binary, *args], check=check, timeout=timeout, env=env, quiet=quiet
        )

    def command(
        self,
        argv: list[str],
        *,
        check: bool = True,
        timeout: float | None = 600,
        env: dict[str, str] | None = None,
        quiet: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Any command, logged like a docker one (compose, debootstrap, ...)."""
        self.log.write(f"\n$ {' '.join(argv)}\n")
        self.log.flush()
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0", **(env or {})},
        )
        if not quiet:
            self.log.write(result.stdout + result.stderr)
        self.log.write(f"[exit {result.returncode}]\n")
        self.log.flush()
        if check and result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise CheckFailed(
                f"`{' '.join(argv[:4])} ...` exited {result.returncode}:\n" + "\n".join(tail)
            )
        return result

    def inspect(self, kind: str, name: str) -> dict[str, Any] | None:
        """``docker KIND inspect NAME`` as a dict, or None when there is no such object."""
        result = self.run(kind, "inspect", name, check=False, quiet=True)
        if result.returncode != 0:
            return None
        loaded: list[dict[str, Any]] = json.loads(result.stdout)
        return loaded[0]

    def has_image(self, reference: str) -> bool:
        """Whether the engine holds ``reference`` locally."""
        return self.inspect("image", reference) is not None


class Engine:
    """A reachable Docker engine for the check's duration.

    An engine already running is used as it is. Otherwise, with ``dockerd`` installed and
    root, one is started and stopped on exit. dockerd picks its storage driver (overlay2 where
    the file system allows, as on this project's machines; it falls back down to vfs, which
    copies every layer whole and is several times slower); ``DOCKER_CHECK_STORAGE_DRIVER``
    forces one.
    """

    def __init__(self, docker: Docker, workdir: Path) -> None:
        self.docker = docker
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Engine:
        if self.docker.run("info", check=False, quiet=True).returncode == 0:
            return self
        dockerd = shutil.which("dockerd")
        if dockerd is None or os.geteuid() != 0:
            raise CheckFailed(
                "no Docker engine answers, and none can be started here: install one "
                "(Debian: apt-get install docker.io) and run this as root, or start dockerd"
            )
        driver = os.environ.get("DOCKER_CHECK_STORAGE_DRIVER")
        options = [f"--storage-driver={driver}"] if driver else []
        log = (self.workdir / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            [dockerd, *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ENGINE_START_SECONDS
        while self.docker.run("info", check=False, quiet=True).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise CheckFailed(f"dockerd did not start; see {self.workdir / 'dockerd.log'}")
            time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
