"""Predictions of infinitely wide networks trained by gradient descent on the
MSE loss, with neural-tangents' ``predict`` API and semantics.

The loss is ``1/(2N) sum (f - y)^2`` with ``N = y_train.size``; the time is
``t * learning_rate``; ``diag_reg`` is added to the train kernel's diagonal,
relative to the mean of that diagonal (``diag_reg_absolute_scale=False``);
``t = None`` or ``inf`` is the exact posterior (``gp_inference``); ``get='nngp'``
trains only the readout (Bayesian inference with the NNGP prior), ``'ntk'``
every layer (Lee et al. 2019, https://arxiv.org/abs/1902.06720, eqs. 15-16).
All linear algebra is float64; results come back in the kernels' dtype.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable, Optional

import numpy as np

from . import _arrays, _gets, _native
from ._gets import Get

__all__ = ["gradient_descent_mse_ensemble", "gp_inference", "Gaussian"]

#: A prediction with its uncertainty: ``.mean`` and ``.covariance``.
Gaussian = namedtuple("Gaussian", ["mean", "covariance"])
Gaussian.__doc__ = "Mean and covariance of the outputs on the test points (neural-tangents' ``predict.Gaussian``)."


def _check_trace_axes(trace_axes: Any) -> None:
    if tuple(trace_axes) not in ((-1,), (1,)):
        raise ValueError(f"trace_axes: widenet traces over the outputs only, (-1,); got {trace_axes!r}")


def _kernel(k: Any, g: str, what: str) -> Optional[np.ndarray]:
    """Kernel ``g`` of a named tuple (or the array itself)."""
    if k is None:
        return None
    if isinstance(k, np.ndarray):
        return k
    v = getattr(k, g, None)
    if v is None:
        raise ValueError(f"{what} has no {g.upper()} kernel (.{g})")
    return np.asarray(v)


def _f64(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float64)


def _relative_reg(diag_reg: float, absolute: bool, k_dd: np.ndarray) -> float:
    if not absolute:
        return float(diag_reg)
    scale = float(np.mean(np.diagonal(k_dd)))
    if not scale > 0:
        raise ValueError("diag_reg_absolute_scale needs a train kernel with a positive diagonal")
    return float(diag_reg) / scale


def _run(k_dd: Any, k_td: Any, k_tt: Any, y: np.ndarray, g: str, t: Any, lr: float,
         diag_reg: float, absolute: bool, out_dtype: Any) -> Any:
    ts = np.asarray(np.inf if t is None else t, dtype=np.float64)
    times = [None if np.isinf(v) and v > 0 else float(v) for v in ts.reshape(-1)]
    if not times:
        raise ValueError("t is empty")
    dd_g = _kernel(k_dd, g, "k_train_train")
    td_g = _kernel(k_td, g, "k_test_train")
    # For get='ntk' the NNGP enters only the covariance.
    dd_nngp = _kernel(k_dd, "nngp", "k_train_train") if (g == "nngp" or k_tt is not None) else dd_g
    td_nngp = _kernel(k_td, "nngp", "k_test_train") if (g == "nngp" or k_tt is not None) else td_g
    tt = None if k_tt is None else _kernel(k_tt, "nngp", "k_test_test")
    reg = _relative_reg(diag_reg, absolute, dd_g)
    mean, cov = _native.predict(
        y, _f64(dd_nngp), _f64(dd_g) if g == "ntk" else None, _f64(td_nngp),
        _f64(td_g) if g == "ntk" else None, _f64(tt), g, times, float(lr), reg)
    lead = ts.shape
    mean = mean.reshape(lead + mean.shape[1:]).astype(out_dtype, copy=False)
    if cov is None:
        return mean
    return Gaussian(mean, cov.reshape(lead + cov.shape[1:]).astype(out_dtype, copy=False))


def _targets(y_train: Any, n: int) -> np.ndarray:
    y = np.asarray(y_train)
    if y.dtype.kind not in "fiu":
        raise ValueError(f"y_train has dtype {y.dtype}; expected numbers")
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"y_train must be [n_train, outputs] with n_train = {n}, got shape {y.shape}")
    return np.ascontiguousarray(y, dtype=np.float64)


def gradient_descent_mse_ensemble(kernel_fn: Callable[..., Any], x_train: Any, y_train: Any,
                                  learning_rate: float = 1.0, diag_reg: float = 0.0,
                                  diag_reg_absolute_scale: bool = False, trace_axes: Any = (-1,),
                                  **kernel_fn_train_train_kwargs: Any) -> Callable[..., Any]:
    """The infinite ensemble of infinitely wide networks trained by gradient
    descent on MSE (neural-tangents' ``predict.gradient_descent_mse_ensemble``).

    Args:
      kernel_fn: a ``kernel_fn`` (from ``widenet.stax``, or any function with
        its signature that returns ``.nngp`` and ``.ntk``).
      x_train: ``[n_train, d]`` training inputs.
      y_train: ``[n_train, outputs]`` targets (a 1-d array is one output).
      learning_rate: the time is ``t * learning_rate``.
      diag_reg: added to the train kernel's diagonal, relative to its mean
        (absolute with ``diag_reg_absolute_scale=True``).
      trace_axes: ``(-1,)`` only (the outputs are independent).
      kernel_fn_train_train_kwargs: passed to ``kernel_fn`` (e.g. ``device``).

    Returns:
      ``predict_fn(t=None, x_test=None, get=None, compute_cov=False, **kernel_fn_test_test_kwargs)``:
      the mean ``[n_test, outputs]`` at time ``t`` (``None``: infinity; an
      array of times gives ``t.shape + [n_test, outputs]``) on ``x_test``
      (``None``: the training points); with ``compute_cov=True`` a
      ``Gaussian(mean, covariance)``, the covariance ``[n_test, n_test]``;
      ``get`` as in ``kernel_fn`` (``None``: a named tuple with ``.nngp`` and ``.ntk``).

    Example::

        predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train)
        mean, cov = predict_fn(t=np.logspace(0, 3, 20), x_test=x_test, get="ntk", compute_cov=True)
    """
    _check_trace_axes(trace_axes)
    dtype = _arrays.precision(x_train)
    y = _targets(y_train, np.asarray(x_train).shape[0])
    cache: dict = {}

    def train_kernels() -> Any:
        if "dd" not in cache:
            cache["dd"] = kernel_fn(x_train, None, ("nngp", "ntk"), **kernel_fn_train_train_kwargs)
        return cache["dd"]

    def predict_fn(t: Any = None, x_test: Any = None, get: Get = None, compute_cov: bool = False,
                   **kernel_fn_test_test_kwargs: Any) -> Any:
        """Mean (and with ``compute_cov`` the covariance) at time ``t`` on ``x_test``;
        see ``gradient_descent_mse_ensemble``."""
        names = _gets.names(get)
        k_dd = train_kernels()
        if x_test is None:
            k_td, k_tt = k_dd, (k_dd if compute_cov else None)
        else:
            k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"), **kernel_fn_test_test_kwargs)
            k_tt = kernel_fn(x_test, None, ("nngp",), **kernel_fn_test_test_kwargs) if compute_cov else None
        out = {g: _run(k_dd, k_td, k_tt, y, g, t, learning_rate, diag_reg,
                       diag_reg_absolute_scale, dtype) for g in names}
        return _gets.pack(get, out)

    return predict_fn


def gp_inference(k_train_train: Any, y_train: Any, diag_reg: float = 0.0,
                 diag_reg_absolute_scale: bool = False, trace_axes: Any = (-1,)) -> Callable[..., Any]:
    """Exact Gaussian-process inference (neural-tangents' ``predict.gp_inference``):
    the ``t = inf`` limit of ``gradient_descent_mse_ensemble``, from kernels.

    Args:
      k_train_train: the train-train kernels: a named tuple with ``.nngp``
        and/or ``.ntk`` (what ``kernel_fn(x_train, None, get)`` returns), or
        one array (then ``get`` must name that kernel alone).
      y_train: ``[n_train, outputs]`` targets.
      diag_reg, diag_reg_absolute_scale, trace_axes: as in ``gradient_descent_mse_ensemble``.

    Returns:
      ``predict_fn(get=None, k_test_train=None, k_test_test=None)``: the mean
      on the test points (``k_test_train`` ``[n_test, n_train]``; ``None``:
      the training points); with ``k_test_test`` (its NNGP) a
      ``Gaussian(mean, covariance)``.
    """
    _check_trace_axes(trace_axes)
    first = k_train_train if isinstance(k_train_train, np.ndarray) else (
        getattr(k_train_train, "nngp", None) if getattr(k_train_train, "nngp", None) is not None
        else getattr(k_train_train, "ntk", None))
    if first is None:
        raise ValueError("k_train_train must be an array or hold .nngp or .ntk")
    first = np.asarray(first)
    if first.ndim != 2 or first.shape[0] != first.shape[1]:
        raise ValueError(f"k_train_train must be square [n_train, n_train], got shape {first.shape}")
    y = _targets(y_train, first.shape[0])
    dtype = np.float64 if first.dtype == np.float64 else np.float32

    def predict_fn(get: Get = None, k_test_train: Any = None, k_test_test: Any = None) -> Any:
        """The posterior mean (and with ``k_test_test`` the covariance); see ``gp_inference``."""
        names = _gets.names(get)
        if isinstance(k_train_train, np.ndarray) and len(names) != 1:
            raise ValueError("with k_train_train a single array, get must name that one kernel")
        if isinstance(k_train_train, np.ndarray) and names == ("ntk",) and k_test_test is not None:
            raise ValueError("the NTK covariance needs the NNGP too: pass kernels with .nngp and .ntk")
        k_td = k_train_train if k_test_train is None else k_test_train
        out = {g: _run(k_train_train, k_td, k_test_test, y, g, None, 1.0, diag_reg,
                       diag_reg_absolute_scale, dtype) for g in names}
        return _gets.pack(get, out)

    return predict_fn
