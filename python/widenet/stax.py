"""Architectures as neural-tangents' ``stax`` layers.

Every layer is a triple ``(init_fn, apply_fn, kernel_fn)``, and ``serial``
composes them, as in neural-tangents: porting code means changing
``from neural_tangents import stax`` to ``from widenet import stax``::

    from widenet import stax
    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(),
        stax.Dense(1, W_std=1.5, b_std=0.1))
    k = kernel_fn(x1, x2, "ntk")            # the infinite-width NTK
    params = init_fn(seed=0, d_in=x1.shape[1], ensemble=16)
    f = apply_fn(params, x1)                 # [16, n, 1]: sixteen finite networks

- ``kernel_fn(x1, x2=None, get=None, *, device=None, batch_size=None)``: the
  NNGP and NTK of the network's output. float64 inputs give the exact
  float64 kernels (computed on the CPU, equal to neural-tangents' float64
  values); float32 inputs give float32 kernels computed on a device.
- ``init_fn(seed, d_in, ensemble=1)``: parameters of ``ensemble`` networks,
  a dict of float32 arrays named as in widenet's safetensors files
  (``layers.{l}.weight`` ``[E, fan_out, fan_in]``, ``layers.{l}.bias``
  ``[E, fan_out]``, Dense layers numbered depth first).
- ``apply_fn(params, x)``: the outputs of every member, ``[E, n, d_out]``.

The same spec describes the finite networks and their infinite-width limit;
``kernel_fn.arch`` is its canonical JSON (a list ``[Name, args..., {options}]``
per layer), which the command line's ``--arch`` also reads.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _arrays, _gets, _native
from ._gets import Get
from ._nets import Params, init_params, outputs

__all__ = [
    "serial", "Dense", "Relu", "LeakyRelu", "Abs", "ABRelu", "Erf", "Gelu", "Sign",
    "Identity", "Tanh", "Sigmoid", "Residual", "LayerNorm", "FanOut", "parallel",
    "FanInSum", "Layer", "InitFn", "ApplyFn", "KernelFn", "Kernel",
]

Kernel = _gets.Kernel


def _json(layers: List[Any]) -> str:
    return json.dumps(layers)


class KernelFn:
    """``kernel_fn(x1, x2=None, get=None, *, device=None, batch_size=None)``:
    the infinite-width NNGP and NTK of the network's output.

    Args:
      x1: ``[n1, d]`` points (any float dtype and memory order).
      x2: ``[n2, d]`` points; ``None`` means ``x1`` (only the tiles on and
        above the diagonal are computed).
      get: ``'nngp'`` or ``'ntk'`` gives an array ``[n1, n2]``; a tuple of them
        gives a named tuple with those fields; ``None`` gives a named tuple
        with ``.nngp`` and ``.ntk``.
      device: where float32 kernels run: ``'auto'`` (default; or
        ``$WIDENET_DEVICE``), ``'cpu'``, ``'gpu'``, ``'gpu:0'`` or part of an
        adapter's name (see ``widenet.devices()``). float64 kernels always
        run on the CPU.
      batch_size: points per tile side of the float32 device computation
        (at most 512, less for architectures with many nonlinearities); the
        float64 path computes row by row and ignores it.

    The input dtype chooses the path and the output dtype: float64 (or
    wider) inputs give the exact float64 kernels, equal to neural-tangents'
    float64 values; float32 (or narrower) inputs give float32 kernels from
    the tiled device computation (relative error about 1e-6 to 1e-5).

    Raises:
      ValueError: bad shapes, dtypes, non-finite values, an architecture
        whose kernel does not exist (e.g. a nonlinearity without a Dense
        layer before it), an unknown device name.
      RuntimeError: the device failed.
      KeyboardInterrupt: Ctrl-C (the computation stops between tiles).
    """

    def __init__(self, layers: List[Any]):
        self.arch: List[Any] = layers
        self._json = _json(layers)

    def __call__(self, x1: Any, x2: Any = None, get: Get = None, *,
                 device: Optional[str] = None, batch_size: Optional[int] = None) -> Any:
        names = _gets.names(get)
        dtype = _arrays.precision(x1, x2)
        a1 = _arrays.matrix(x1, "x1", dtype)
        a2 = None if x2 is None else _arrays.matrix(x2, "x2", dtype)
        tile = _arrays.positive_int(batch_size, "batch_size")
        want = ("nngp" in names, "ntk" in names)
        if dtype == np.float64:
            nngp, ntk = _native.kernel_f64(self._json, a1, a2, *want, device)
        else:
            nngp, ntk = _native.kernel_f32(self._json, a1, a2, *want, device, tile)
        return _gets.pack(get, {"nngp": nngp, "ntk": ntk})

    def __repr__(self) -> str:
        return f"<kernel_fn of {self._json}>"


class InitFn:
    """``init_fn(seed, d_in, ensemble=1, *, parameterization=None, base_width=64)``:
    seeded parameters of ``ensemble`` networks of this architecture.

    Args:
      seed: an integer; member ``e``, layer ``l`` draws from streams of it
        that do not depend on the ensemble's size or the device.
      d_in: input features (an input shape such as ``(-1, 10)`` is read as
        its last entry, as neural-tangents' ``input_shape``).
      ensemble: members, trained and evaluated together.
      parameterization: ``None`` keeps each Dense layer's own (``'ntk'`` or
        ``'standard'``); ``'mup'`` or ``'mean-field'`` scale the whole network
        by each Dense layer's role (input, hidden, readout).
      base_width: muP's base width (where it coincides with ``standard``).

    Returns:
      ``widenet.Params``: a dict of float32 arrays ``layers.{l}.weight``
      ``[E, fan_out, fan_in]`` and ``layers.{l}.bias`` ``[E, fan_out]`` (a layer
      without ``b_std`` has no bias), with the network's description in ``.spec``.
    """

    def __init__(self, layers: List[Any]):
        self.arch = layers

    def __call__(self, seed: int, d_in: Any, ensemble: int = 1, *,
                 parameterization: Optional[str] = None, base_width: int = 64) -> Params:
        if isinstance(d_in, (tuple, list)):
            d_in = d_in[-1]
        return init_params(self.arch, seed, d_in, ensemble, parameterization, base_width)

    def __repr__(self) -> str:
        return f"<init_fn of {_json(self.arch)}>"


class ApplyFn:
    """``apply_fn(params, x, *, device=None)``: the outputs ``[E, n, d_out]``
    (float32) of every member of an ensemble on the points ``x`` ``[n, d_in]``.

    ``params`` is what ``init_fn``, ``widenet.train`` or ``widenet.load``
    returned (its arrays must match this architecture).
    """

    def __init__(self, layers: List[Any]):
        self.arch = layers

    def __call__(self, params: Params, x: Any, *, device: Optional[str] = None) -> np.ndarray:
        return outputs(params, x, device=device, arch=self.arch)

    def __repr__(self) -> str:
        return f"<apply_fn of {_json(self.arch)}>"


class Layer(tuple):
    """A layer or network: the triple ``(init_fn, apply_fn, kernel_fn)``.

    Unpack it as in neural-tangents (``init_fn, apply_fn, kernel_fn = layer``)
    or compose it with ``serial``. ``.arch`` is its canonical JSON layer list.
    """

    arch: List[Any]
    _marker: Optional[Tuple[Any, ...]]

    def __new__(cls, layers: List[Any], marker: Optional[Tuple[Any, ...]] = None) -> "Layer":
        self = super().__new__(cls, (InitFn(layers), ApplyFn(layers), KernelFn(layers)))
        self.arch = layers
        self._marker = marker
        return self

    def __repr__(self) -> str:
        if self._marker is not None:
            return f"<stax.{self._marker[0]}>"
        return f"<stax layers {_json(self.arch)}>"


def _checked(layers: List[Any]) -> Layer:
    canonical = json.loads(_native.check_arch(_json(layers)))
    return Layer(canonical)


def _layers_of(item: Any, where: str) -> List[Any]:
    """The layer list of a ``Layer``, one of its three functions, or a JSON list."""
    if isinstance(item, Layer):
        if item._marker is not None:
            raise ValueError(
                f"{where}: {item!r} is part of the residual spelling "
                "serial(FanOut(2), parallel(Identity(), block), FanInSum()); use it in that order"
            )
        return list(item.arch)
    if isinstance(item, (InitFn, ApplyFn, KernelFn)):
        return list(item.arch)
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[2], KernelFn):
        return list(item[2].arch)
    raise ValueError(f"{where}: expected a stax layer, got {item!r}")


def _is_identity(layers: List[Any]) -> bool:
    return all(isinstance(l, list) and l and str(l[0]).lower() == "identity" for l in layers)


def serial(*layers: Any) -> Layer:
    """Composes layers in sequence (neural-tangents' ``stax.serial``).

    ``serial(FanOut(2), parallel(Identity(), block), FanInSum())`` is a
    residual block ``x + block(x)``, the same as ``Residual(block)``.

    Example::

        init_fn, apply_fn, kernel_fn = stax.serial(
            stax.Dense(512), stax.Erf(), stax.Dense(1))
    """
    out: List[Any] = []
    items = list(layers)
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, Layer) and item._marker is not None and item._marker[0] == "FanOut":
            if item._marker[1] != 2 or i + 2 >= len(items):
                raise ValueError(
                    "widenet composes FanOut only as a residual block: "
                    "serial(FanOut(2), parallel(Identity(), block), FanInSum())"
                )
            par, fan_in = items[i + 1], items[i + 2]
            ok = (isinstance(par, Layer) and par._marker is not None and par._marker[0] == "parallel"
                  and isinstance(fan_in, Layer) and fan_in._marker is not None
                  and fan_in._marker[0] == "FanInSum")
            branches = par._marker[1] if ok else []
            skips = [b for b in branches if _is_identity(b)]
            if not ok or len(branches) != 2 or not skips:
                raise ValueError(
                    "widenet composes FanOut(2) only as a residual block: "
                    "serial(FanOut(2), parallel(Identity(), block), FanInSum()); "
                    "for other branch structures use Residual(*block)"
                )
            block = branches[1] if _is_identity(branches[0]) else branches[0]
            out.append(["Residual", block])
            i += 3
            continue
        out.extend(_layers_of(item, f"serial, item {i + 1}"))
        i += 1
    return _checked(out)


def Dense(out_dim: int, W_std: float = 1.0, b_std: Optional[float] = None,
          parameterization: str = "ntk") -> Layer:
    """A fully connected layer (neural-tangents' ``stax.Dense``).

    Args:
      out_dim: output features (the width).
      W_std: weight standard deviation.
      b_std: bias standard deviation; ``None`` means no bias.
      parameterization: ``'ntk'``: ``W_std / sqrt(fan_in) * W x + b_std * b``
        with standard normal ``W`` and ``b``; ``'standard'``: ``W x + b`` with
        ``W ~ N(0, W_std^2 / fan_in)`` and ``b ~ N(0, b_std^2)`` (its NTK grows
        with the widths).

    The first Dense layer sees the input covariance ``x . x' / d_in``; its
    kernels are ``nngp' = W_std^2 nngp + b_std^2`` and
    ``ntk' = nngp' + W_std^2 ntk`` (ntk parameterization; Lee et al. 2019,
    Jacot et al. 2018).

    Example::

        stax.serial(stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1))
    """
    opts: dict = {"W_std": W_std, "parameterization": parameterization}
    if b_std is not None:
        opts["b_std"] = b_std
    if isinstance(out_dim, bool) or not isinstance(out_dim, (int, np.integer)):
        raise ValueError(f"Dense: out_dim must be a positive integer, got {out_dim!r}")
    return _checked([["Dense", int(out_dim), opts]])


def _activation(name: str, *args: float) -> Layer:
    return _checked([[name, *[float(a) for a in args]]])


def Relu() -> Layer:
    """ReLU, ``max(x, 0)``: the arc-cosine kernel (Cho and Saul 2009)."""
    return _activation("Relu")


def LeakyRelu(alpha: float = 0.01) -> Layer:
    """Leaky ReLU: ``x`` for ``x > 0``, ``alpha * x`` below (an ``ABRelu(alpha, 1)``)."""
    return _activation("LeakyRelu", alpha)


def Abs() -> Layer:
    """Absolute value, ``|x|`` (an ``ABRelu(-1, 1)``)."""
    return _activation("Abs")


def ABRelu(a: float, b: float) -> Layer:
    """``a * min(x, 0) + b * max(x, 0)``: ReLU, leaky ReLU and abs in one closed form."""
    return _activation("ABRelu", a, b)


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Layer:
    """``a * erf(b * x) + c``, with its closed-form kernels (Williams 1997)."""
    return _activation("Erf", a, b, c)


def Gelu(approximate: bool = False) -> Layer:
    """GELU, ``x * Phi(x)`` (exact; ``approximate=True``, the tanh form, is not offered)."""
    if approximate:
        raise ValueError("Gelu: widenet implements the exact GELU only (approximate=False)")
    return _activation("Gelu")


def Sign() -> Layer:
    """The sign function (a step activation): its NNGP is ``2/pi * arcsin(rho)``; its derivative is zero."""
    return _activation("Sign")


def Identity() -> Layer:
    """The identity: leaves the kernels unchanged (a linear network's activation)."""
    return _activation("Identity")


def Tanh() -> Layer:
    """tanh, with kernels by Gauss-Hermite quadrature of degree 120 (neural-tangents'
    ``ElementwiseNumerical(np.tanh, deg=120)``)."""
    return _activation("Tanh")


def Sigmoid() -> Layer:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, with kernels by Gauss-Hermite
    quadrature of degree 120 (not neural-tangents' erf-based ``Sigmoid_like``)."""
    return _activation("Sigmoid")


def LayerNorm(axis: int = -1, eps: float = 1e-12) -> Layer:
    """Normalization over the features, ``(x - mean) / sqrt(eps + var)``
    (neural-tangents' ``stax.LayerNorm`` over the channel axis).

    Its kernel needs a Gaussian input: put a Dense layer (or a residual sum
    of Dense outputs) before it.
    """
    if axis not in (-1, 1):
        raise ValueError(f"LayerNorm: widenet normalizes over the features (axis=-1), got axis={axis}")
    return _checked([["LayerNorm", {"eps": float(eps)}]])


def Residual(*layers: Any) -> Layer:
    """A residual block, ``x + block(x)`` with ``block = serial(*layers)``: the
    same as ``serial(FanOut(2), parallel(Identity(), serial(*layers)), FanInSum())``.

    The block must end with a Dense layer (so that at infinite width its
    output is independent of ``x`` and the kernels add) and keep the width.

    Example::

        stax.serial(stax.Dense(512), stax.Residual(stax.Relu(), stax.Dense(512)),
                    stax.LayerNorm(), stax.Relu(), stax.Dense(1))
    """
    block = _layers_of(serial(*layers), "Residual")
    return _checked([["Residual", block]])


def FanOut(num: int) -> Layer:
    """Copies the input into ``num`` branches; widenet takes it only as the start of
    a residual block, ``serial(FanOut(2), parallel(Identity(), block), FanInSum())``."""
    return Layer([], marker=("FanOut", num))


def parallel(*layers: Any) -> Layer:
    """Applies one layer per branch; widenet takes it only inside a residual block,
    ``serial(FanOut(2), parallel(Identity(), block), FanInSum())``."""
    branches = [_layers_of(l, f"parallel, branch {i + 1}") for i, l in enumerate(layers)]
    return Layer([], marker=("parallel", branches))


def FanInSum() -> Layer:
    """Sums the branches; widenet takes it only as the end of a residual block,
    ``serial(FanOut(2), parallel(Identity(), block), FanInSum())``."""
    return Layer([], marker=("FanInSum",))
