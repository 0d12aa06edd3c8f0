"""recsys-gql: a GraphQL API server for hybrid movie recommendations."""

__version__ = "0.1.0"
