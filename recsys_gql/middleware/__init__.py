"""Pure ASGI middleware, one per module (Starlette's style): each wraps the app below it and
touches only the ASGI messages it needs.

- :mod:`.request_id` — every request gets an id (``X-Request-ID`` when sane), returned in the
  response and attached to every log record made while serving it;
- :mod:`.access_log` — one log line per request: JSON in production, text in development;
- :mod:`.body_limit` — request bodies over the size limit are refused with 413;
- :mod:`.timeout` — a GraphQL request past its time limit is answered 503 (code ``TIMEOUT``),
  and its deadline is left in the scope's ``state`` for the work it starts;
- :mod:`.responses` — the JSON error body the middleware above answer with.

Facts the layers below learn about a request (the GraphQL operation, its error codes, its
cost) reach these middlewares through the ASGI scope's ``state`` dict, under the keys in
:mod:`.request_state`; a metrics middleware can read the same keys beside them.
"""
