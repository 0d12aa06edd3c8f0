"""An execution context that leaves no reference cycle behind, so a request's objects are
freed when it ends rather than by the garbage collector.

graphql-core 3.3's ``Executor`` keeps ``async_helpers``: a tuple of two methods bound to the
executor itself, stored on the executor. That cycle holds everything the execution reached
(the context, the request, the loaders, the results, and what hangs off them) until a
young-generation collection finds it, and such a pass over many requests' worth stalled the
event loop for every request in flight (BENCHMARKS.md has the figures).

Here the helpers reach the executor through weak references: same calls, same behaviour, no
cycle. ``tests/api/test_execution.py`` checks that a request leaves no cyclic garbage.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


def _weakly_bound(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (bound), holding its object only weakly."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = ref()
        if bound is None:  # only reachable by keeping a resolver's info past its execution
            raise RuntimeError("the GraphQL execution these helpers belong to has ended")
        return bound(*args)

    return call


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with ``async_helpers`` that do not keep it alive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_weakly_bound(self.gather_async_work),
            track=_weakly_bound(self.track_async_work),
        )
