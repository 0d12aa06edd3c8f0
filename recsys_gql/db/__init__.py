"""Async persistence: the catalog, users and ratings (SQLite or PostgreSQL).

- :mod:`recsys_gql.db.models` — SQLModel tables;
- :mod:`recsys_gql.db.session` — engine, session factory, ``write_session`` (SQLite write
  safety), and ``Database`` bundling the engine with its session factory;
- :mod:`recsys_gql.db.repository` — the queries the API uses;
- :mod:`recsys_gql.db.loader` — ``init_database``: load a MovieLens folder once, atomically.
"""
