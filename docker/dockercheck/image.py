"""The image: built as a user builds it (bar the base images), then checked as shipped.

Static checks read the image's configuration and its file system: a numeric non-root user,
no data, artifacts, source tree or package caches inside, its size. Run-time checks use the
"Without compose" path of docs/docker.md: train into volumes with the image's own
``recsys-gql``, serve from them until Docker's own ``HEALTHCHECK`` reports healthy, then
start the entrypoint on a damaged copy of the artifacts and on none, which it must refuse
with a clear message.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockercheck.bases import Bases
from dockercheck.compose import PROJECT
from dockercheck.engine import LABEL, CheckFailed, Docker
from dockercheck.graphql import Client

USER = "10001:10001"
STATE = "/var/lib/recsys-gql"
CACHE = "/var/cache/recsys-gql"
FORBIDDEN_NAMES = ("ratings.csv", "movies.csv", "links.csv", "tags.csv", "overviews.csv",
                   "recsys.db", "ml-latest-small", "item_factors.npy", "content.faiss", ".env",
                   ".git", "node_modules.installed")  # fmt: skip
"""Names of data, artifacts and secrets that must not be anywhere in the image."""
NATIVE_MODULES = ("implicit.cpu._als", "faiss", "scipy.sparse.linalg", "sklearn.neighbors",
                  "onnxruntime", "asyncpg", "torch")  # fmt: skip
HEALTHY_TIMEOUT = 360.0
TRAIN = "recsys-gql data fetch && recsys-gql train --if-stale --quiet && recsys-gql db init"
SOURCE_MOUNT = "/srv/movielens"


def build(
    docker: Docker, repo: Path, bases: Bases, tag: str, torch_url: str, host_network: bool
) -> None:
    """``docker build -f docker/Dockerfile`` from the repository root, bases as build args."""
    network = ["--network", "host"] if host_network else []
    docker.run(
        "build", "-f", str(repo / "docker/Dockerfile"), "--label", f"{LABEL}=image",
        "--build-arg", f"PYTHON_IMAGE={bases.python}", "--build-arg", f"NODE_IMAGE={bases.node}",
        "--build-arg", f"TORCH_INDEX_URL={torch_url}", *network, "-t", tag, str(repo),
        timeout=3600,
    )  # fmt: skip


def static_checks(docker: Docker, tag: str) -> dict[str, Any]:
    """Configuration and file system of the built image; returns its sizes."""
    image = docker.inspect("image", tag)
    assert image is not None
    config = image["Config"]
    if config["User"] != USER:
        raise CheckFailed(f"the image runs as {config['User']!r}, not {USER}")
    uid = docker.run("run", "--rm", "--entrypoint", "id", tag, "-u").stdout.strip()
    if uid != USER.split(":")[0]:
        raise CheckFailed(f"a container of the image runs as uid {uid}")
    if config["Healthcheck"]["Test"] != ["CMD", "docker-healthcheck"]:
        raise CheckFailed(f"unexpected HEALTHCHECK {config['Healthcheck']}")
    env = dict(item.split("=", 1) for item in config["Env"])
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if env.get(name) != "1":
            raise CheckFailed(f"{name} is {env.get(name)!r} in the image, not 1")
    # Each native extension on its own, in a fresh interpreter: a library that another one
    # happens to load first (torch's OpenMP runtime) must not be what makes it import.
    for module in NATIVE_MODULES:
        docker.run("run", "--rm", "--entrypoint", "python", tag, "-c", f"import {module}")
    encoder = query_encoder_in(docker, tag)
    names = " -o ".join(f"-name '{name}'" for name in FORBIDDEN_NAMES)
    found = docker.run(
        "run", "--rm", "--user", "0:0", "--entrypoint", "sh", tag, "-c",
        f"find {STATE} {CACHE} -mindepth 2 -not -path '{CACHE}/onnx*'; "
        f"find / -xdev \\( {names} \\) -print; "
        "ls -d /src /root/.cache /root/.npm /tmp/requirements.txt 2>/dev/null; true",
    ).stdout.split()  # fmt: skip
    if found:
        raise CheckFailed(f"the image holds data, artifacts or build leftovers: {found[:20]}")
    history = docker.run("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout
    largest = docker.run(
        "run", "--rm", "--entrypoint", "sh", tag, "-c",
        "du -sm /opt/venv/lib/python3*/site-packages/* | sort -rn | head -8",
    ).stdout  # fmt: skip
    return {
        "query_encoder": encoder,
        "image_mb": round(image["Size"] / 1e6),
        "layers": len(image["RootFS"]["Layers"]),
        "layer_sizes": [line[:100] for line in history.splitlines() if not line.startswith("0B")],
        "largest_packages_mb": dict(
            (line.split()[1].rsplit("/", 1)[-1], int(line.split()[0]))
            for line in largest.splitlines()
        ),
    }


def query_encoder_in(docker: Docker, tag: str) -> str:
    """The ONNX query encoder built into the image for the default ``search_encoder``
    (onnx-int8), found by the encoder a server builds, without exporting it (so without
    torch): a worker that had to export it would hold the interpreter long enough for
    uvicorn's supervisor to kill it."""
    probe = (
        "import sys; from recsys_gql.recsys.content import SentenceEncoder; "
        "model = SentenceEncoder(backend='onnx-int8').export(); "
        "print(model, 'torch' in sys.modules)"
    )
    out = docker.run("run", "--rm", "--entrypoint", "python", tag, "-c", probe).stdout.split()
    if len(out) != 2 or not out[0].startswith(f"{CACHE}/onnx/") or out[1] != "False":
        raise CheckFailed(f"the image has no ready ONNX query encoder: {out}")
    return out[0]


