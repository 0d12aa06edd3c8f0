"""The schema as ``SQLModel.metadata.create_all`` made it before migrations (commit 4b55700).

A database made by that ``create_all`` has exactly these tables, and ``recsys-gql db upgrade``
stamps it with this revision instead of creating anything (:data:`TABLE_COLUMNS` is how it
recognises one). ``tests/db/test_migrations.py`` compares this revision with the frozen DDL
of that commit on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLE_COLUMNS: dict[str, frozenset[str]] = {
    "movies": frozenset(
        {"id", "title", "title_folded", "year", "genres", "overview", "tmdb_id", "imdb_id"}
    ),
    "users": frozenset({"id", "created_at"}),
    "ratings": frozenset({"user_id", "movie_id", "rating", "rated_at"}),
    "dataset_info": frozenset(
        {"id", "sha256", "files", "source", "loaded_at", "movies", "users", "ratings"}
    ),
    "api_tokens": frozenset({"id", "user_id", "token_sha256", "created_at", "revoked_at"}),
}
"""The columns of every table of this revision, by table."""


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dataset_info",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        _when("loaded_at"),
        sa.Column("movies", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("id = 1", name="ck_dataset_info_single_row"),
    )
    op.create_table(
        "movies",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("title_folded", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("genres", sa.String(), nullable=False),
        sa.Column("overview", sa.String(), nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=True),
        sa.Column("imdb_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_movies_title_folded", "movies", ["title_folded"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        _when("created_at"),
        _when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "ratings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=False),
        _when("rated_at"),
        sa.PrimaryKeyConstraint("user_id", "movie_id"),
        sa.CheckConstraint("rating >= 0.5 AND rating <= 5.0", name="ck_ratings_rating_range"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["movie_id"], ["movies.id"]),
    )
    op.create_index("ix_ratings_movie_id", "ratings", ["movie_id"])


def downgrade() -> None:
    for table in ("ratings", "api_tokens", "users", "movies", "dataset_info"):
        op.drop_table(table)
