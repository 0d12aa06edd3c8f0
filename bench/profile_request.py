"""Where the CPU of one uncached ``recommendations`` request goes, on a real server under load.

It runs ``python -m bench.serve --only recommendationsUncached`` (one worker, users drawn
uniformly, a ``diversity`` of their own so the memo never answers), samples the server process
with py-spy while the load runs, and sorts the samples into the stages of the request path
(HTTP, GraphQL execution, the ratings read, the engine, the access log, ...). Shares are of
the samples in which the server was doing something (waiting threads and the idle event loop
are left out), so they hold on a loaded machine, where absolute rates do not.

    python -m bench.profile_request --duration 30 --out bench/results/profile_request.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.serve_harness import code_version, load_average

Stage = tuple[str, Callable[[str, str], bool]]

STAGES: tuple[Stage, ...] = (
    ("idle", lambda stack, leaf: "Condition.wait" in leaf or "select" in leaf.split(" (")[0]),
    ("engine.recommend", lambda stack, leaf: "Engine.recommend" in stack),
    ("ratings read (hot_reads)", lambda stack, leaf: "hot_reads.py" in stack),
    ("other engine calls", lambda stack, leaf: "engine.py" in stack),
    ("GraphQL parse and validation", lambda stack, leaf: "validate" in stack or "parse(" in stack),
    ("JSON encoding", lambda stack, leaf: "encoder.py" in stack),
    ("access log", lambda stack, leaf: "access_log.py" in stack and "logging" in stack),
    ("GraphQL types built from results", lambda stack, leaf: "api/types.py" in stack),
    ("GraphQL execution", lambda stack, leaf: "Schema.execute" in stack),
    ("HTTP: sockets and parsing", lambda stack, leaf: "selector_events" in stack),
    ("HTTP: parsing", lambda stack, leaf: "httptools" in stack and "run_asgi" not in stack),
)
"""Each sample goes to the first stage whose test its stack passes (the order matters: the
engine runs inside GraphQL execution)."""


def breakdown(folded: str) -> tuple[dict[str, float], int]:
    """Shares of the non-idle samples per stage, from py-spy's ``raw`` (folded) output."""
    counts: Counter[str] = Counter()
    for line in folded.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        stage = next((name for name, test in STAGES if test(stack, leaf)), "other (ASGI, asyncio)")
        counts[stage] += int(number)
    active = sum(n for stage, n in counts.items() if stage != "idle")
    shares = {stage: round(n / active, 3) for stage, n in counts.most_common() if stage != "idle"}
    return shares, active


def profile(duration: float, rate: int, gil: bool = False) -> tuple[str, str]:
    """Run the load, sample the server while it runs; the folded stacks and bench.serve's log.
    With ``gil``, only the thread holding the GIL is sampled: where the serialised time goes."""
    out = Path(tempfile.mkdtemp()) / "serve.json"
    serve = [sys.executable, "-m", "bench.serve", "--only", "recommendationsUncached"]
    options = ["--duration", str(int(duration) + 10), "--warmup", "3", "--no-two-workers"]
    load = subprocess.Popen(
        [*serve, *options, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert load.stdout is not None
    log = []
    pid = None
    for line in load.stdout:
        log.append(line)
        found = re.search(r"server ready at \S+ \(pid (\d+)", line)
        if found:
            pid = int(found.group(1))
            break
    if pid is None:
        load.wait()
        raise SystemExit("bench.serve did not start a server:\n" + "".join(log))
    time.sleep(8)  # the warm-up and the load's first seconds
    folded = Path(tempfile.mkdtemp()) / "profile.folded"
    spy = str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "-p", str(pid), "-d", str(int(duration)), "-r", str(rate)]
    command += ["--gil"] if gil else []
    subprocess.run([*command, "-f", "raw", "-o", str(folded), "--nonblocking"], check=True)
    log.extend(load.stdout)
    load.wait()
    return folded.read_text(), "".join(log)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds sampled")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--folded", type=Path, help="sort these saved samples instead of a run")
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/profile_request.json"))
    args = parser.parse_args(argv)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    if args.folded:
        folded, log = args.folded.read_text(), ""
    else:
        folded, log = profile(args.duration, args.rate, args.gil)
    shares, active = breakdown(folded)
    result = {
        "benchmark": "profile_request",
        "date": started,
        "command": "python -m bench.profile_request " + " ".join(argv or sys.argv[1:]),
        "code": code_version(),
        "load_average": {"before": load_before, "after": load_average()},
        "sampled": "the thread holding the GIL" if args.gil else "every thread not idle",
        "active_samples": active,
        "shares_of_active_cpu": shares,
        "load_run": [line for line in log.splitlines() if "req/s" in line],
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for stage, share in shares.items():
        print(f"{share:6.1%}  {stage}")
    print(f"({active} active samples; {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
