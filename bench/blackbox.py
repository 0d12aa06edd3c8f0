"""Black-box quality check: train, load and serve a MovieLens-shaped data set through the CLI,
then score what GraphQL returns, on the evaluation's temporal protocol.

Run from the repository root::

    python -m bench.blackbox --data ml-100k [--overviews] [--out FILE]
    python -m bench.blackbox --data ml-latest-small [--no-overviews]

In a temporary folder: every user's latest 20% of ratings (by time) are held out; the rest is
written as a MovieLens folder (``ml-100k`` is converted from its original files; with
``--overviews`` it gets the plot overviews of the ml-latest-small movies with the same title
and year). Then ``recsys-gql train --data-dir``, ``recsys-gql db init --data-dir`` and
``recsys-gql serve`` run as separate processes on their defaults, and every user with a
held-out rating >= 4 is asked ``recommendations(userId, first: 20)`` over HTTP. NDCG@10,
Recall@20 and coverage@10 of the answers are compared with EASE^R as published, its λ chosen
on a validation split of the training part (computed here, in-process: it is the baseline,
not the system under test). Nothing of the service is imported: only its answers are read.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.common import machine_info, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
HEALTH = "{ health { runId arms { arm serving reason } rankingStageMissing } }"
QUERY = """query ($u: Int!) { recommendations(userId: $u, first: 20) { movie { id } } }"""
LAMBDAS = (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0)
JsonDict = dict[str, Any]


def ml100k(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings and movies of the original ml-100k files, in MovieLens CSV shape."""
    ratings = pd.read_csv(source / "u.data", sep="\t", names=["userId", "movieId", "rating",
                                                              "timestamp"])  # fmt: skip
    genre_names = [line.split("|")[0] for line in
                   (source / "u.genre").read_text().splitlines() if line]  # fmt: skip
    items = pd.read_csv(source / "u.item", sep="|", header=None, encoding="latin-1")
    flags = items.iloc[:, 5:].to_numpy(dtype=bool)
    genres = [
        "|".join(g for g, on in zip(genre_names, row, strict=True) if on and g != "unknown")
        or "(no genres listed)"
        for row in flags
    ]
    movies = pd.DataFrame({"movieId": items[0], "title": items[1].str.strip(), "genres": genres})
    ratings["rating"] = ratings["rating"].astype(float)
    return ratings, movies


def _title_key(title: str) -> str:
    """A title with its year, lower case, articles moved back ("Toy Story (1995)")."""
    text = title.lower().strip()
    text = re.sub(r"^(.*), (the|a|an) (\(\d{4}\))$", r"\2 \1 \3", text)
    return re.sub(r"[^a-z0-9()]+", " ", text).strip()


def borrowed_overviews(movies: pd.DataFrame) -> pd.DataFrame:
    """Overviews of ml-latest-small movies with the same title and year (where any)."""
    small = pd.read_csv(SHARED / "ml-latest-small" / "movies.csv")
    overviews = pd.read_csv(SHARED / "ml-latest-small-overviews" / "overviews.csv",
                            keep_default_na=False)  # fmt: skip
    by_key = dict(zip(small["title"].map(_title_key), small["movieId"], strict=True))
    text = dict(zip(overviews["movieId"], overviews["overview"], strict=True))
    found = [text.get(by_key.get(_title_key(t), -1), "") for t in movies["title"]]
    return pd.DataFrame({"movieId": movies["movieId"], "overview": found})


