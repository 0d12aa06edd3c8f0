"""The GraphQL types that name the engine's arms: the ``Arm`` enum, built from the arm
registry, and the small types that pair an arm with a number."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import strawberry

from recsys_gql.recsys.arms import ARMS
from recsys_gql.recsys.features import CONTEXT

LEGACY_ARM_NAMES = {"als": "COLLABORATIVE"}
"""GraphQL names kept from before the arm registry; any other arm is its name in capitals."""


def arm_enum() -> type[enum.Enum]:
    """The GraphQL ``Arm`` enum: one value per registered arm (described by the arm itself),
    and ``CONTEXT`` for the user's and the movie's own features. Registering an arm adds its
    value: nothing here changes."""
    members: dict[str, Any] = {
        LEGACY_ARM_NAMES.get(arm.name, arm.name.upper()): strawberry.enum_value(
            arm.name, description=arm.description
        )
        for arm in ARMS
    }
    members[CONTEXT.upper()] = strawberry.enum_value(
        CONTEXT, description="not an arm: the user's activity, the movie's age, genre affinity"
    )
    return enum.Enum("Arm", members)  # type: ignore[return-value]


if TYPE_CHECKING:
    Arm = enum.Enum
else:
    Arm = strawberry.enum(
        arm_enum(),
        description="A scoring model of the engine (and, for how a result was ranked, the "
        "user's and the movie's own features).",
    )


@strawberry.enum(description="What produced a recommendation.")
class RecommendationSource(enum.Enum):
    RANKER = strawberry.enum_value("ranker", description="the learned ranking stage (default)")
    BLEND = strawberry.enum_value("hybrid", description="the linear blend a request's alpha asks")
    POPULARITY = strawberry.enum_value("popularity", description="no ratings yet: most rated")


@strawberry.type(description="One arm's score of a recommendation.")
class ArmScore:
    arm: Arm
    score: float = strawberry.field(description="Scaled 0-1 over the request's candidates.")


@strawberry.type(description="How much one arm drove a recommendation.")
class ArmShare:
    arm: Arm
    share: float = strawberry.field(description="0-1; the shares of a result sum to 1.")


@strawberry.type(description="Whether the run serves an arm.")
class ArmStatus:
    arm: Arm
    serving: bool
    reason: str | None = strawberry.field(description="Why it is not served (e.g. memory).")
