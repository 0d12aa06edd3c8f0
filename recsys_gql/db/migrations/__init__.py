"""Alembic's migration environment and the schema revisions (``versions/``), run by
``recsys-gql db upgrade`` through :mod:`recsys_gql.db.migrate`."""