def temporal_split(ratings: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's latest ``holdout`` share held out (ties by movie), at least one."""
    ordered = ratings.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    position = ordered.groupby("userId").cumcount()
    size = ordered.groupby("userId")["movieId"].transform("size")
    held = np.where(size > 1, np.maximum(1, np.round(size * holdout)), 0)
    test = position >= size - held
    return ordered[~test].reset_index(drop=True), ordered[test].reset_index(drop=True)


def metrics(
    tops: dict[int, list[int]], relevant: dict[int, set[int]], catalog: int
) -> dict[str, float]:
    """Mean NDCG@10 and Recall@20 over users, coverage of the top 10 over the catalog."""
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ndcg, recall, shown = [], [], set()
    for user, liked in relevant.items():
        top = tops.get(user, [])
        hits = np.array([m in liked for m in top[:20]], dtype=float)
        hits = np.pad(hits, (0, 20 - hits.size))
        ideal = discounts[: min(10, len(liked))].sum()
        ndcg.append(float((hits[:10] * discounts).sum() / ideal))
        recall.append(float(hits.sum() / len(liked)))
        shown.update(top[:10])
    return {
        "ndcg_at_10": float(np.mean(ndcg)),
        "recall_at_20": float(np.mean(recall)),
        "coverage_at_10": len(shown) / catalog,
        "users": len(relevant),
    }


def ease_tops(
    train: pd.DataFrame, users: Sequence[int], movie_ids: np.ndarray, lam: float
) -> dict[int, list[int]]:
    """EASE^R (Steck 2019) as published: binary matrix, every movie, top 20 per user."""
    index = {m: k for k, m in enumerate(movie_ids.tolist())}
    user_ids = sorted(train["userId"].unique())
    row = {u: k for k, u in enumerate(user_ids)}
    x = np.zeros((len(user_ids), len(movie_ids)), dtype=np.float64)
    x[train["userId"].map(row).to_numpy(), train["movieId"].map(index).to_numpy()] = 1.0
    gram = x.T @ x + lam * np.eye(len(movie_ids))
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    out = {}
    for user in users:
        scores = x[row[user]] @ b
        scores[x[row[user]] > 0] = -np.inf
        out[user] = movie_ids[np.argsort(-scores, kind="stable")[:20]].tolist()
    return out


def relevant_of(test: pd.DataFrame, train: pd.DataFrame) -> dict[int, set[int]]:
    """Each user's held-out movies rated >= 4 (users with training ratings only)."""
    liked = test[(test["rating"] >= 4.0) & test["userId"].isin(train["userId"].unique())]
    return {int(u): set(g["movieId"].astype(int)) for u, g in liked.groupby("userId")}


def ease_baseline(train: pd.DataFrame, test: pd.DataFrame, movie_ids: np.ndarray) -> JsonDict:
    """EASE^R on test, λ chosen on a validation split carved from ``train``."""
    fit, validation = temporal_split(train, 0.2)
    val_relevant = relevant_of(validation, fit)
    trials = {
        lam: metrics(
            ease_tops(fit, list(val_relevant), movie_ids, lam), val_relevant, len(movie_ids)
        )["ndcg_at_10"]
        for lam in LAMBDAS
    }
    lam = max(trials, key=lambda k: trials[k])
    relevant = relevant_of(test, train)
    return {
        "lambda": lam,
        "validation_ndcg_at_10": trials,
        "test": metrics(ease_tops(train, list(relevant), movie_ids, lam), relevant, len(movie_ids)),
    }


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str], env: dict[str, str]) -> float:
    """Run a CLI command to completion; its wall seconds."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def served_tops(
    work: Path, data: Path, users: Sequence[int]
) -> tuple[dict[int, list[int]], JsonDict]:
    """Train, init the database and serve ``data`` with the CLI; ask for every user's 20."""
    cli = str(Path(sys.executable).with_name("recsys-gql"))
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_GQL_ARTIFACTS_DIR": str(work / "artifacts"),
        "RECSYS_GQL_DATA_DIR": str(work / "state"),
        "RECSYS_GQL_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'state' / 'recsys.db'}",
        "RECSYS_GQL_RATE_LIMIT_READS": "1000000/minute",
    }
    (work / "state").mkdir(exist_ok=True)
    seconds = {
        "train": run([cli, "train", "--data-dir", str(data), "--quiet"], env),
        "db_init": run([cli, "db", "init", "--data-dir", str(data)], env),
    }
    server = subprocess.Popen(
        [cli, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("the server did not become ready in 180 s")
        tops: dict[int, list[int]] = {}
        start = time.perf_counter()
        with httpx.Client(base_url=url, timeout=30) as client:
            for user in users:
                body = client.post("/graphql", json={"query": QUERY, "variables": {"u": user}})
                body.raise_for_status()
                recs = body.json()["data"]["recommendations"]
                tops[user] = [int(r["movie"]["id"]) for r in recs]
        seconds["queries"] = time.perf_counter() - start
        health = httpx.post(f"{url}/graphql", json={"query": HEALTH}).json()
        health = health["data"]["health"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return tops, {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "health": health}


def overview_count(folder: Path) -> int:
    """How many movies of the folder have a non-empty overview."""
    path = folder / "overviews.csv"
    if not path.is_file():
        return 0
    return int((pd.read_csv(path, keep_default_na=False)["overview"] != "").sum())


def prepare(name: str, folder: Path, overviews: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole data set's ratings and movies (and overviews written when asked)."""
    if name == "ml-100k":
        ratings, movies = ml100k(SHARED / "ml-100k")
        if overviews:
            borrowed_overviews(movies).to_csv(folder / "overviews.csv", index=False)
    elif name == "ml-latest-small":
        ratings = pd.read_csv(SHARED / "ml-latest-small" / "ratings.csv")
        movies = pd.read_csv(SHARED / "ml-latest-small" / "movies.csv")
        if overviews:
            src = SHARED / "ml-latest-small-overviews" / "overviews.csv"
            (folder / "overviews.csv").write_bytes(src.read_bytes())
    else:
        raise ValueError(f"unknown data set {name!r}")
    movies.to_csv(folder / "movies.csv", index=False)
    return ratings, movies


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.blackbox", description=__doc__)
    parser.add_argument("--data", choices=["ml-100k", "ml-latest-small"], default="ml-100k")
    parser.add_argument("--overviews", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    suffix = "overviews" if args.overviews else "no-overviews"
    out = args.out or REPO_ROOT / "bench" / "results" / f"blackbox_{args.data}_{suffix}.json"
    command = shlex.join(["python", "-m", "bench.blackbox", *(argv or sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="blackbox-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        ratings, movies = prepare(args.data, data, args.overviews)
        with_overview = overview_count(data)
        train, test = temporal_split(ratings, 0.2)
        train.to_csv(data / "ratings.csv", index=False)
        relevant = relevant_of(test, train)
        movie_ids = np.sort(movies["movieId"].to_numpy())
        tops, service = served_tops(work, data, sorted(relevant))
        served = metrics(tops, relevant, len(movie_ids))
        baseline = ease_baseline(train, test, movie_ids)
    ease = baseline["test"]
    payload = {
        "benchmark": "black-box: CLI train/db init/serve, GraphQL recommendations(first: 20)",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "data": {
            "name": args.data,
            "overviews": args.overviews,
            "movies_with_overview": with_overview,
            "ratings": len(ratings),
            "movies": len(movies),
            "users": int(ratings["userId"].nunique()),
        },
        "served": served,
        "ease_r": baseline,
        "ratio": {
            "ndcg_at_10": served["ndcg_at_10"] / ease["ndcg_at_10"],
            "recall_at_20": served["recall_at_20"] / ease["recall_at_20"],
        },
        "service": service,
    }
    write_json_atomic(out, payload)
    print(
        f"{args.data} ({suffix}): served NDCG@10 {served['ndcg_at_10']:.4f}, Recall@20 "
        f"{served['recall_at_20']:.4f}, coverage@10 {served['coverage_at_10']:.4f}; EASE^R "
        f"(λ {baseline['lambda']:g}) {ease['ndcg_at_10']:.4f} / {ease['recall_at_20']:.4f}: "
        f"{payload['ratio']['ndcg_at_10']:.3f}x NDCG, {payload['ratio']['recall_at_20']:.3f}x "
        f"Recall; written to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
