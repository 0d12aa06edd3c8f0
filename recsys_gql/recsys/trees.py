"""How the ranking stage's trees are evaluated: compiled to native code, or by LightGBM.

LightGBM's own ``predict`` walks every tree of the model for every candidate through generic
node tables. `lleaves <https://github.com/siboehm/lleaves>`_ compiles the same text model
with LLVM into one native function per model (every threshold a constant, every tree
straight-line code), so the answer is LightGBM's and the work is a fraction of it
(BENCHMARKS.md, "Engine latency").

The model is compiled when the engine loads (the code lives in memory; lleaves reads the text
model from a file, so a private temporary copy is written and removed), then checked: a probe
of rows built from the model's own split thresholds (each threshold exactly, a little above
and below, missing values and zeros) is scored by both, and any difference above
:data:`TOLERANCE` keeps LightGBM. So does a compile that fails. Either way the engine serves,
and :attr:`Trees.note` says why it is not compiled.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

TreeBackend = Literal["compiled", "lightgbm"]
TOLERANCE = 1e-9
"""Largest difference from LightGBM's score the compiled model may show on the probe."""
PROBE_ROWS = 512
ZERO = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold``: its predict from a dense matrix keeps a value only when
``|value| > ZERO`` (others are read as 0), so the compiled model is given the same zeros."""

Predict = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class Trees:
    """A loaded model's predict function and how it runs."""

    predict: Predict
    """Rows (float32, one column per feature) → one score per row (float64)."""
    backend: TreeBackend
    note: str | None = None
    """Why the model runs on LightGBM although compiled was asked for (``None``: it was not)."""


def lightgbm_trees(booster: Any, note: str | None = None) -> Trees:
    """The booster's own predict, on one thread (a request is one thread's work)."""

    def predict(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return np.asarray(booster.predict(matrix, num_threads=1), dtype=np.float64)

    return Trees(predict, "lightgbm", note)


def load_trees(booster: Any, text: str, backend: TreeBackend) -> Trees:
    """``text`` (the booster's LightGBM text model) evaluated by ``backend``; compiled only
    when the compiled model gives LightGBM's scores on :func:`probe_rows`."""
    if backend == "lightgbm":
        return lightgbm_trees(booster)
    try:
        model = _compile(text)
    except Exception as exc:  # lleaves missing, LLVM refusing the target, a parse error …
        return _fallback(booster, f"the model did not compile ({type(exc).__name__}: {exc})")

    def predict(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        rows = np.array(matrix, dtype=np.float64, order="C")
        rows[np.abs(rows) <= ZERO] = 0.0
        scores: npt.NDArray[np.float64] = model.predict(rows, n_jobs=1)
        return scores

    probe = probe_rows(booster)
    expected = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
    worst = float(np.max(np.abs(predict(probe) - expected), initial=0.0))
    if not worst <= TOLERANCE:
        return _fallback(booster, f"compiled scores differ from LightGBM's by up to {worst:.3g}")
    return Trees(predict, "compiled")


def _compile(text: str) -> Any:
    """The text model compiled by lleaves for this machine's CPU (its file read from a
    private temporary copy, so nothing can change it between verification and compiling)."""
    import lleaves

    with tempfile.TemporaryDirectory(prefix="recsys-gql-trees-") as folder:
        path = Path(folder) / "model.txt"
        path.write_text(text, encoding="utf-8")
        model = lleaves.Model(model_file=str(path))
        model.compile()
    return model


def _fallback(booster: Any, reason: str) -> Trees:
    note = f"{reason}: ranking with LightGBM's predict instead"
    logger.warning("ranking stage: %s", note)
    return lightgbm_trees(booster, note)


def probe_rows(booster: Any, rows: int = PROBE_ROWS, seed: int = 0) -> npt.NDArray[np.float32]:
    """Rows whose every value sits where a split decides: each feature's split thresholds
    exactly (LightGBM sends ``value <= threshold`` left), one float32 step either side, and
    in a tenth of the rows each, missing values and zeros; mixed at random across features
    (LightGBM's own thresholds at ``±ZERO`` test its reading of tiny values as 0)."""
    rng = np.random.default_rng(seed)
    n_features = int(booster.num_feature())
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for tree in booster.dump_model()["tree_info"]:
        _collect(tree["tree_structure"], thresholds)
    out = np.empty((rows, n_features), dtype=np.float32)
    for j, values in enumerate(thresholds):
        limit = float(np.finfo(np.float32).max)
        points = np.clip(np.asarray(values or [0.0]), -limit, limit).astype(np.float32)
        with np.errstate(over="ignore"):  # a step past float32's largest is infinity
            choices = np.concatenate([
                points,
                np.nextafter(points, np.float32(np.inf)),
                np.nextafter(points, np.float32(-np.inf)),
            ]).astype(np.float32)  # fmt: skip
        kind = rng.random(rows)
        drawn = rng.choice(choices, rows)
        out[:, j] = np.where(kind < 0.1, np.nan, np.where(kind < 0.2, 0.0, drawn))
    return out


def _collect(node: dict[str, Any], thresholds: list[list[float]]) -> None:
    """Every numeric split threshold under ``node``, by feature."""
    stack = [node]
    while stack:
        current = stack.pop()
        if "split_feature" not in current:
            continue
        threshold = current.get("threshold")
        if isinstance(threshold, int | float):
            thresholds[int(current["split_feature"])].append(float(threshold))
        stack += [current["left_child"], current["right_child"]]
