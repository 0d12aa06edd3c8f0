"""Writes need a bearer token of the user written for; reads stay open."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from recsys_gql.cli import main
from recsys_gql.db.session import Database
from recsys_gql.settings import Settings
from tests.api.conftest import Server, sign_up

RATE = """mutation ($u: Int!) { rateMovie(input: {userId: $u, movieId: 2, rating: 3.5}) {
  __typename ... on Unauthenticated { message code } ... on Forbidden { message code }
  ... on RatingSaved { rating { rating } } } }"""
COUNT = "query ($u: Int!) { user(id: $u) { ratingsCount } }"
VIEWER = "{ viewer { id } }"


def count(api: Server, user: int) -> int:
    return int(api.graphql(COUNT, {"u": user})["data"]["user"]["ratingsCount"])


def test_sign_up_gives_a_working_token(api: Server) -> None:
    user, token = sign_up(api)
    other, other_token = sign_up(api)
    assert other != user
    assert token != other_token
    assert token.startswith("rgq_")
    assert api.graphql(VIEWER, token=token)["data"]["viewer"] == {"id": user}
    assert api.graphql(VIEWER)["data"]["viewer"] is None
    saved = api.graphql(RATE, {"u": user}, token=token)["data"]["rateMovie"]
    assert saved == {"__typename": "RatingSaved", "rating": {"rating": 3.5}}


def test_only_a_hash_of_the_token_is_stored(api: Server, api_settings: Settings) -> None:
    user, token = sign_up(api)

    async def stored() -> list[str]:
        database = Database.open(api_settings.database_url)
        try:
            async with database.sessions() as session:
                rows = await session.exec(  # type: ignore[call-overload]
                    text("SELECT token_sha256 FROM api_tokens WHERE user_id = :u"),
                    params={"u": user},
                )
                return [row[0] for row in rows]
        finally:
            await database.dispose()

    digests = asyncio.run(stored())
    assert len(digests) == 1
    assert token not in digests[0]
    assert len(digests[0]) == 64


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "needs `Authorization: Bearer <token>`"),
        ("Basic dXNlcjpwYXNz", "must be `Bearer <token>`"),
        ("Bearer not-one-of-ours", "not a recsys-gql token"),
        ("Bearer rgq_forgedforgedforgedforgedforgedforgedforge", "unknown or revoked"),
    ],
)
def test_writes_without_a_valid_token_are_refused(
    api: Server, header: str | None, problem: str
) -> None:
    import httpx

    user, _ = sign_up(api)
    headers = {"Authorization": header} if header else {}
    body = httpx.post(
        f"{api.url}/graphql", json={"query": RATE, "variables": {"u": user}}, headers=headers
    ).json()
    payload = body["data"]["rateMovie"]
    assert payload["__typename"] == "Unauthenticated"
    assert payload["code"] == "UNAUTHENTICATED"
    assert problem in payload["message"]
    assert count(api, user) == 0


def test_writing_as_another_user_is_forbidden(api: Server) -> None:
    victim, _ = sign_up(api)
    _, token = sign_up(api)
    payload = api.graphql(RATE, {"u": victim}, token=token)["data"]["rateMovie"]
    assert payload["__typename"] == "Forbidden"
    assert payload["code"] == "FORBIDDEN"
    assert count(api, victim) == 0


def test_cli_tokens_for_movielens_users_and_revocation(
    api: Server,
    api_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECSYS_GQL_DATABASE_URL", api_settings.database_url)
    assert main(["users", "token", "5"]) == 0
    token = capsys.readouterr().out.strip()
    assert api.graphql(VIEWER, token=token)["data"]["viewer"] == {"id": 5}
    assert api.graphql(RATE, {"u": 5}, token=token)["data"]["rateMovie"]["__typename"] == (
        "RatingSaved"
    )
    assert main(["users", "revoke", token]) == 0
    refused = api.graphql(RATE, {"u": 5}, token=token)["data"]["rateMovie"]
    assert refused["__typename"] == "Unauthenticated"
    assert main(["users", "revoke", token]) == 2
    assert main(["users", "token", "999999999"]) == 2
    assert "does not exist" in capsys.readouterr().err
