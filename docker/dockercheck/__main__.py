"""``python -m dockercheck`` (``make docker-check``): the whole check, then its clean-up.

Options:
  --image-only    build the bases and the image and run the image checks, not the stack
  --keep-image    leave the built image (``recsys-gql:check``) for the next run to reuse
  --remove-bases  remove the stand-in base images and the check's cache, and stop

It needs ``RECSYS_GQL_DATA_SOURCE`` (a local MovieLens copy, mounted read-only into the
containers: nothing is downloaded at run time) and a Docker engine (started here when one is
installed but not running). The stand-in bases are kept between runs; everything else the run
created (containers, the compose project with its volumes and network, the image unless
--keep-image) is removed when it ends, whether it passed or not.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from dockercheck import bases, compose, image, lock, stack, torch_index
from dockercheck.engine import LABEL, CheckFailed, Docker, Engine
from dockercheck.report import Report

REPO = Path(__file__).resolve().parents[2]
TAG = "check"
IMAGE = f"recsys-gql:{TAG}"
PREFIX = "recsys-gql-check-"
RESULTS = REPO / "bench" / "results"


def main() -> int:
    """Run the check; 0 when every part held."""
    options = parse_args()
    # Stopped (SIGTERM, or SIGINT even where a shell started it ignoring SIGINT), it still
    # cleans up: the signal becomes an exception, and the finally blocks below run.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    workdir = REPO / "build" / "docker-check"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recsys-gql-docker"
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "check.log").open("w", encoding="utf-8") as log:
        docker = Docker(log)
        # The lock (taken in run()) is released only after the clean-up in the finally below.
        with Engine(docker, workdir), contextlib.ExitStack() as held:
            if options.remove_bases:
                clean_up(docker, keep_image=False)
                bases.remove_bases(docker, bases.Bases())
                shutil.rmtree(cache, ignore_errors=True)
                return 0
            report = Report(REPO, " ".join(["python -m dockercheck", *sys.argv[1:]]))
            outcome = "failed"
            before = anonymous_volumes(docker)
            cleanups: list[Callable[[], None]] = [
                functools.partial(remove_new_anonymous_volumes, docker, before)
            ]
            try:
                run(docker, report, workdir, cache, options, cleanups, held)
                outcome = "passed"
            except CheckFailed as failure:
                print(f"FAILED: {failure}\n(full log: {workdir / 'check.log'})", file=sys.stderr)
            finally:
                with report.phase("clean up"):
                    for cleanup in cleanups:
                        cleanup()
                    clean_up(docker, options.keep_image)
                name = "docker_image_check" if options.image_only else "docker_check"
                report.write(RESULTS / f"{name}.json", outcome)
            return 0 if outcome == "passed" else 1


def interrupted(signum: int, frame: object) -> None:
    """Turn a stop signal into an exception in the main thread."""
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def parse_args() -> argparse.Namespace:
    """The options in this module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m dockercheck", description=__doc__)
    parser.add_argument("--image-only", action="store_true")
    parser.add_argument("--keep-image", action="store_true")
    parser.add_argument("--remove-bases", action="store_true")
    return parser.parse_args()


def data_source() -> Path:
    """The local MovieLens copy the containers read (never a download)."""
    value = os.environ.get("RECSYS_GQL_DATA_SOURCE")
    if not value or not Path(value).exists():
        raise CheckFailed(
            "set RECSYS_GQL_DATA_SOURCE to a local MovieLens copy (e.g. ../shared/data): "
            "the containers read it from a read-only mount and never download"
        )
    return Path(value).resolve()


def run(
    docker: Docker,
    report: Report,
    workdir: Path,
    cache: Path,
    options: argparse.Namespace,
    cleanups: list[Callable[[], None]],
    held: contextlib.ExitStack,
) -> None:
    """The phases, in order; each raises CheckFailed when what it checks does not hold.

    Everything after the stand-in bases runs under the engine lock (``held`` releases it),
    starting from an engine without anything an earlier, killed check left behind.

    The stack runs before the image's own run-time checks so that those train with the
    embedding cache the stack's train filled (one cold encoding per run instead of two).
    """
    source = data_source()
    standins = bases.Bases()
    versions = docker.run("version", "--format", "{{.Server.Version}} {{.Client.Version}}")
    info = docker.run("info", "--format", "{{.Driver}}").stdout.strip()
    report.result("engine", {"server_client": versions.stdout.strip(), "storage": info})
    with report.phase("stand-in bases"):
        report.result("bases_built", bases.ensure_bases(docker, workdir, standins))
        report.result("base_mb", base_sizes(docker, standins))
    with report.phase("engine lock, leftovers of earlier checks"):
        engine_lock = held.enter_context(lock.EngineLock(docker, bases.DEBIAN))
        report.result("lock_waited_seconds", round(engine_lock.waited, 1))
        report.result("lock", lock.self_check(docker, bases.DEBIAN, engine_lock))
        report.result("leftovers_removed", remove_check_objects(docker))
    with report.phase("build image"), torch_index.torch_index(REPO, cache) as (url, host):
        report.result("torch_index", url)
        image.build(docker, REPO, standins, IMAGE, url, host)
    with report.phase("image: user, contents, size"):
        report.result("image", image.static_checks(docker, IMAGE))
    embedding_cache = PREFIX + "cache"
    if not options.image_only:
        project = compose.Project(
            docker,
            REPO,
            workdir,
            compose.compose_binary(cache / "compose"),
            stack.check_settings(TAG),
            stack.override_variables(source, standins.postgres, standins.redis),
        )
        cleanups.append(functools.partial(stop_project, project, workdir))
        run_stack(report, project)
        embedding_cache = f"{compose.PROJECT}_cache"
    with report.phase("image: train without compose"):
        seconds = image.train(docker, IMAGE, PREFIX, source, embedding_cache)
        report.result("train_seconds", round(seconds, 1))
    with report.phase("image: serve until HEALTHCHECK passes"):
        report.result("serve", image.serve_until_healthy(docker, IMAGE, PREFIX))
    with report.phase("image: entrypoint refuses missing and damaged artifacts"):
        report.result("refusals", image.refusals(docker, IMAGE, PREFIX))


