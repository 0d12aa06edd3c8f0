"""The recommendation engine: a small, pure, synchronous core with no GraphQL or DB imports."""
