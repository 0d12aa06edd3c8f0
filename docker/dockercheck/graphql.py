"""A small client for the public API the containers serve (the operations a front end sends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from dockercheck.engine import CheckFailed

RECOMMENDATIONS = """query($u: Int!) {
  user(id: $u) { ratingsCount recommendations(first: 10) { movie { id } } }
}"""
SEARCH = '{ searchMovies(query: "toys that come alive at night", first: 3) { movie { id } } }'
RATE = """mutation($u: Int!, $m: Int!, $r: Float!) {
  rateMovie(input: {userId: $u, movieId: $m, rating: $r}) { __typename }
}"""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to a GraphQL request."""

    status: int
    body: dict[str, Any]

    @property
    def code(self) -> str | None:
        """``extensions.code`` of the first error, if any."""
        errors = self.body.get("errors") or [{}]
        code = errors[0].get("extensions", {}).get("code")
        return str(code) if code is not None else None


@dataclass(frozen=True)
class Client:
    """GraphQL over POST to one published port."""

    url: str
    timeout: float = 30.0

    def post(self, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Answer:
        """One request; a transport error (a worker that died mid-request, say) fails the
        check, naming the replica."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = httpx.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.TransportError as error:
            raise CheckFailed(
                f"{self.url}: {query[:60]!r}: {type(error).__name__}: {error}"
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = {"errors": [{"message": response.text[:500]}]}
        return Answer(response.status_code, body)

    def query(self, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
        """``data`` of a request that must succeed."""
        answer = self.post(query, variables, token)
        if answer.status != 200 or answer.body.get("errors"):
            raise CheckFailed(f"{self.url}: {query[:60]!r} answered {answer.status} {answer.body}")
        return answer.body["data"]

    def sign_up(self) -> tuple[int, str]:
        """A new user: its id and token."""
        data = self.query("mutation { signUp { token user { id } } }")
        return int(data["signUp"]["user"]["id"]), str(data["signUp"]["token"])

    def rate(self, token: str, user: int, movie: int, rating: float) -> Answer:
        """``rateMovie`` as the token's user."""
        return self.post(RATE, {"u": user, "m": movie, "r": rating}, token)

    def recommendations(self, user: int) -> tuple[int, list[int]]:
        """The user's ratings count and recommended movie ids, in order."""
        user_data = self.query(RECOMMENDATIONS, {"u": user})["user"]
        ids = [int(r["movie"]["id"]) for r in user_data["recommendations"]]
        return int(user_data["ratingsCount"]), ids

    def first_search(self, timeout: float) -> float:
        """Seconds until a ``searchMovies`` is answered.

        Until a worker has loaded the sentence model (in the background after start-up), a
        search waits for it and may end in 503 ``TIMEOUT`` (the 15 s request deadline) on a
        busy machine; such answers are retried, anything else fails at once.
        """
        started = time.monotonic()
        while True:
            answer = self.post(SEARCH)
            if answer.status == 200 and not answer.body.get("errors"):
                return time.monotonic() - started
            if answer.code != "TIMEOUT" or time.monotonic() - started > timeout:
                raise CheckFailed(f"{self.url}: search answered {answer.status} {answer.body}")
            time.sleep(1)

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 now."""
        try:
            return httpx.get(f"{self.url}/readyz", timeout=self.timeout).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> float:
        """Until ``/readyz`` is 200; seconds waited. Fails early once ``alive()`` is false."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.ready():
                return time.monotonic() - started
            if not alive():
                raise CheckFailed(f"{self.url}: the server stopped before it was ready")
            time.sleep(1)
        raise CheckFailed(f"{self.url}: /readyz not 200 after {timeout:.0f}s")
