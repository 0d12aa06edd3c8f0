"""Fixtures for the checks of docker/ that need no Docker engine: the repository's Dockerfile
parsed, the dev tools installed beside the interpreter, and the session's real artifacts and
databases from ``tests/api`` for the entrypoint test."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.api.conftest import api_settings, database_url  # noqa: F401
from tests.conftest import REPO

DOCKER_DIR = REPO / "docker"
# docker/dockercheck (make docker-check) runs as `python -m dockercheck` from docker/.
sys.path.insert(0, str(DOCKER_DIR))
DOCKERFILE = DOCKER_DIR / "Dockerfile"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"


def dev_tool(name: str) -> Path:
    """A tool from the dev extras (installed beside the interpreter), else one on PATH.

    Missing, the test fails under ``CI=true`` (CI installs the dev extras, so a missing tool
    is a broken setup) and is skipped elsewhere.
    """
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: run `make install` (it is in the dev extras)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return Path(found)


@dataclass(frozen=True)
class Copy:
    """One ``COPY`` instruction: its stage, ``--from`` stage (if any), sources and destination."""

    stage: str
    from_stage: str | None
    sources: tuple[str, ...]
    destination: str


@dataclass(frozen=True)
class Image:
    """What the runtime stage of docker/Dockerfile declares."""

    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: str
    user: str
    volumes: list[str]
    copies: tuple[Copy, ...]

    @property
    def command_line(self) -> list[str]:
        """``ENTRYPOINT`` + ``CMD``: what the container runs by default."""
        return [*self.entrypoint, *self.cmd]

    def installed_from(self, destination: str) -> Path:
        """The repository file the runtime stage copies to ``destination``."""
        for copy in self.copies:
            if (copy.stage, copy.from_stage, copy.destination) == ("runtime", None, destination):
                (source,) = copy.sources
                return REPO / source
        raise AssertionError(f"nothing in the runtime stage is copied to {destination}")


def parse_dockerfile(path: Path = DOCKERFILE) -> Image:
    """Read the instructions of ``path`` with dockerfile-parse (its own ENV substitution)."""
    parser = DockerfileParser(path=str(path), env_replace=True)
    stage = ""
    copies: list[Copy] = []
    last: dict[str, str] = {}
    volumes: list[str] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            words = value.split()
            stage = words[-1] if len(words) == 3 and words[1].upper() == "AS" else ""
        elif instruction == "COPY":
            words = shlex.split(value)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            copies.append(Copy(stage, from_stage, tuple(paths[:-1]), paths[-1]))
        elif stage == "runtime":
            last[instruction] = value
            if instruction == "VOLUME":
                volumes.extend(parse_json_list(value))
    return Image(
        env=dict(parser.envs),
        entrypoint=parse_json_list(last["ENTRYPOINT"]),
        cmd=parse_json_list(last["CMD"]),
        healthcheck=last["HEALTHCHECK"],
        user=last["USER"],
        volumes=volumes,
        copies=tuple(copies),
    )


def parse_json_list(value: str) -> list[str]:
    """An exec-form (JSON array) instruction argument; shell form is refused."""
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"expected the exec (JSON array) form, got {value!r}"
    return [str(word) for word in parsed]


@pytest.fixture(scope="session")
def image() -> Image:
    """The parsed runtime stage of docker/Dockerfile."""
    return parse_dockerfile()
