"""Rating statistics from the index alone: ``ratings (movie_id, rating)`` replaces
``ratings (movie_id)``.

Every movie a query shows asks for its rating count and mean
(``SELECT movie_id, COUNT(*), AVG(rating) … WHERE movie_id IN (…) GROUP BY movie_id``). With
an index on ``movie_id`` alone each rating is a lookup into the table; with ``rating`` in the
index SQLite answers from the index ("USING COVERING INDEX"), and PostgreSQL can with an
index-only scan. The new index serves every lookup by ``movie_id`` the old one did (its
leading column), so the old one is dropped rather than kept as dead weight on every write.
Measured in ``bench/rating_stats_index.py`` (BENCHMARKS.md).

Downgrading restores the old index; no row is touched either way.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ratings_movie_id_rating", "ratings", ["movie_id", "rating"])
    op.drop_index("ix_ratings_movie_id", table_name="ratings")


def downgrade() -> None:
    op.create_index("ix_ratings_movie_id", "ratings", ["movie_id"])
    op.drop_index("ix_ratings_movie_id_rating", table_name="ratings")
