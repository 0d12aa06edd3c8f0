"""Cross-origin requests: off by default; on for an explicit allow-list of origins only."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from recsys_gql.app import create_app
from recsys_gql.settings import Settings

PAGE = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


async def preflight(settings: Settings, origin: str) -> httpx.Response:
    """An OPTIONS preflight for a POST to /graphql (answered by the middleware alone)."""
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return await client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})


async def test_no_origin_is_allowed_by_default() -> None:
    response = await preflight(Settings(), PAGE)
    assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origin_may_call_with_a_token_and_read_the_rate_limit() -> None:
    response = await preflight(Settings(cors_allow_origins=(PAGE,)), PAGE)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


async def test_a_page_may_read_the_rate_limit_headers() -> None:
    transport = httpx.ASGITransport(app=create_app(Settings(cors_allow_origins=(PAGE,))))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/healthz", headers={"Origin": PAGE})
    assert response.headers["access-control-allow-origin"] == PAGE
    exposed = response.headers["access-control-expose-headers"].lower()
    for header in ("x-ratelimit-remaining", "x-ratelimit-cost", "retry-after"):
        assert header in exposed


async def test_an_origin_not_listed_is_refused() -> None:
    response = await preflight(Settings(cors_allow_origins=(PAGE,)), "https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "value", ["*", "app.example.com", "https://app.example.com/", "https://a.example,*"]
)
def test_a_wildcard_or_malformed_origin_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ValidationError, match="expected origins"):
        Settings(cors_allow_origins=value)  # type: ignore[arg-type]


def test_origins_may_be_a_comma_separated_list() -> None:
    settings = Settings(cors_allow_origins="https://a.example, https://b.example")  # type: ignore[arg-type]
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")
