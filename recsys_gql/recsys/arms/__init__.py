"""The arms, one module each, and their registry.

Adding an arm is one module (an :class:`~recsys_gql.recsys.arm.Arm` subclass) plus one entry
in :data:`ARMS`: training fits it, the manifest records its configuration and files, the
engine loads it, the ranking stage gets its features and explanations its contributions.
"""

from __future__ import annotations

from recsys_gql.recsys.arm import AnyArm
from recsys_gql.recsys.arms.als import AlsArm
from recsys_gql.recsys.arms.content import ContentArm
from recsys_gql.recsys.arms.ease import EaseArm
from recsys_gql.recsys.arms.popularity import PopularityArm

ARMS: tuple[type[AnyArm], ...] = (AlsArm, EaseArm, ContentArm, PopularityArm)
"""Every arm, in the order their features reach the ranking stage."""

REQUIRED = frozenset({"als", "content", "popularity"})
"""Arms every run has: the explicit α blend needs ALS and content, cold start popularity.
The others may be skipped (their ``skip_reason``), and the engine serves without them."""


def arm_type(name: str) -> type[AnyArm]:
    """The registered arm called ``name``."""
    for arm in ARMS:
        if arm.name == name:
            return arm
    known = ", ".join(a.name for a in ARMS)
    raise KeyError(f"unknown arm {name!r}; known: {known}")
