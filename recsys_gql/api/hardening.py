"""Hardening against scripts and garbage, each piece one concern:

* query cost limits (depth, aliases, tokens) as Strawberry validation extensions — a nested
  ``similar { movie { similar … } }`` grows tenfold per level and must be refused unread;
* introspection and field suggestions off in production;
* a request body size limit (413) and a per-request time limit (503), as ASGI middleware;
* JSON bodies decoded strictly: invalid UTF-8, unpaired surrogates and non-object bodies are
  400s (Strawberry and graphql-core answer them with a 500);
* bad input that stops a whole operation (parse, validation, variable coercion, an invalid
  argument, a cost over the limit) answered with 400 rather than 200, and an operation its
  deadline stopped with 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any

from cross_web import HTTPException
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as create_alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_rule
from strawberry.schema.config import StrawberryConfig

from recsys_gql.settings import Settings

log = logging.getLogger("recsys_gql.api")

BAD_INPUT_CODES = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "INVALID_ARGUMENT",
        "QUERY_TOO_COSTLY",
    }
)


class ParserCacheKeepingErrors(ParserCache):
    """Strawberry's ``ParserCache``, except that a document that does not parse is left for
    Strawberry's own parse.

    ``ParserCache`` parses before its hook yields, so a syntax error (or a document over the
    token limit) escaped the operation's extensions: it came back as HTTP 200 without an
    ``extensions.code``. Left unparsed, the document is parsed again inside the operation
    (a second parse, for bad documents only) and its error is coded and answered with 400
    like any other bad input.
    """

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        with suppress(GraphQLError):
            execution.graphql_document = self.cached_parse_document(
                execution.query, **execution.parse_options
            )
        yield


class DocumentLimits(SchemaExtension):
    """The query cost limits as one extension: when an operation starts, the token limit for
    parsing and the extra validation rules (depth, aliases; in production, no introspection).

    Strawberry's ``MaxTokensLimiter``, ``AddValidationRules`` and ``DisableIntrospection`` do
    the same as two or three extensions, and every extension costs every request a hook lookup
    in each phase: replacing the two with this one took a ``{ __typename }`` request from
    1,096 to 1,034 Python calls, and ``recommendations`` from 2,962 to 2,900 (cProfile,
    in-process).
    """

    def __init__(self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.max_tokens = max_tokens
        self.validation_rules = rules

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        execution.parse_options["max_tokens"] = self.max_tokens
        execution.validation_rules = execution.validation_rules + self.validation_rules
        yield


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Depth, alias and token limits, plus no introspection in production, as one
    :class:`DocumentLimits`.

    The depth and alias rule classes are built once here: Strawberry's limiters build a new
    rule class per instance, and since the validation cache is keyed by the rule classes, a
    limiter made per request would make every request miss the cache (measured: validation
    took about half of a ``{ __typename }`` request).
    """
    rules: list[type[ASTValidationRule]] = [
        create_depth_rule(settings.max_query_depth, None),
        create_alias_rule(settings.max_query_aliases),
    ]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    frozen = tuple(rules)
    return [lambda: DocumentLimits(settings.max_query_tokens, frozen)]


def schema_config(settings: Settings) -> StrawberryConfig:
    """No "did you mean …" suggestions in production (they leak the schema)."""
    return StrawberryConfig(disable_field_suggestions=settings.is_production)


def _check_strings(value: object) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # raises on unpaired surrogates such as "\ud800"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def decode_request_json(data: str | bytes) -> object:
    """``json.loads`` for request bodies, refusing with 400 what graphql-core would turn into
    a 500: invalid UTF-8, unpaired surrogates, and bodies that are not objects (or lists, which
    Strawberry itself refuses as batches)."""
    try:
        decoded = json.loads(data)
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "the request body is not valid UTF-8") from exc
    try:
        _check_strings(decoded)
    except UnicodeEncodeError as exc:
        raise HTTPException(400, "the request contains an unpaired surrogate") from exc
    except RecursionError as exc:
        raise HTTPException(400, "the request body is nested too deeply") from exc
    if not isinstance(decoded, dict | list):
        raise HTTPException(400, "the request body must be a JSON object")
    return decoded


def error_status(response_data: Mapping[str, Any]) -> int | None:
    """The HTTP status of an operation stopped whole (no data): 400 when only bad input
    stopped it, 503 when it ran out of time (code ``TIMEOUT``: its deadline passed before its
    work could start); ``None`` otherwise (200, partial data and errors included)."""
    errors = response_data.get("errors") or []
    if response_data.get("data") is not None or not errors:
        return None
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    if codes <= BAD_INPUT_CODES:
        return 400
    if "TIMEOUT" in codes:
        return 503
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _error(message: str, code: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = _error(f"request body over {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json(send, 413, too_big)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, too_big)


class _BodyTooLarge(Exception):
    pass


class RequestTimeout:
    """Answers 503 (code ``TIMEOUT``) when a GraphQL request runs longer than ``seconds``, and
    cancels what it was doing.

    The deadline (``time.monotonic()``) goes into the request's ``state`` as ``deadline``,
    where the request's :class:`~recsys_gql.api.request_work.RequestWork` reads it: an engine
    call not started by then never starts, even one already queued for a thread.
    """

    def __init__(self, app: ASGIApp, seconds: float, path: str = "/graphql") -> None:
        self.app = app
        self.seconds = seconds
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        scope.setdefault("state", {})["deadline"] = time.monotonic() + self.seconds
        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            log.warning("request timed out after %.1fs", self.seconds)
            if not started:
                message = f"the request took longer than {self.seconds:g}s"
                await _send_json(send, 503, _error(message, "TIMEOUT"))
