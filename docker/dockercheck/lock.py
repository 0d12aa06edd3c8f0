"""One check at a time per Docker engine: a lock that dies with the process holding it.

Every check uses the same names on the engine (the ``recsys-gql:check`` image, the
``recsys-gql-check`` compose project with its volumes, the labelled leftovers its clean-up
removes), so two checks against one engine break each other: the second one's ``up``
recreates the first one's containers on a Postgres volume initialised with the other run's
password, and either one's clean-up removes the other's stack. That happened when a developer's
check was still running as CI started its own on the same machine.

The lock is a container with a fixed name, which the engine grants to one creator only. It runs
``cat`` on the stdin of the ``docker run -i`` client this process holds: when this process ends,
however it ends, the client and its attach stream go, ``cat`` reads end-of-file and ``--rm``
removes the container. A crashed check therefore never leaves a lock behind for the next one.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from dockercheck.engine import LABEL, CheckFailed, Docker

NAME = "recsys-gql-check-lock"
TOKEN_LABEL = f"{LABEL}-lock.token"
"""Which run holds the lock. The container also inherits :data:`LABEL` from the stand-in base
it runs, so the check's clean-up, which removes everything carrying that label, skips it by
:data:`NAME`: the lock must outlive the clean-up."""
WAIT_SECONDS = 3600.0
"""How long a check waits for another one to finish (a whole check takes 15-25 minutes)."""
POLL_SECONDS = 5.0


class EngineLock:
    """Held between ``__enter__`` and ``__exit__``; ``image`` needs ``cat`` (the Debian base)."""

    def __init__(
        self, docker: Docker, image: str, wait_seconds: float = WAIT_SECONDS, name: str = NAME
    ) -> None:
        self.docker = docker
        self.image = image
        self.name = name
        self.wait_seconds = wait_seconds
        self.token = secrets.token_hex(8)
        self.client: subprocess.Popen[bytes] | None = None
        self.waited = 0.0

    def __enter__(self) -> EngineLock:
        started = time.monotonic()
        while True:
            if self.try_acquire():
                self.waited = time.monotonic() - started
                return self
            if time.monotonic() - started > self.wait_seconds:
                holder = self.docker.inspect("container", self.name) or {}
                since = holder.get("State", {}).get("StartedAt", "?")
                raise CheckFailed(
                    f"another docker check has held this engine since {since} (container "
                    f"{self.name}); waited {self.wait_seconds:.0f}s for it to end"
                )
            time.sleep(POLL_SECONDS)

    def try_acquire(self) -> bool:
        """Start the lock container; True once it runs with our token, False if it is taken."""
        argv = [
            self.docker.binary, "run", "-i", "--rm", "--name", self.name, "--network", "none",
            "--label", f"{TOKEN_LABEL}={self.token}",
            self.image, "cat",
        ]  # fmt: skip
        self.client = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.client.poll() is not None:  # the name was taken: "Conflict ..."
                self.client = None
                return False
            found = self.docker.inspect("container", self.name)
            if found is None:
                time.sleep(0.2)
                continue
            labels = found["Config"].get("Labels") or {}
            if labels.get(TOKEN_LABEL) == self.token and found["State"]["Running"]:
                return True
            time.sleep(0.2)
        self.release()
        raise CheckFailed(f"the lock container {self.name} did not start within 60s")

    def release(self) -> None:
        """Close the lock's stdin: ``cat`` ends and the engine removes the container."""
        if self.client is None:
            return
        assert self.client.stdin is not None
        self.client.stdin.close()
        try:
            self.client.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.client.kill()
            self.docker.run("rm", "-f", self.name, check=False, quiet=True)
        self.client = None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def self_check(docker: Docker, image: str, held: EngineLock) -> dict[str, float | bool]:
    """What the lock promises, on the real engine: while ``held`` is held a second check is
    refused, and a lock whose process is killed (SIGKILL: no clean-up runs) goes away."""
    try:
        with EngineLock(docker, image, wait_seconds=0, name=held.name):
            second_refused = False
    except CheckFailed:
        second_refused = True
    if not second_refused:
        raise CheckFailed(f"a second check took {held.name} while this one held it")
    probe = f"{NAME}-probe-{secrets.token_hex(4)}"
    holder = subprocess.Popen(
        [sys.executable, "-c", PROBE, docker.binary, image, probe],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != b"held":
        raise CheckFailed(f"the probe could not take the lock {probe}")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    killed = time.monotonic()
    while docker.inspect("container", probe) is not None:
        if time.monotonic() - killed > 60:
            docker.run("rm", "-f", probe, check=False)
            raise CheckFailed(f"the lock {probe} outlived its killed holder by 60s")
        time.sleep(0.2)
    return {"second_refused": True, "gone_after_kill_seconds": round(time.monotonic() - killed, 1)}


PROBE = """
import sys, time
from dockercheck.engine import Docker
from dockercheck.lock import EngineLock
binary, image, name = sys.argv[1:]
with open("/dev/null", "w") as log:
    lock = EngineLock(Docker(log, binary), image, wait_seconds=0, name=name).__enter__()
    print("held", flush=True)
    time.sleep(600)
"""
"""A process that takes a lock and waits to be killed (run with dockercheck importable)."""
