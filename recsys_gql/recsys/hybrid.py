"""Blending the two arms: normalisation over one candidate set, the cold-start ramp, the
content profile and its popularity prior.

Normalisation: each arm's raw scores are min-max scaled over the *same* candidate movies (the
ones that pass the filters), so both arms span [0, 1] and ``α`` is the share of the final score
each arm controls: ``score = α · collab + (1 − α) · content``. (A z-score-then-normal-CDF variant
was tried: it saturates to ties at the top in float32 and ranked worse on validation.)

Ramp: when a request gives no ``α``, a user with ``n`` ratings gets ``α_n = α · n / (n + k)``, so
with few ratings (where ALS factors are noise) the content arm leads, and the collaborative arm
takes over as evidence accumulates.

Prior: the content arm is the mean embedding-neighbour similarity to the movies the user liked,
scaled by ``1 + popularity_weight · p`` where ``p ≥ 0`` is the movie's z-scored log rating count
shifted to start at 0. So among movies that resemble what the user liked, the ones people
actually watch come first — and a movie that resembles nothing the user liked stays at 0
however popular it is. (An additive prior, tried first, let blockbusters outrank every
similar movie for a new user: five Pixar ratings brought Forrest Gump and The Matrix.) The
prior's weight fades with the same ramp, ``w_n = w · k / (n + k)``: it matters for a new user
and hardly at all for one with hundreds of ratings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def normalise(raw: FloatArray) -> FloatArray:
    """Min-max scale candidate scores into [0, 1]; a constant arm becomes zeros (no signal)."""
    if raw.size == 0:
        return raw.astype(np.float32)
    values = raw.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros_like(raw, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def popularity_prior(counts: npt.NDArray[np.integer]) -> FloatArray:
    """The z-scored ``log(1 + rating count)`` of every movie, shifted so the least rated
    movie has 0 (a boost, never a penalty)."""
    logs = np.log1p(counts.astype(np.float64))
    std = float(logs.std())
    z = (logs - logs.mean()) / std if std > 0 else logs * 0
    return (z - z.min() if z.size else z).astype(np.float32)


def apply_prior(
    content: npt.NDArray[np.float32],
    prior: FloatArray,
    weight: float | npt.NDArray[np.floating],
) -> npt.NDArray[np.float32]:
    """``content · (1 + weight · prior)``; ``content`` may be one user's row or a matrix of
    users with a column of per-user ``weight``."""
    return (content * (1.0 + weight * prior)).astype(np.float32)


def ramped_alpha(alpha: float, n_ratings: int, ramp: float) -> float:
    """``α · n / (n + ramp)``: the collaborative share grows with the number of ratings."""
    if ramp <= 0:
        return alpha
    return alpha * n_ratings / (n_ratings + ramp)


def ramped_prior_weight(weight: float, n_ratings: int, ramp: float) -> float:
    """``w · k / (n + k)``: the popularity prior fades as the user's own evidence grows (the
    mirror of :func:`ramped_alpha`); with no ramp it stays at ``w``."""
    if ramp <= 0:
        return weight
    return weight * ramp / (n_ratings + ramp)


def profile_weights(ratings: FloatArray, global_mean: float, shrink: float) -> FloatArray:
    """Weights of a user's rated movies in the content profile.

    ``w = r − μ̃ + 0.5`` with ``μ̃`` the user's mean shrunk toward the global mean by ``shrink``
    pseudo-ratings; only positive weights are kept, so the profile is built from what the user
    liked relative to their own habit, and a lone low rating does not become a taste.
    """
    if ratings.size == 0:
        return ratings.astype(np.float32)
    mean = (float(ratings.sum()) + shrink * global_mean) / (ratings.size + shrink)
    weights = ratings.astype(np.float64) - mean + 0.5
    return np.maximum(weights, 0.0).astype(np.float32)


def top_n(scores: npt.NDArray[np.floating], n: int) -> npt.NDArray[np.int64]:
    """Positions of the ``n`` largest scores, best first; ties go to the lower position, also
    at the cut (``argpartition`` alone keeps an arbitrary subset of the movies tied there),
    so the answer is exactly ``np.argsort(-scores, kind="stable")[:n]``."""
    if n >= scores.size:
        order = np.argsort(-scores, kind="stable")
        return order.astype(np.int64)
    negated = -scores
    cut = np.partition(negated, n - 1)[n - 1]
    above = np.flatnonzero(negated < cut)
    tied = np.flatnonzero(negated == cut)[: n - above.size]
    part = np.concatenate([above, tied])
    order = part[np.lexsort((part, negated[part]))]
    return order.astype(np.int64)


def normalise_rows(
    raw: npt.NDArray[np.floating], exclude: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """:func:`normalise` applied to each row over its non-excluded columns at once (the batch
    form the evaluation uses; excluded cells come back as 0)."""
    values = np.where(exclude, np.nan, raw.astype(np.float64))
    low = np.nanmin(values, axis=1, keepdims=True)
    span = np.nanmax(values, axis=1, keepdims=True) - low
    scaled = np.divide(values - low, span, out=np.zeros_like(values), where=span > 1e-12)
    return np.nan_to_num(np.where(exclude, 0.0, scaled), nan=0.0).astype(np.float32)