def run_stack(report: Report, project: compose.Project) -> None:
    """docker/compose.yaml, up for real, through its failures and a restart."""
    report.result("compose", project.run("version", "--short").strip())
    running = stack.Stack(project)
    try:
        stack_phases(report, running)
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}\n{running.api_diagnosis()}") from failure
    project.down()


def stack_phases(report: Report, running: stack.Stack) -> None:
    """The stack's phases, in order."""
    with report.phase("stack: up (train, then 2 api replicas)"):
        report.result("stack_up", running.up())
    with report.phase("stack: rating through A, recommendations from B"):
        report.result("across_replicas", running.rating_crosses_replicas())
    with report.phase("stack: write limit across replicas"):
        report.result("rate_limit", running.limit_holds_across_replicas())
    with report.phase("stack: memory per replica"):
        report.result("replica_search_and_memory", running.memory())
    with report.phase("stack: kill one api replica"):
        report.result("replica_killed", running.replica_killed())
    with report.phase("stack: kill Redis, fail-open"):
        report.result("redis_fail_open", running.redis_killed(fail_open=True))
    with report.phase("stack: no worker died"):
        report.result("api_log_lines", running.no_worker_died())
    with report.phase("stack: down + up keeps every rating"):
        report.result("down_up", running.down_up_keeps_ratings())
    with report.phase("stack: kill Redis, fail-closed"):
        running.fail_closed()
        report.result("redis_fail_closed", running.redis_killed(fail_open=False))


def stop_project(project: compose.Project, workdir: Path) -> None:
    """Keep the stack's logs beside the check's, then remove it with its volumes."""
    logs = project.run("logs", "--no-color", check=False)
    (workdir / "compose.log").write_text(logs, encoding="utf-8")
    project.down("--volumes")


def base_sizes(docker: Docker, standins: bases.Bases) -> dict[str, int]:
    """Size of each stand-in in MB."""
    sizes = {}
    for reference in (bases.DEBIAN, standins.python, standins.node, standins.postgres,
                      standins.redis):  # fmt: skip
        found = docker.inspect("image", reference)
        sizes[reference] = round(found["Size"] / 1e6) if found else 0
    return sizes


def anonymous_volumes(docker: Docker) -> set[str]:
    """Unnamed volumes attached to no container (Docker names them with 64 hex digits)."""
    found = docker.run("volume", "ls", "-q", "--filter", "dangling=true", quiet=True)
    return {name for name in found.stdout.split() if re.fullmatch(r"[0-9a-f]{64}", name)}


def remove_new_anonymous_volumes(docker: Docker, before: set[str]) -> None:
    """The image's VOLUMEs that this run's containers left unnamed and unused (a volume
    cannot carry a label unless named); those that existed before the run are kept."""
    new = sorted(anonymous_volumes(docker) - before)
    if new:
        docker.run("volume", "rm", *new, check=False)


OBJECTS = (
    ("container", ["ps", "--all", "--format", "{{.Names}}"], ["rm", "--force"]),
    ("volume", ["volume", "ls", "--format", "{{.Name}}"], ["volume", "rm", "--force"]),
    ("network", ["network", "ls", "--format", "{{.Name}}"], ["network", "rm"]),
)
"""Each kind of leftover: how to list it and how to remove it, in an order that frees the
volumes and networks (containers first)."""


def remove_check_objects(docker: Docker) -> list[str]:
    """The check's containers, volumes and networks (its label, or its compose project's),
    except the engine lock it holds; returns what was removed.

    Run first, it removes what a check that ended before its clean-up (killed, or its
    machine stopped) left behind: a stale Postgres volume keeps the password of the run that
    created it, and compose would recreate the containers on it, so the next ``train`` could
    not log in.
    """
    owners = [f"label={LABEL}", f"label=com.docker.compose.project={compose.PROJECT}"]
    removed: list[str] = []
    for kind, listing, removal in OBJECTS:
        found = {
            name
            for owner in owners
            for name in docker.run(*listing, "--filter", owner, quiet=True).stdout.split()
        }
        # The lock runs the stand-in Debian base, whose label containers inherit.
        names = sorted(found - {lock.NAME})
        if names:
            docker.run(*removal, *names, check=False)
            removed.extend(f"{kind} {name}" for name in names)
    return removed


def clean_up(docker: Docker, keep_image: bool) -> None:
    """Remove what this run created: its containers, volumes and networks, then the image."""
    remove_check_objects(docker)
    if keep_image:
        return
    docker.run("rmi", IMAGE, check=False, quiet=True)
    # The build's other stages (web, builder) and earlier builds of the image: untagged images
    # that inherit the stand-ins' label, so they can only be the check's own.
    docker.run("image", "prune", "-f", "--filter", f"label={LABEL}", check=False)


if __name__ == "__main__":
    sys.exit(main())
