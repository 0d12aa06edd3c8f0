"""The malformed-transport corpus: every case is a 4xx with a readable body, never a 5xx;
production mode hides the schema; slow requests time out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from recsys_gql.api.http_status import error_status
from recsys_gql.settings import Settings
from tests.api.conftest import Server, running

JSON = {"content-type": "application/json"}
NESTED = "{ movie(id: 1) { " + "similar { movie { " * 12 + "id" + " } }" * 12 + " } }"
ALIASES = "{ " + " ".join(f"a{i}: genres" for i in range(120)) + " }"
CORPUS: list[tuple[str, dict[str, object], int]] = [
    ("bad JSON", {"content": b"{not json", "headers": JSON}, 400),
    ("invalid UTF-8", {"content": b'{"query": "{ genres }\xff"}', "headers": JSON}, 400),
    (
        "lone surrogate operationName",
        {"content": b'{"query": "{ genres }", "operationName": "\\ud800"}', "headers": JSON},
        400,
    ),
    ("null body", {"content": b"null", "headers": JSON}, 400),
    (
        "wrong content type",
        {"content": b"query={genres}", "headers": {"content-type": "text/plain"}},
        400,
    ),
    ("oversize body", {"json": {"query": "{ genres }" + " " * 200_000}}, 413),
    ("batched array", {"json": [{"query": "{ genres }"}, {"query": "{ genres }"}]}, 400),
    ("deep nesting", {"json": {"query": NESTED}}, 400),
    ("120 aliases", {"json": {"query": ALIASES}}, 400),
    # one field 2,100 times: merged, so valid and cheap, but over the 2,000-token limit
    ("2,100 tokens", {"json": {"query": "{ " + "genres " * 2100 + "}"}}, 400),
    ("syntax error", {"json": {"query": "{ genres "}}, 400),
    ("huge Int", {"json": {"query": "{ movie(id: 99999999999999) { id } }"}}, 400),
    (
        "NaN variable",
        {
            "content": b'{"query": "query($a: Float) { recommendations(userId: 1, alpha: $a) '
            b'{ score } }", "variables": {"a": NaN}}',
            "headers": JSON,
        },
        400,
    ),
    (
        "infinite alpha",
        {"json": {"query": "{ recommendations(userId: 1, alpha: 1e400) { score } }"}},
        400,
    ),
    ("query is not a string", {"json": {"query": 5}}, 400),
]


@pytest.fixture(scope="module")
def server(api_settings: Settings) -> Iterator[Server]:
    with running(api_settings) as running_server:
        yield running_server


@pytest.mark.parametrize(("name", "request_kwargs", "status"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_requests_get_a_4xx(
    server: Server, name: str, request_kwargs: dict[str, object], status: int
) -> None:
    response = httpx.post(f"{server.url}/graphql", timeout=30, **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, (name, response.text[:300])
    if response.headers.get("content-type", "").startswith("application/json"):
        for error in response.json()["errors"]:  # every refusal says why, in a code
            assert error["extensions"]["code"], (name, error)
    assert "Traceback" not in response.text
    assert "sqlalchemy" not in response.text.lower()


def test_a_chunked_oversize_body_is_cut_off(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ genres }", "x": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    response = httpx.post(f"{server.url}/graphql", content=chunks(), headers=JSON, timeout=30)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_mutation_over_get_is_refused(server: Server) -> None:
    response = httpx.get(
        f"{server.url}/graphql", params={"query": "mutation { signUp { token } }"}, timeout=30
    )
    assert 400 <= response.status_code < 500
    count = httpx.get(f"{server.url}/graphql", params={"query": "{ genres }"}, timeout=30)
    assert count.status_code == 200


def test_production_hides_the_schema(api_settings: Settings) -> None:
    production = api_settings.model_copy(update={"env": "production"})
    with running(production) as server:
        introspection = httpx.post(
            f"{server.url}/graphql", json={"query": "{ __schema { types { name } } }"}
        )
        assert introspection.status_code == 400
        typo = httpx.post(f"{server.url}/graphql", json={"query": "{ genre }"}).json()
        assert "Did you mean" not in typo["errors"][0]["message"]
        page = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404
        ok = httpx.post(f"{server.url}/graphql", json={"query": "{ genres }"})
        assert ok.status_code == 200
    with running(api_settings) as server:
        typo = httpx.post(f"{server.url}/graphql", json={"query": "{ genre }"}).json()
        assert "Did you mean" in typo["errors"][0]["message"]
    with running(production.model_copy(update={"graphiql": True})) as server:
        page = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200


def test_slow_requests_time_out(api_settings: Settings) -> None:
    impatient = api_settings.model_copy(update={"request_timeout_seconds": 0.001})
    with running(impatient) as server:
        response = httpx.post(
            f"{server.url}/graphql",
            json={"query": '{ searchMovies(query: "a heist in space") { score } }'},
            timeout=60,
        )
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_query_limits_keep_the_validation_cache_key_stable() -> None:
    """The validation cache is keyed by the rule classes; limiters rebuilt per request with
    fresh classes made every request miss it."""
    from recsys_gql.api.extensions.document_limits import DocumentLimits, limit_extensions

    factories = limit_extensions(Settings())
    first = [f() for f in factories]
    second = [f() for f in factories]
    rules_first = [e.validation_rules for e in first if isinstance(e, DocumentLimits)]
    rules_second = [e.validation_rules for e in second if isinstance(e, DocumentLimits)]
    assert rules_first
    assert rules_first == rules_second


def test_an_operation_stopped_whole_is_answered_with_the_status_of_why() -> None:
    def coded(*codes: str) -> list[dict[str, Any]]:
        return [{"message": "m", "extensions": {"code": code}} for code in codes]

    assert error_status({"data": None, "errors": coded("INVALID_ARGUMENT")}) == 400
    assert error_status({"data": None, "errors": coded("QUERY_TOO_COSTLY")}) == 400
    assert error_status({"data": None, "errors": coded("TIMEOUT")}) == 503
    assert error_status({"data": None, "errors": coded("TIMEOUT", "INVALID_ARGUMENT")}) == 503
    assert error_status({"data": None, "errors": coded("INTERNAL_SERVER_ERROR")}) is None
    # partial answers and answers without errors stay 200
    assert error_status({"data": {"a": 1}, "errors": coded("TIMEOUT")}) is None
    assert error_status({"data": {"a": 1}}) is None
