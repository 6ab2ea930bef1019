"""Small helpers for benchmark figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ...}`` rounded to 0.1; empty input gives NaN-free zeros."""
    if not values:
        return {f"p{q}": 0.0 for q in qs}
    arr = np.asarray(values, dtype=float)
    return {f"p{q}": round(float(np.percentile(arr, q)), 1) for q in qs}
