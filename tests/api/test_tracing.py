"""Tracing: a request is one trace (HTTP, GraphQL, resolvers, the engine, the database), with
nothing personal in it; off by default without loading OpenTelemetry at all; and a real
`recsys-gql serve` exports over OTLP/HTTP to the endpoint its setting names."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from recsys_gql.app import create_app
from recsys_gql.settings import Settings
from recsys_gql.tracing import TracingError, traces_endpoint, tracing_enabled
from tests.api.conftest import running
from tests.processes import REDIS_URL, require_redis, served_process, wait_ready

FOR_YOU = """
query ForYou($user: Int!) {
  recommendations(userId: $user, first: 3, alpha: 0.4) { movie { title } }
  user(id: $user) { ratingsCount }
}
"""
SEARCH_WORDS = "private-words-of-a-user"


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of the spans above ``span``, nearest first."""
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_a_request_is_one_trace_from_http_to_the_database(api_settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(api_settings, span_exporter=exporter)
    with running(api_settings, app) as server:
        exporter.clear()  # start-up's own queries
        answer = httpx.post(
            f"{server.url}/graphql",
            json={"query": FOR_YOU, "variables": {"user": 1}},
            headers={"X-Request-ID": "traced-1"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]["recommendations"]) == 3
    spans = exporter.get_finished_spans()
    [http] = [s for s in spans if s.kind == SpanKind.SERVER and s.parent is None]
    assert http.name == "POST /graphql"
    request_spans = [s for s in spans if s.context.trace_id == http.context.trace_id]
    by_id = {s.context.span_id: s for s in request_spans}
    names = {s.name: s for s in request_spans}

    operation = names["GraphQL Operation: ForYou"]
    assert ancestors(operation, by_id) == ["POST /graphql"]
    assert operation.attributes["graphql.operation.type"] == "query"
    resolver = names["GraphQL Resolving: recommendations"]
    assert ancestors(resolver, by_id) == [operation.name, http.name]
    assert resolver.attributes["graphql.param.first"] == 3
    assert "graphql.param.user_id" not in resolver.attributes  # ids stay out of spans
    engine = names["engine.recommend"]
    assert ancestors(engine, by_id) == [resolver.name, operation.name, http.name]

    database = [s for s in request_spans if s.kind == SpanKind.CLIENT]
    assert database, [s.name for s in request_spans]
    system = "sqlite" if api_settings.database_url.startswith("sqlite") else "postgresql"
    for span in database:
        assert span.attributes["db.system"] == system
        assert http.name in ancestors(span, by_id)
    # the user's ratings, read for the recommendations, under that resolver
    assert any(resolver.name in ancestors(span, by_id) for span in database)
    assert len(exporter.get_finished_spans()) == len(spans)  # nothing from other traces


def test_spans_carry_no_query_text_variables_or_url_query(api_settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(api_settings, span_exporter=exporter)
    query = f'{{ movies(search: "{SEARCH_WORDS}", first: 1) {{ totalCount }} }}'
    with running(api_settings, app) as server:
        exporter.clear()
        got = httpx.get(f"{server.url}/graphql", params={"query": query}, timeout=60)
        assert got.status_code == 200, got.text
        posted = httpx.post(
            f"{server.url}/graphql",
            json={
                "query": "query Find($q: String) { movies(search: $q, first: 1) { totalCount } }",
                "variables": {"q": SEARCH_WORDS},
            },
            headers={"Authorization": "Bearer rgq_secret_token"},
            timeout=60,
        )
        assert posted.status_code == 200, posted.text
    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans if s.parent is None}) == 2
    everything = repr([(s.name, dict(s.attributes or {})) for s in spans])
    assert "movies" in everything  # the resolver spans are there ...
    for secret in (SEARCH_WORDS, "rgq_secret_token", "totalCount"):  # ... but none of this
        assert secret not in everything


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # what is imported
def test_tracing_is_off_by_default_and_loads_nothing(api_settings: Settings) -> None:
    """Off, the app loads none of its tracing: no instrumentation, exporter, tracer SDK or
    Strawberry extension (redis-py imports OpenTelemetry's API for metrics of its own, which
    stay off: that is the only OpenTelemetry in the process)."""
    script = """
import sys
from starlette.testclient import TestClient
from recsys_gql.app import create_app
from recsys_gql.settings import Settings
app = create_app(Settings(preload_search_model=False))
with TestClient(app) as client:
    answer = client.post("/graphql", json={"query": "{ recommendations(userId: 1) { score } }"})
    assert answer.status_code == 200, answer.text
ours = (
    "recsys_gql.tracing.",
    "strawberry.extensions.tracing.opentelemetry",
    "opentelemetry.instrumentation",
    "opentelemetry.exporter",
    "opentelemetry.sdk.trace",
)
print(sorted(m for m in sys.modules if m.startswith(ours)))
"""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("OTEL_")
    } | {
        "RECSYS_GQL_ARTIFACTS_DIR": str(api_settings.artifacts_dir),
        "RECSYS_GQL_DATABASE_URL": api_settings.database_url,
    }
    environment.pop("RECSYS_GQL_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("setting", "environ", "enabled"),
    [
        (None, {}, False),
        ("http://collector:4318", {}, True),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ("http://collector:4318", {"OTEL_SDK_DISABLED": "true"}, False),
        ("http://collector:4318", {"OTEL_TRACES_EXPORTER": "none"}, False),
        ("http://collector:4318", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, True),
    ],
)
def test_when_tracing_is_on(setting: str | None, environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(Settings(otlp_endpoint=setting), environ) is enabled


def test_an_otlp_protocol_this_build_cannot_send_is_refused() -> None:
    settings = Settings(otlp_endpoint="http://collector:4317")
    with pytest.raises(TracingError, match="OTLP/HTTP only"):
        tracing_enabled(settings, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})
    assert traces_endpoint(settings) == "http://collector:4317/v1/traces"
    assert traces_endpoint(Settings(otlp_endpoint="http://c:4318/")) == "http://c:4318/v1/traces"