def volume(docker: Docker, name: str) -> str:
    """Create a labelled volume (or reuse the check's own) and return its name."""
    docker.run("volume", "create", "--label", f"{LABEL}=volume", name)
    return name


def train(docker: Docker, tag: str, prefix: str, source: Path, embedding_cache: str) -> float:
    """The "Without compose" training of docs/docker.md, into the check's volumes; seconds taken.

    ``embedding_cache`` is the volume of sentence embeddings (the compose stack's, filled by
    its train, when the stack ran first): only the encoding is then skipped.
    """
    if not embedding_cache.startswith(f"{PROJECT}_"):
        volume(docker, embedding_cache)
    started = time.monotonic()
    docker.run(
        "run", "--rm", "--no-healthcheck", "--label", f"{LABEL}=container",
        "-v", f"{volume(docker, prefix + 'data')}:{STATE}/data",
        "-v", f"{volume(docker, prefix + 'artifacts')}:{STATE}/artifacts",
        "-v", f"{embedding_cache}:/var/cache/recsys-gql",
        "-v", f"{source}:{SOURCE_MOUNT}:ro", "-e", f"RECSYS_GQL_DATA_SOURCE={SOURCE_MOUNT}",
        "-e", "OMP_NUM_THREADS=2", tag, "sh", "-c", TRAIN,
        timeout=3600,
    )  # fmt: skip
    return time.monotonic() - started


def serve_until_healthy(docker: Docker, tag: str, prefix: str) -> dict[str, Any]:
    """Serve from the trained volumes until Docker reports the container healthy."""
    name = prefix + "serve"
    docker.run("rm", "-f", name, check=False, quiet=True)
    started = time.monotonic()
    docker.run(
        "run", "-d", "--name", name, "--label", f"{LABEL}=container", "-p", "127.0.0.1::8000",
        "-v", f"{prefix}data:{STATE}/data", "-v", f"{prefix}artifacts:{STATE}/artifacts:ro",
        tag,
    )  # fmt: skip
    try:
        client = Client(published_url(docker, name))
        ready_after = client.wait_ready(HEALTHY_TIMEOUT, lambda: running(docker, name))
        healthy_after = wait_healthy(docker, name, started)
        title = client.query("{ movie(id: 1) { title } }")["movie"]["title"]
        if title != "Toy Story":
            raise CheckFailed(f"movie 1 is {title!r} in the served catalog")
        first_search = client.first_search(HEALTHY_TIMEOUT)
        memory = memory_mb(docker, name)
    finally:
        logs = docker.run("logs", name, check=False, quiet=True)
        docker.log.write(logs.stdout[-5000:] + logs.stderr[-5000:])
        docker.run("rm", "-f", name, check=False, quiet=True)
    return {
        "ready_seconds": round(ready_after, 1),
        "healthy_seconds": round(healthy_after, 1),
        "first_search_seconds": round(first_search, 1),
        "memory_mb_two_workers_after_search": memory,
    }


