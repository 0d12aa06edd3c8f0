"""Fast CSV rendering of non-negative integer columns with numpy, for :mod:`bench.synth`.

pandas' ``to_csv`` formats one value at a time (about 300k rows/s here); 25M ratings would take
over a minute just to print. This renders every row at once: each column's digits are written
from the right, one digit position per pass, into one byte buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def _digits(values: IntArray) -> IntArray:
    """Number of decimal digits of each non-negative value (1 for 0)."""
    width = np.ones(values.shape, dtype=np.int64)
    rest = values // 10
    while rest.any():
        width += rest > 0
        rest //= 10
    return width


def render_rows(columns: Sequence[IntArray], decimals: Sequence[int] | None = None) -> bytes:
    """CSV lines (``\\n``-terminated) of equal-length non-negative integer ``columns``.

    ``decimals[i] = d`` prints column ``i`` as a fixed-point number with ``d`` decimals: the
    value 35 with ``d = 1`` is written ``3.5`` and 5 is written ``0.5``.
    """
    if not columns:
        raise ValueError("no columns")
    places = list(decimals) if decimals is not None else [0] * len(columns)
    if len(places) != len(columns):
        raise ValueError("one decimals entry per column")
    arrays = [np.asarray(c, dtype=np.int64) for c in columns]
    n = arrays[0].size
    if n == 0:
        return b""
    if any(a.shape != (n,) for a in arrays) or any(bool((a < 0).any()) for a in arrays):
        raise ValueError("columns must be one-dimensional, of equal length and non-negative")
    digit_counts = [np.maximum(_digits(a), d + 1) for a, d in zip(arrays, places, strict=True)]
    widths = [w + (d > 0) for w, d in zip(digit_counts, places, strict=True)]
    line = np.sum(widths, axis=0) + len(arrays)  # a comma after each field but the last; "\n"
    end = np.cumsum(line)
    out = np.full(int(end[-1]), ord(","), dtype=np.uint8)
    out[end - 1] = ord("\n")
    field_end = end - line  # one before the first field's first byte
    for values, width, point in zip(arrays, widths, places, strict=True):
        field_end = field_end + width  # index of the field's last byte, plus one
        rest = values.copy()
        for j in range(int(width.max())):  # j-th character from the right
            mask = j < width
            where = field_end[mask] - 1 - j
            if point and j == point:
                out[where] = ord(".")
                continue
            out[where] = (ord("0") + rest[mask] % 10).astype(np.uint8)
            rest //= 10
        field_end = field_end + 1  # skip the comma
    return out.tobytes()