@contextmanager
def otlp_collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A stand-in OpenTelemetry collector on loopback: keeps what is posted to /v1/traces."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_served_process_exports_its_traces_to_the_configured_endpoint(
    api_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with otlp_collector() as (endpoint, received):
        env = {
            "RECSYS_GQL_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "recsys-gql-under-test",  # the standard variables apply
            "RECSYS_GQL_PRELOAD_SEARCH_MODEL": "false",
        }
        with served_process(api_settings, env, log) as url:
            wait_ready([url], [log])
            answer = httpx.post(
                f"{url}/graphql", json={"query": FOR_YOU, "variables": {"user": 2}}, timeout=60
            )
            assert answer.status_code == 200, answer.text
        # stopping the server flushed the spans still queued
    spans = [
        (span.name, resource.resource)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {name for name, _ in spans}
    assert {"POST /graphql", "GraphQL Operation: ForYou", "engine.recommend"} <= names, names
    assert "GraphQL Resolving: recommendations" in names
    services = {
        attribute.value.string_value
        for _, resource in spans
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"recsys-gql-under-test"}


def test_serve_refuses_an_otlp_protocol_it_cannot_send(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recsys_gql.cli import main

    monkeypatch.setenv("RECSYS_GQL_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert main(["serve", "--port", "1"]) == 2
    assert "exports traces over OTLP/HTTP only" in capsys.readouterr().err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rate_limit_checks_in_redis_are_spans_of_their_request(api_settings: Settings) -> None:
    require_redis().close()
    settings = api_settings.model_copy(
        update={
            "rate_limit_storage": REDIS_URL,
            "rate_limit_key_prefix": f"test-tracing-{uuid.uuid4().hex[:8]}",
        }
    )
    exporter = InMemorySpanExporter()
    with running(settings, create_app(settings, span_exporter=exporter)) as server:
        exporter.clear()
        answer = httpx.post(f"{server.url}/graphql", json={"query": "{ genres }"}, timeout=60)
        assert answer.status_code == 200, answer.text
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    redis_spans = [s for s in spans if (s.attributes or {}).get("db.system") == "redis"]
    assert redis_spans, [s.name for s in spans]
    for span in redis_spans:
        assert span.kind == SpanKind.CLIENT
        assert ancestors(span, by_id)[-1] == "POST /graphql"
