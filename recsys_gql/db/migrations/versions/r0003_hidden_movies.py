"""Negative feedback: the ``hidden_movies`` table (``hideMovie`` / ``unhideMovie``).

One row per (user, movie) the user asked never to see again. The primary key
``(user_id, movie_id)`` is the index for "the hidden movies of a user", the one query the
server runs on it; both columns reference their tables like ``ratings`` does.

Downgrading drops the table (and with it every hide); no other table is touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hidden_movies",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "movie_id"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["movie_id"], ["movies.id"]),
    )


def downgrade() -> None:
    op.drop_table("hidden_movies")
