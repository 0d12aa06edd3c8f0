"""How the default diversity is chosen from the curve (a product rule, held to known
answers)."""

from __future__ import annotations

from training.diversity_study import MAX_NDCG_LOSS, choose_default


def curve(ndcgs: list[float]) -> list[dict[str, float]]:
    return [
        {"diversity": k / 10, "ndcg_at_10": value, "ild_at_10": 0.5 + k / 100}
        for k, value in enumerate(ndcgs)
    ]


def test_the_highest_diversity_within_the_allowed_loss_is_chosen() -> None:
    base = 0.2
    within = base * (1 - MAX_NDCG_LOSS) + 1e-9
    chosen = choose_default(curve([base, base, within, 0.1, within, 0.05]))
    assert chosen["diversity"] == 0.2  # past the dip at 0.3 nothing is trusted
    assert chosen["ndcg_at_10_at_0"] == base
    assert chosen["ild_at_10"] == 0.52


def test_pure_relevance_when_every_step_costs_too_much() -> None:
    assert choose_default(curve([0.2, 0.1, 0.05]))["diversity"] == 0.0


def test_diversity_that_does_not_hurt_is_taken_whole() -> None:
    assert choose_default(curve([0.2] * 11))["diversity"] == 1.0
