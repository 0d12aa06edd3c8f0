"""What this machine allows the engine-bound targets, measured in the same run as the load.

Issue 19 asks one worker for uncached recommendations at half of ``__typename``'s rate, and two
workers for 1.7× one worker's ``mixed``. Whether a miss is the code's or the machine's is
arithmetic on three figures of one run:

- **the engine's default call**, in its own process with nothing around it: the four arms, the
  ranking stage and MMR at the API's default diversity, one call at a time on one BLAS thread
  (as the server runs it), for users drawn uniformly from all users. CPU time per call.
- **the request path's floor**: the server's CPU per ``__typename`` request in the load run,
  every middleware and extension included. An uncached recommendation pays at least this
  beside the engine.
- **the cores**, and what the load generator and the rest of the machine used meanwhile.

From them, :func:`ceilings` gives the fastest uncached rate one core could serve if the request
path cost no more than ``__typename``'s (one worker runs its Python on one interpreter lock), the
fastest the whole machine could serve, the least mean latency the run's connections allow at
the one-core rate (Little's law: a closed loop's mean latency is its connections over its
throughput, and a p99 is no lower), and about the most two workers can gain over one when one
worker already uses more than a core (about: it assumes a request costs two workers the CPU it
cost one, and sets the median run's CPU beside the median rates). Each is set beside what its
target needs.

    python -m bench.serve_ceiling --calls 600      # the engine figure alone, as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import JsonDict
from bench.serve_workloads import uniform_users

ENGINE_CALL_TIMEOUT_S = 600.0


def measure_engine(artifacts: Path, calls: int = 600, warmup: int = 50, seed: int = 1) -> JsonDict:
    """The default engine call's CPU and wall milliseconds, timed in a child process so that
    the benchmark's own state does not weigh on it."""
    command = [sys.executable, "-m", "bench.serve_ceiling", "--artifacts", str(artifacts),
               "--calls", str(calls), "--warmup", str(warmup), "--seed", str(seed)]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=ENGINE_CALL_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"engine timing failed ({done.returncode}): {done.stderr[-2000:]}")
    result: JsonDict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def time_engine(artifacts: Path, calls: int, warmup: int, seed: int) -> JsonDict:
    """The measurement itself (run in the child): the API's default request for ``calls``
    users drawn uniformly from all users, as the load draws them, after ``warmup`` calls."""
    from recsys_gql.recsys.diversity import DEFAULT_DIVERSITY
    from recsys_gql.recsys.engine import Engine

    engine = Engine.load(artifacts)
    users = uniform_users(warmup + calls, seed, engine.users.ids.tolist())
    for user in users[:warmup]:
        engine.recommend(user, 10, explain_results=False, diversity=DEFAULT_DIVERSITY)
    cpu, wall = time.process_time(), time.perf_counter()
    for user in users[warmup:]:
        engine.recommend(user, 10, explain_results=False, diversity=DEFAULT_DIVERSITY)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "calls": calls,
        "distinct_users": len(set(users[warmup:])),
        "cpu_ms_per_call": round(cpu / calls * 1e3, 3),
        "wall_ms_per_call": round(wall / calls * 1e3, 3),
        "diversity": DEFAULT_DIVERSITY,
        "artifacts": str(artifacts),
    }


def _cpu_ms_per_request(result: JsonDict) -> float | None:
    cpu, rate = result.get("server_cpu_percent"), result.get("req_per_s")
    return None if not cpu or not rate else 10.0 * cpu / rate


def ceilings(
    results: dict[str, JsonDict],
    engine: JsonDict,
    cores: int,
    share_of_typename: float | None,
    two_worker_speedup: float | None,
    connections: int | None = None,
) -> JsonDict:
    """The bounds the module docstring describes, from one run's figures: each only where
    the run has its operations and its target is set."""
    out: JsonDict = {"cores": cores, "engine": engine}
    typename = results.get("typename")
    floor = None if typename is None else _cpu_ms_per_request(typename)
    if typename is not None and floor is not None and share_of_typename is not None:
        per_request = engine["cpu_ms_per_call"] + floor
        needed = share_of_typename * typename["req_per_s"]
        one_core = 1e3 / per_request
        machine = cores * 1e3 / per_request
        out["uncached"] = {
            "request_path_floor_cpu_ms": round(floor, 3),
            "least_cpu_ms_per_request": round(per_request, 3),
            "needed_req_per_s": round(needed, 1),
            "one_core_bound_req_per_s": round(one_core, 1),
            "machine_bound_req_per_s": round(machine, 1),
            "reachable_on_one_core": one_core >= needed,
            "reachable_on_this_machine": machine >= needed,
        }
        if connections:
            # Little's law for a closed loop without think time: mean latency = connections /
            # throughput, and a p99 is no lower than the mean.
            out["uncached"]["least_mean_latency_ms_on_one_core"] = round(
                connections / one_core * 1e3, 1
            )
    mixed = results.get("mixed")
    if mixed is not None and mixed.get("server_cpu_percent") and two_worker_speedup is not None:
        others = (mixed.get("client_cpu_percent") or 0.0) + (mixed.get("other_cpu_percent") or 0.0)
        left = 100.0 * cores - others
        bound = left / mixed["server_cpu_percent"]
        out["mixed_two_workers"] = {
            "one_worker_cpu_percent": mixed["server_cpu_percent"],
            "cpu_percent_left_for_servers": round(left, 1),
            "speedup_bound": round(bound, 3),
            "needed_speedup": two_worker_speedup,
            "reachable_on_this_machine": bound >= two_worker_speedup,
        }
    return out


def describe(bounds: JsonDict) -> list[str]:
    """The bounds as lines for the printed report."""
    lines = [f"engine alone: {bounds['engine']['cpu_ms_per_call']} ms CPU per default call"]
    uncached = bounds.get("uncached")
    if uncached is not None:
        lines.append(
            f"uncached: needs {uncached['needed_req_per_s']} req/s; at least "
            f"{uncached['least_cpu_ms_per_request']} ms CPU each allows "
            f"{uncached['one_core_bound_req_per_s']} on one core, "
            f"{uncached['machine_bound_req_per_s']} on {bounds['cores']} cores"
        )
        if "least_mean_latency_ms_on_one_core" in uncached:
            lines.append(
                "uncached: at the one-core bound, the mean latency of the run's connections "
                f"is at least {uncached['least_mean_latency_ms_on_one_core']} ms"
            )
    two = bounds.get("mixed_two_workers")
    if two is not None:
        lines.append(
            f"mixed: one worker used {two['one_worker_cpu_percent']}% CPU, "
            f"{two['cpu_percent_left_for_servers']}% was left: two workers can reach about "
            f"{two['speedup_bound']}x (needs {two['needed_speedup']}x)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.environ.get("RECSYS_GQL_ARTIFACTS_DIR", str(Path(__file__).parents[1] / "artifacts"))
    parser.add_argument("--artifacts", type=Path, default=Path(root) / "current")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be at least 1 and --warmup at least 0")
    print(json.dumps(time_engine(args.artifacts, args.calls, args.warmup, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
