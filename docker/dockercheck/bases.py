"""Stand-in base images, built from Debian packages when the engine has none of them.

No image registry is reachable where the check runs, so ``python:3.11-slim-bookworm``,
``node:22-bookworm-slim``, ``postgres:17-bookworm`` and ``redis:7.4-alpine`` cannot be pulled.
``debootstrap`` lays out a Debian bookworm root file system, ``docker import`` makes it an
image, and the Dockerfiles in docker/check/standins add Python 3.11, Node.js, PostgreSQL and
Redis to it. Each is built only when missing, so a second run reuses them; docs/docker.md
lists how they differ from the official images.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockercheck.engine import LABEL, CheckFailed, Docker

STANDINS = Path(__file__).resolve().parent.parent / "check" / "standins"
DEBIAN = "recsys-gql-check/debian:bookworm"
MIRROR = "http://deb.debian.org/debian"
SOURCES = (
    f"deb {MIRROR} bookworm main\n"
    f"deb {MIRROR} bookworm-updates main\n"
    "deb http://deb.debian.org/debian-security bookworm-security main\n"
)
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""
"""The apt settings Debian's official images carry (docker-clean): without them every
``apt-get update`` leaves some 80 MB of package caches in the layer, which the official
bases of the project's image would not."""
RECIPE = "2"
"""Bumped when the stand-ins' recipe changes: bases of another recipe are rebuilt."""
LOCAL_AUTHORITIES = Path("/usr/local/share/ca-certificates")
"""Certificate authorities this machine added to Debian's; the stand-ins trust them too, so
their package clients get through the same network as the host's."""


@dataclass(frozen=True)
class Bases:
    """The image references the check builds with and runs."""

    python: str = "recsys-gql-check/python:3.11-bookworm"
    node: str = "recsys-gql-check/node:bookworm"
    postgres: str = "recsys-gql-check/postgres:15-bookworm"
    redis: str = "recsys-gql-check/redis:7.0-bookworm"


def ensure_debian(docker: Docker, workdir: Path) -> bool:
    """The Debian bookworm base image; returns whether it had to be built."""
    found = docker.inspect("image", DEBIAN)
    if found and (found["Config"].get("Labels") or {}).get(f"{LABEL}.recipe") == RECIPE:
        return False
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise CheckFailed("debootstrap is missing (Debian: apt-get install debootstrap)")
    rootfs = workdir / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    docker.command(
        [debootstrap, "--variant=minbase", "bookworm", str(rootfs), MIRROR], timeout=1800
    )
    (rootfs / "etc/apt/sources.list").write_text(SOURCES, encoding="utf-8")
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN, encoding="utf-8")
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    authorities = rootfs / LOCAL_AUTHORITIES.relative_to("/")
    authorities.mkdir(parents=True, exist_ok=True)
    for crt in LOCAL_AUTHORITIES.glob("*.crt"):
        shutil.copy2(crt, authorities / crt.name)
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
    )
    imported = subprocess.run(
        [
            docker.binary, "import",
            "--change", f"LABEL {LABEL}=base",
            "--change", f"LABEL {LABEL}.recipe={RECIPE}",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["bash"]',
            "-", DEBIAN,
        ],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )  # fmt: skip
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    if imported.returncode != 0 or tar.returncode != 0:
        raise CheckFailed(f"docker import of the Debian root file system failed: {imported.stderr}")
    return True


def node_context(workdir: Path) -> Path:
    """A build context holding this machine's ``node`` binary and npm, for node.Dockerfile.

    Debian bookworm's Node.js is 18; the page's build tools need 20.19+, which is what this
    machine runs ``make web`` with, so that Node.js is what the stand-in gets.
    """
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise CheckFailed("node and npm are needed on this machine (Node.js 20.19+)")
    npm_package = Path(npm).resolve().parent.parent  # .../node_modules/npm/bin/npm-cli.js
    context = workdir / "node-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copy2(Path(node).resolve(), context / "node")
    shutil.copytree(npm_package, context / "npm", symlinks=True)
    shutil.copy2(STANDINS / "node.Dockerfile", context / "Dockerfile")
    return context


def node_version() -> str:
    """This machine's Node.js version without the ``v`` (the stand-in's label says it)."""
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().lstrip("v")


def ensure_bases(docker: Docker, workdir: Path, bases: Bases) -> list[str]:
    """Build whichever stand-in is missing; returns the references built this time."""
    if not recipe_current(docker):
        remove_bases(docker, bases)
    built = [DEBIAN] if ensure_debian(docker, workdir) else []
    wanted = {
        bases.python: ("python.Dockerfile", STANDINS),
        bases.postgres: ("postgres.Dockerfile", STANDINS),
        bases.redis: ("redis.Dockerfile", STANDINS),
    }
    for reference, (dockerfile, context) in wanted.items():
        if not docker.has_image(reference):
            docker.run(
                "build", "--label", f"{LABEL}=base", "--build-arg", f"DEBIAN_IMAGE={DEBIAN}",
                "-f", str(context / dockerfile), "-t", reference, str(context),
                timeout=1800,
            )  # fmt: skip
            built.append(reference)
    if stale_node(docker, bases):
        docker.run("rmi", bases.node)
    if not docker.has_image(bases.node):
        context = node_context(workdir)
        docker.run(
            "build", "--label", f"{LABEL}=base", "--label", f"{LABEL}.node={node_version()}",
            "--build-arg", f"DEBIAN_IMAGE={DEBIAN}", "-t", bases.node, str(context),
            timeout=1800,
        )  # fmt: skip
        shutil.rmtree(context, ignore_errors=True)
        built.append(bases.node)
    return built


def remove_bases(docker: Docker, bases: Bases) -> None:
    """Remove the stand-ins (``make docker-check-clean``); other images are untouched."""
    for reference in (bases.python, bases.node, bases.postgres, bases.redis, DEBIAN):
        image = docker.inspect("image", reference)
        if image and (image["Config"].get("Labels") or {}).get(LABEL) == "base":
            docker.run("rmi", reference, check=False)


def stale_node(docker: Docker, bases: Bases) -> bool:
    """Whether the node stand-in holds another Node.js than this machine now runs."""
    image = docker.inspect("image", bases.node)
    if image is None:
        return False
    labels = image["Config"].get("Labels") or {}
    return bool(labels.get(f"{LABEL}.node") != node_version())


def recipe_current(docker: Docker) -> bool:
    """Whether the Debian base (if any) was made by this recipe; the others derive from it."""
    found = docker.inspect("image", DEBIAN)
    if found is None:
        return True
    return bool((found["Config"].get("Labels") or {}).get(f"{LABEL}.recipe") == RECIPE)
