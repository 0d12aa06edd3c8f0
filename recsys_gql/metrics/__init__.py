"""Prometheus metrics (docs/operations.md, "Metrics"), one concern per module:

- :mod:`.registry` — every metric, defined once;
- :mod:`.hooks` — the callbacks handed to the engine, the caches, the rating writer, the rate
  limiter and the database, so those layers never import prometheus-client;
- :mod:`.multiprocess` — the per-start directory that sums uvicorn's workers;
- :mod:`.exposition` — ``/metrics`` on the app, or on its own port.

HTTP requests are counted by :mod:`recsys_gql.middleware.metrics`, cost and throttling by
:mod:`recsys_gql.api.extensions.operation_metrics`, reloads by :mod:`recsys_gql.reload`.
"""
