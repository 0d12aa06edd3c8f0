"""A Python client of recsys-gql with the `gql` library: sign up, subscribe to live
recommendations, rate the top one, and print the list the server pushes after the rating.

    pip install "gql[aiohttp,websockets]"
    python examples/client.py --url http://127.0.0.1:8000/graphql

Queries and mutations go over HTTP (aiohttp); the subscription over a WebSocket with the
graphql-transport-ws protocol, the token in ``connection_init``'s payload. ``--json`` prints
one JSON object per event (what tests/examples/test_client.py reads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

SIGN_UP = "mutation { signUp { token user { id } } }"
RATE = """mutation Rate($user: Int!, $movie: Int!, $rating: Float!) {
  rateMovie(input: {userId: $user, movieId: $movie, rating: $rating}) {
    __typename
    ... on RatingSaved { message }
    ... on InvalidRating { message }
  }
}"""
LIVE = """subscription Live($first: Int!) {
  recommendationsUpdated(first: $first) { score movie { id title } }
}"""


class Printer:
    """Prints events for people, or as JSON lines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __call__(self, event: str, text: str, **fields: Any) -> None:
        print(json.dumps({"event": event, **fields}) if self.as_json else text, flush=True)


async def run(url: str, updates: int, first: int, say: Printer) -> None:
    http = Client(transport=AIOHTTPTransport(url=url))
    async with http as session:
        signed = (await session.execute(GraphQLRequest(SIGN_UP)))["signUp"]
    user, token = int(signed["user"]["id"]), signed["token"]
    say("signed-up", f"signed up as user {user}", user=user)
    auth = {"Authorization": f"Bearer {token}"}

    rater = Client(transport=AIOHTTPTransport(url=url, headers=auth))
    live = Client(
        transport=WebsocketsTransport(
            url=url.replace("http", "ws", 1), init_payload=auth, ping_interval=None
        )
    )
    async with live as stream, rater as writes:
        received = 0
        request = GraphQLRequest(LIVE, variable_values={"first": first})
        async for data in stream.subscribe(request):
            movies = [r["movie"] for r in data["recommendationsUpdated"]]
            received += 1
            titles = "\n".join(f"  {m['id']:>6}  {m['title']}" for m in movies)
            say("update", f"recommendations (update {received}):\n{titles}", movies=movies)
            if received >= updates:
                break
            top = movies[0]
            rating = GraphQLRequest(
                RATE, variable_values={"user": user, "movie": top["id"], "rating": 4.5}
            )
            saved = (await writes.execute(rating))["rateMovie"]
            say("rated", f"rated “{top['title']}”: {saved['message']}", movie=top["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--updates", type=int, default=2, help="stop after this many lists")
    parser.add_argument("--first", type=int, default=5, help="recommendations per list")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.updates, args.first, Printer(args.json)))


if __name__ == "__main__":
    main()
