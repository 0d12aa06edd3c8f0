"""Who a WebSocket connection is, and the per-operation state of its shared context.

Browsers cannot set headers on a WebSocket, so the token travels in the ``connection_init``
payload as ``{"Authorization": "Bearer <token>"}`` (GraphiQL sends its Headers tab there);
an ``Authorization`` header on the handshake is accepted too. A connection without a live
token is refused: Strawberry closes it with 4403 (Forbidden).

Strawberry gives all the operations of a connection one context, built at the handshake.
What a request owns (loaders that cache, a deadline) is renewed per operation and per pushed
update by :func:`renew`, so nothing is stale and no deadline runs from the handshake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from strawberry.exceptions import ConnectionRejectionError

from recsys_gql.api.context import Context
from recsys_gql.api.loaders import Loaders
from recsys_gql.api.request_work import RequestWork
from recsys_gql.api.security import identify
from recsys_gql.api.served_run import ServedRun

NO_TOKEN = 'connection_init needs {"Authorization": "Bearer <token>"}'


def authorization(context: Context) -> str | None:
    """The ``Authorization`` value of the connection: from ``connection_init``'s payload (any
    letter case), else from the handshake's headers."""
    params = context.connection_params or {}
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == "authorization":
            return value if isinstance(value, str) else ""
    return context.request.headers.get("authorization")


async def connect_viewer(context: Context) -> dict[str, object]:
    """Accept the connection for the token's user (the ``connection_ack`` payload names it),
    or refuse it (:class:`ConnectionRejectionError`: closed with 4403)."""
    viewer = await identify(context.database.reads, authorization(context))
    if viewer.user_id is None:
        raise ConnectionRejectionError({"message": viewer.problem or NO_TOKEN})
    context.viewer_id = viewer.user_id
    context.auth_problem = None
    return {"viewerId": viewer.user_id}


async def still_signed_in(context: Context) -> bool:
    """Whether the connection's token still belongs to its viewer (not revoked)."""
    viewer = await identify(context.database.reads, authorization(context))
    return viewer.user_id is not None and viewer.user_id == context.viewer_id


def renew(context: Context) -> None:
    """The run served now (a reload since the connection opened is picked up, and the old run
    is not kept alive by long-lived connections), fresh loaders and a fresh deadline for the
    next operation or update of a connection."""
    state: Mapping[str, object] = context.request.scope["state"]
    served: ServedRun = state["reloader"].served  # type: ignore[attr-defined]
    context.engine = served.engine
    context.catalog = served.catalog
    context.recommendation_memo = served.memo
    context.search_batcher = served.search_batcher
    context.loaders = Loaders.create(context.database.reads, served.catalog)
    context.work = RequestWork(
        time.monotonic() + context.settings.request_timeout_seconds,
        state["turnstile"],  # type: ignore[arg-type]
    )
