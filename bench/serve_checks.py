"""Checks of ``python -m bench.serve``: a few plain requests of each operation, each answer
checked in full (status, no GraphQL errors, the expected payload, the benchmark's rate limit
in ``X-RateLimit-Limit``; writes: the acknowledgement of exactly what was sent), and the
sign-ups that give each write lane its user and bearer token."""

from __future__ import annotations

import httpx
from limits import parse as parse_limit

from bench.common import JsonDict
from bench.serve_workloads import (
    SAVED,
    SIGN_UP_QUERY,
    WRITE_MARKER,
    BenchUser,
    Operation,
    auth_headers,
    body,
    rate_body,
    rate_combo,
)

VERIFY_REQUESTS = 5


def check_body(op: Operation, status: int, text: str) -> str | None:
    """Why a response is a failure for ``op``, or None when it is a success."""
    if not 200 <= status <= 299:
        return f"HTTP {status}: {text[:200]}"
    if '"errors"' in text:
        return f"GraphQL errors: {text[:300]}"
    marker = WRITE_MARKER if op.mode == "rate" else op.marker
    if marker not in text:
        return f"no {marker} in {text[:300]}"
    return None


def rate_limit_amount(limit: str) -> int:
    """How many requests ``limit`` (``"100000000/minute"``) allows per window."""
    amount: int = parse_limit(limit).amount
    return amount


def sign_up_users(url: str, count: int) -> list[BenchUser]:
    """``count`` new users and their tokens, from ``signUp`` (one request each)."""
    users: list[BenchUser] = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            response = client.post(
                f"{url}/graphql",
                content=body(SIGN_UP_QUERY, {}),
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200 or '"errors"' in response.text:
                raise RuntimeError(
                    f"signUp failed: HTTP {response.status_code}: {response.text[:300]}"
                )
            signed = response.json()["data"]["signUp"]
            users.append(BenchUser(id=int(signed["user"]["id"]), token=str(signed["token"])))
    return users


def verify_operation(url: str, op: Operation, limits: dict[str, str]) -> JsonDict:
    """Send a few requests of ``op`` one at a time and check each answer in full, including
    that the rate limiter was consulted with the benchmark's limit. A write signs up its own
    user first (listed under ``users``)."""
    users: list[BenchUser] = []
    combos: list[tuple[int, int, float]] = []
    if op.mode == "rate":
        users = sign_up_users(url, 1)
        combos = [(users[0].id, *rate_combo(0, j, op.rate_movies)) for j in range(VERIFY_REQUESTS)]
        bodies = [rate_body(*c) for c in combos]
        headers = auth_headers(users[0])
        expected_limit = rate_limit_amount(limits["writes"])
    else:
        bodies = list(op.bodies[:: max(1, len(op.bodies) // VERIFY_REQUESTS)][:VERIFY_REQUESTS])
        headers = {"Content-Type": "application/json"}
        expected_limit = rate_limit_amount(limits["reads"])
    problems: list[str] = []
    acked: list[tuple[int, int, float]] = []
    with httpx.Client(timeout=60) as client:
        for i, content in enumerate(bodies):
            response = client.post(f"{url}/graphql", content=content, headers=headers)
            problem = check_body(op, response.status_code, response.text)
            limit_header = response.headers.get("x-ratelimit-limit")
            if problem is None and limit_header != str(expected_limit):
                problem = (
                    f"X-RateLimit-Limit is {limit_header!r}, not {expected_limit}: "
                    "the rate limiter was not consulted with the benchmark's limits"
                )
            if problem is None and op.mode == "rate":
                payload = response.json()["data"]["rateMovie"]
                match = SAVED.search(payload.get("message", ""))
                sent = combos[i]
                if match is None or payload["user"]["id"] != sent[0]:
                    problem = f"unexpected acknowledgement {payload}"
                elif (int(match["movie"]), float(match["rating"])) != (sent[1], sent[2]):
                    problem = f"acknowledged {match[0]!r} for {sent}"
                else:
                    acked.append(sent)
            if problem is not None:
                problems.append(problem)
    return {
        "requests": len(bodies),
        "ok": not problems,
        "problems": problems,
        "acked": acked,
        "users": [u.id for u in users],
    }
