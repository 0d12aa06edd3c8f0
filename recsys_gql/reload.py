"""Switch a running server to the run ``artifacts/current`` points at, without a failed request.

**When.** On ``SIGHUP``. ``recsys-gql train`` flips ``current`` atomically once a run is
complete; the operator (or the deploy script, or ``docker kill -s HUP``) then signals the
server. A signal rather than a file watch: the switch happens when someone asks for it (after
``db init`` has loaded new data, say, never halfway through a manual copy of a run), costs
nothing while nothing changes, and is the convention of long-running daemons. Under
``--workers N`` uvicorn's supervisor receives it and passes it on to every worker
(:class:`~recsys_gql.serving.ReloadingMultiprocess`); each worker reloads by itself.

**How, in each process.** The new run is verified and loaded in a worker thread while the old
one serves (:meth:`Reloader.reload`); it is checked against the database
(:func:`~recsys_gql.api.served_run.open_run`); then one assignment swaps the served run. A
request takes the served run when it starts and keeps it to its end, so requests in flight
finish on the old run and every new one gets the new run: none fails. A run that fails any check is
refused, logged with the reason and counted (``recsys_gql_reloads_total{outcome="refused"}``),
and the old run keeps serving. The query encoder is handed over when both runs embedded their
movies with the same model, so a reload does not load it again.

**Memory.** The old run is let go as soon as no request can hold it: after the request timeout
(no request lives longer) its search batcher is closed, and the last references go. Its arrays
are freed then; the allocator is asked to return the freed memory to the system
(``malloc_trim``), so a process holds one model's worth again.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import signal
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool

from recsys_gql.api.served_run import ServedRun, open_run
from recsys_gql.artifacts import read_manifest
from recsys_gql.db.session import Database
from recsys_gql.metrics.hooks import engine_stage
from recsys_gql.metrics.registry import RELOADS, SERVED_RUN
from recsys_gql.readiness import load_current
from recsys_gql.recsys.engine import Engine
from recsys_gql.settings import Settings

__all__ = ["ReloadResult", "Reloader", "load_engine"]

log = logging.getLogger("recsys_gql.reload")

Outcome = Literal["loaded", "unchanged", "refused"]


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: the outcome, the run served afterwards, and why when refused."""

    outcome: Outcome
    run_id: str
    reason: str | None = None


def load_engine(settings: Settings, previous: Engine | None = None) -> Engine:
    """Verify and load ``<artifacts_dir>/current`` (raises ``ArtifactError`` when damaged);
    ``previous``'s loaded query encoder is reused when it is the one the new run needs."""
    encoder = previous.loaded_encoder if previous is not None else None
    if encoder is not None and previous is not None:
        manifest = read_manifest((settings.artifacts_dir / "current").resolve())
        if manifest.models.get("embedding_key") != previous.manifest.models.get("embedding_key"):
            encoder = None  # another model: the new engine loads its own on first use
    engine = load_current(settings, encoder)
    engine.stage_timer = engine_stage
    return engine


class Reloader:
    """Holds the run a process serves and replaces it on request (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        served: ServedRun,
        wrap_engine: Callable[[Engine], Engine] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.served = served
        """The run new requests are served from."""
        self.wrap_engine = wrap_engine
        """Applied to each new engine (tracing's spans around its calls), when given."""
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        SERVED_RUN.labels(served.run_id).inc()

    async def reload(self) -> ReloadResult:
        """Serve ``artifacts/current`` if it is another run and passes every check; otherwise
        keep the served run. One reload at a time."""
        async with self._lock:
            old = self.served
            target = (self.settings.artifacts_dir / "current").resolve()
            if target == old.engine.directory:
                RELOADS.labels("unchanged").inc()
                log.info("reload: %s is already served", target.name)
                return ReloadResult("unchanged", old.run_id)
            try:
                engine = await run_in_threadpool(load_engine, self.settings, old.engine)
                if self.wrap_engine is not None:
                    engine = self.wrap_engine(engine)
                new = await open_run(engine, self.database, self.settings)
            except Exception as exc:  # whatever is wrong with the new run, the old one serves
                reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                RELOADS.labels("refused").inc()
                log.error("reload refused, still serving run %s: %s", old.run_id, reason)
                return ReloadResult("refused", old.run_id, reason)
            self.served = new  # requests from now on; those in flight keep ``old``
            SERVED_RUN.labels(new.run_id).inc()
            SERVED_RUN.labels(old.run_id).dec()
            RELOADS.labels("loaded").inc()
            log.info("reloaded: serving run %s (was %s)", new.run_id, old.run_id)
            self._spawn(self._retire(old))
            return ReloadResult("loaded", new.run_id)

    async def _retire(self, old: ServedRun) -> None:
        """Let ``old`` go once no request can still be using it."""
        await asyncio.sleep(self.settings.request_timeout_seconds + 1)
        await old.close()
        del old
        await run_in_threadpool(_return_freed_memory)

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_signal(self) -> None:
        """Start a reload (the ``SIGHUP`` handler)."""
        log.info("SIGHUP: reloading %s", self.settings.artifacts_dir / "current")
        self._spawn(self.reload())

    def listen(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Reload on ``SIGHUP`` from now on; ``False`` when this thread cannot take signals
        (an app run outside the main thread, as in tests)."""
        try:
            loop.add_signal_handler(signal.SIGHUP, self.on_signal)
        except (RuntimeError, ValueError, NotImplementedError):
            return False
        return True

    async def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop listening, end pending retirements and stop counting this process's run."""
        with suppress(RuntimeError, ValueError, NotImplementedError):
            loop.remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        SERVED_RUN.labels(self.served.run_id).dec()


def _return_freed_memory() -> None:
    """Ask glibc to give freed heap memory back to the system (nothing elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
