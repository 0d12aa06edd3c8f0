"""The GraphQL layer: schema, types, thin resolvers, per-request loaders."""
