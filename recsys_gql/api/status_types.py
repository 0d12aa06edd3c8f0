"""What the service reports about itself: the rate limit a request spent, and health."""

from __future__ import annotations

from datetime import datetime

import strawberry

from recsys_gql.api.arm_types import Arm, ArmStatus
from recsys_gql.api.context import Info
from recsys_gql.api.cost import ListSize
from recsys_gql.recsys.engine import Engine


@strawberry.type(
    description="What this request spent of the client's read budget, and what is left "
    "(the same as the X-RateLimit-* headers)."
)
class RateLimit:
    cost: int = strawberry.field(description="Reads this operation spent.")
    limit: int = strawberry.field(description="Reads the client may spend per window.")
    remaining: int = strawberry.field(description="Reads left in the window after this one.")
    reset_at: datetime = strawberry.field(description="When the window has room again.")
    query_cost: int = strawberry.field(
        description="This operation's estimated cost in cost units (see @cost in the SDL)."
    )
    max_query_cost: int = strawberry.field(description="The most one operation may cost.")


@strawberry.type
class Health:
    ok: bool
    run_id: str
    movies: int
    users: int
    ratings: int
    embedding_model: str
    collaborative_model: str
    index: str
    engine_loaded: bool
    database_connected: bool
    search_model_loaded: bool

    @strawberry.field(
        description="Each arm of the run: served, or skipped and why.",
        directives=[ListSize(assumed_size=len(Arm))],
    )
    def arms(self, info: Info) -> list[ArmStatus]:
        return [
            ArmStatus(arm=Arm(s.name), serving=s.serving, reason=s.reason)
            for s in info.context.engine.arm_status
        ]

    @strawberry.field(
        description="Why the run has no learned ranking stage (null: it has one and serves it "
        "by default)."
    )
    def ranking_stage_missing(self, info: Info) -> str | None:
        return info.context.engine.ranking_stage

    @classmethod
    def of(cls, engine: Engine, database_connected: bool) -> Health:
        """From the loaded engine's manifest and whether the database answers."""
        manifest = engine.manifest
        return cls(
            ok=database_connected,
            run_id=manifest.run_id,
            movies=manifest.counts["movies"],
            users=manifest.counts["users"],
            ratings=manifest.counts["ratings"],
            embedding_model=manifest.models["embedding"],
            collaborative_model=manifest.models["collaborative"],
            index=manifest.models["index"],
            engine_loaded=True,
            database_connected=database_connected,
            search_model_loaded=engine.search_model_loaded,
        )
