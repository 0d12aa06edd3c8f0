"""One concern: record what pricing and throttling decided about an operation, for Prometheus.

Runs after :class:`~recsys_gql.api.extensions.throttling.Throttling`: by then the context holds the
operation's estimated cost (``QueryCost``) and the limiter's verdict. The cost goes into a
histogram, the units charged into ``recsys_gql_rate_limit_spent_total`` and a refusal into
``recsys_gql_rate_limit_refusals_total``, each by bucket (read or write).
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from recsys_gql.api.context import Context
from recsys_gql.metrics.registry import QUERY_COST, RATE_LIMIT_REFUSALS, RATE_LIMIT_SPENT


class OperationMetrics(SchemaExtension):
    """Records the cost and the rate-limit verdict of each executed operation."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            if context.query_cost is not None:
                QUERY_COST.observe(context.query_cost)
            verdict = context.rate_limit
            if verdict is not None:
                bucket = verdict.bucket.value
                if verdict.allowed:
                    RATE_LIMIT_SPENT.labels(bucket).inc(verdict.cost)
                else:
                    RATE_LIMIT_REFUSALS.labels(bucket).inc()
        yield
