"""Live recommendations over GraphQL subscriptions (``graphql-transport-ws``).

- :mod:`.connection`: who a WebSocket is (the bearer token of ``connection_init``), whether
  its token is still live, and fresh per-operation state on the connection's context;
- :mod:`.transport`: Strawberry's protocol handler plus a keep-alive that also closes a
  connection whose token was revoked (4403);
- :mod:`.updates`: the viewer's recommendations, again each time the user changes;
- the GraphQL ``Subscription`` type (thin resolvers) lives beside the other resolvers, in
  :mod:`recsys_gql.api.subscriptions`.

The changes come from the "user changed" bus (:mod:`recsys_gql.events`). See
docs/subscriptions.md.
"""
