"""The ``/graphql`` endpoint: Strawberry's ASGI view with the typed context built per
request, JSON bodies decoded strictly, bad input answered with 4xx, and GraphiQL served from
the app itself."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from recsys_gql.api.context import Context
from recsys_gql.api.http_status import error_status
from recsys_gql.api.json_body import decode_request_json
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.request_work import RequestWork
from recsys_gql.api.security import Viewer, identify
from recsys_gql.db.session import Database
from recsys_gql.graphiql import GraphiQLPage
from recsys_gql.settings import Settings


def request_context(
    state: Mapping[str, Any],
    request: Request | WebSocket,
    response: Response | WebSocket,
    viewer: Viewer,
) -> Context:
    """A request's context from its ``state`` (the lifespan's, see
    :class:`recsys_gql.app.State`, plus the
    ``deadline`` the timeout middleware set; without one, the request timeout from now):
    fresh loaders, and engine calls that respect the deadline."""
    settings: Settings = state["settings"]
    database: Database = state["database"]
    return Context(
        request=request,
        response=response,
        engine=state["engine"],
        database=database,
        loaders=Loaders.create(database.reads, state["catalog"]),
        catalog=state["catalog"],
        settings=settings,
        rating_writer=state["rating_writer"],
        recommendation_memo=state["recommendation_memo"],
        search_batcher=state["search_batcher"],
        viewer_id=viewer.user_id,
        auth_problem=viewer.problem,
        work=RequestWork(
            state.get("deadline", time.monotonic() + settings.request_timeout_seconds),
            state["turnstile"],
        ),
    )


class RecsysGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with the typed context built per request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graphiql_page = GraphiQLPage()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope["state"]
        viewer = await identify(state["database"].reads, request.headers.get("authorization"))
        return request_context(state, request, response, viewer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:  # Strawberry answers these in plain text; clients get JSON
            response = JSONResponse(
                {
                    "data": None,
                    "errors": [{"message": exc.reason, "extensions": {"code": "BAD_REQUEST"}}],
                },
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        if isinstance(response_data, dict) and not sub_response.status_code:
            status = error_status(response_data)
            if status is not None:
                sub_response.status_code = status
        return super().create_response(response_data, sub_response)

    async def render_graphql_ide(self, request: Request) -> Response:
        return self.graphiql_page.response(request)  # served locally, never from unpkg.com
