"""Mean milliseconds of the API's default engine call, over every user, one call at a time.

Small on purpose, and importing only what every checkout's engine has had since issue 17
(``Engine.load``, ``Engine.recommend``), so that the same file times another checkout's code
for a paired before/after with ``farm-bench``::

    farm-bench -n 5 --vs "sh -c 'PYTHONPATH=<before> exec python bench/engine_calls.py >> b.txt'" \\
        -- sh -c 'exec python bench/engine_calls.py >> a.txt'

It prints one line, ``<mean> ms/call``: the engine load (which differs between checkouts)
stays out of the figure, unlike farm-bench's whole-process times.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from recsys_gql.recsys.engine import Engine

DEFAULT_DIVERSITY = 0.5
"""The API's default (``recsys_gql.recsys.diversity.DEFAULT_DIVERSITY``), written out so
that a checkout from before the constant existed runs this file too."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.environ.get("RECSYS_GQL_ARTIFACTS_DIR", str(Path(__file__).parents[1] / "artifacts"))
    parser.add_argument("--artifacts", type=Path, default=Path(root) / "current")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    engine = Engine.load(args.artifacts)
    users = engine.users.ids.tolist()
    random.Random(1).shuffle(users)

    def run(count: int) -> None:
        for k in range(count):
            engine.recommend(
                users[k % len(users)], 10, explain_results=False, diversity=DEFAULT_DIVERSITY
            )

    run(args.warmup)
    started = time.perf_counter()
    run(args.calls)
    print(f"{(time.perf_counter() - started) / args.calls * 1e3:.2f} ms/call")


if __name__ == "__main__":
    main()
