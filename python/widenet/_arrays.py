"""Input arrays: checked and converted once to the C-contiguous layout and
dtype a computation needs (no copy when they already are)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def _float_array(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise ValueError(
            f"{name} has dtype {a.dtype}; widenet takes floating-point arrays "
            "(float32 for the device path, float64 for the exact path)"
        )
    return a


def precision(x1: Any, x2: Any = None) -> type:
    """float64 when either input is float64 (or wider), else float32."""
    kinds = [np.asarray(x) for x in (x1, x2) if x is not None]
    for a, name in zip(kinds, ("x1", "x2")):
        _float_array(a, name)
    if any(a.dtype.itemsize >= 8 for a in kinds):
        return np.float64
    return np.float32


def matrix(x: Any, name: str, dtype: type) -> np.ndarray:
    """``x`` as a C-contiguous ``[points, features]`` array of ``dtype``."""
    a = _float_array(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array [points, features], got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def targets(y: Any, n: int, name: str = "y") -> np.ndarray:
    """Targets as a C-contiguous float32 ``[n, outputs]`` array (a 1-d array
    is one output; integer class labels are accepted)."""
    a = np.asarray(y)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} has dtype {a.dtype}; expected numbers")
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-d or 2-d [points, outputs], got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows but x has {n}")
    return np.ascontiguousarray(a, dtype=np.float32)


def positive_int(v: Optional[int], name: str) -> Optional[int]:
    """``v`` checked to be None or an integer of at least 1."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)