def published_url(docker: Docker, container: str, port: int = 8000) -> str:
    """``http://127.0.0.1:N`` where ``container``'s ``port`` is published."""
    out = docker.run("port", container, f"{port}/tcp").stdout.split()[0]
    return f"http://{out}"


def running(docker: Docker, container: str) -> bool:
    """Whether the container is still running (a server that exited will never be ready)."""
    state = docker.inspect("container", container)
    return bool(state and state["State"]["Running"])


def wait_healthy(docker: Docker, container: str, started: float) -> float:
    """Until the image's HEALTHCHECK has passed (Docker's health status): seconds since
    ``started``. Gives up ``HEALTHY_TIMEOUT`` seconds after the container itself started."""
    health: dict[str, Any] = {}
    while True:
        state = docker.inspect("container", container)
        if state is None or not state["State"]["Running"]:
            raise CheckFailed(f"{container} stopped before it was healthy")
        health = state["State"].get("Health") or {}
        if health.get("Status") == "healthy":
            return time.monotonic() - started
        up_since = datetime.fromisoformat(state["State"]["StartedAt"][:26].rstrip("Z"))
        if (datetime.now(UTC).replace(tzinfo=None) - up_since).total_seconds() > HEALTHY_TIMEOUT:
            log = (health.get("Log") or [{}])[-1]
            raise CheckFailed(f"{container} not healthy after {HEALTHY_TIMEOUT:.0f}s: {log}")
        time.sleep(2)


def memory_mb(docker: Docker, container: str) -> float:
    """The container's memory use now, in MB (``docker stats``)."""
    usage = docker.run("stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout
    value = usage.split("/")[0].strip()
    units = {"KiB": 1024 / 1e6, "MiB": 1024**2 / 1e6, "GiB": 1024**3 / 1e6, "B": 1e-6}
    for unit, scale in units.items():
        if value.endswith(unit):
            return round(float(value.removesuffix(unit)) * scale, 1)
    raise CheckFailed(f"unreadable docker stats: {usage!r}")


def refusals(docker: Docker, tag: str, prefix: str) -> dict[str, str]:
    """The entrypoint on no artifacts and on damaged ones: exit 78 and a message naming why."""
    empty = volume(docker, prefix + "empty")
    none = docker.run(
        "run", "--rm", "--label", f"{LABEL}=container", "-v", f"{empty}:{STATE}/artifacts", tag,
        check=False,
    )  # fmt: skip
    expect_refusal(none.returncode, none.stderr, "no artifacts", "refusing to start")
    damaged = volume(docker, prefix + "damaged")
    docker.run(
        "run", "--rm", "--user", "0:0", "--label", f"{LABEL}=container",
        "-v", f"{prefix}artifacts:/from:ro", "-v", f"{damaged}:/to", "--entrypoint", "sh", tag,
        "-c", "cp -a /from/. /to/ && printf '\\000\\000\\200\\177' | "
        "dd of=/to/current/item_factors.npy bs=1 seek=$(($(stat -c %s "
        "/to/current/item_factors.npy) - 4)) conv=notrunc status=none",
    )  # fmt: skip
    refused = docker.run(
        "run", "--rm", "--label", f"{LABEL}=container", "-v", f"{damaged}:{STATE}/artifacts:ro",
        tag, check=False,
    )  # fmt: skip
    expect_refusal(refused.returncode, refused.stderr, "damaged artifacts", "item_factors.npy")
    return {"no_artifacts": last_lines(none.stderr), "damaged": last_lines(refused.stderr)}


def expect_refusal(code: int, stderr: str, case: str, needle: str) -> None:
    """Exit 78 with ``needle`` and the entrypoint's own refusal in the message."""
    if code != 78 or needle not in stderr or "docker-entrypoint: refusing to start" not in stderr:
        raise CheckFailed(f"{case}: expected exit 78 naming {needle!r}, got {code}: {stderr}")


def last_lines(text: str, count: int = 4) -> str:
    """What a user sees at the end of ``docker logs``."""
    return "\n".join(text.strip().splitlines()[-count:])
