"""Finite ensembles from Python: parameters, outputs, training, empirical
kernels and parameter files."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _arrays, _gets, _native
from ._gets import Get


class Params(dict):
    """Parameters of an ensemble of networks: a dict of float32 arrays named
    as in widenet's safetensors files (``layers.{l}.weight``
    ``[E, fan_out, fan_in]``, ``layers.{l}.bias`` ``[E, fan_out]``, Dense layers
    numbered depth first), with the network's description in ``.spec``
    (``arch``, ``d_in``, ``ensemble``, ``parameterization``, ``base_width``).

    The arrays may be changed in place or replaced by arrays of the same
    shapes; ``widenet.save`` writes them, ``widenet.load`` reads them back.
    """

    spec: Dict[str, Any]

    def __init__(self, arrays: Any, spec: Dict[str, Any]):
        super().__init__(arrays)
        self.spec = spec

    @property
    def ensemble(self) -> int:
        """Members of the ensemble."""
        return int(self.spec["ensemble"])

    @property
    def d_in(self) -> int:
        """Input features."""
        return int(self.spec["d_in"])

    @property
    def arch(self) -> List[Any]:
        """The architecture's canonical JSON layer list."""
        return self.spec["arch"]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self.items())
        return f"Params(ensemble={self.ensemble}, d_in={self.d_in}, arch={json.dumps(self.arch)}, {{{shapes}}})"

    def __reduce__(self) -> Any:
        return (Params, (dict(self), self.spec))


def _spec_json(p: Params) -> str:
    return json.dumps(p.spec)


def _arrays_of(p: Any) -> Dict[str, np.ndarray]:
    if not isinstance(p, Params):
        raise ValueError(
            "params must be widenet.Params (from init_fn, widenet.train or widenet.load); "
            f"got {type(p).__name__}"
        )
    out = {}
    for k, v in p.items():
        a = np.asarray(v)
        if a.dtype.kind != "f":
            raise ValueError(f"params: '{k}' has dtype {a.dtype}; expected floats")
        out[k] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def _params(spec_json: str, tensors: List[Tuple[str, np.ndarray]]) -> Params:
    return Params(dict(tensors), json.loads(spec_json))


def _arch_layers(arch: Any) -> List[Any]:
    """The canonical layer list of a stax layer, a JSON list or a string (JSON or short form)."""
    from .stax import KernelFn, Layer, _layers_of  # noqa: PLC0415 (stax imports this module)

    if isinstance(arch, str):
        return json.loads(_native.check_arch(arch))
    if isinstance(arch, list):
        return json.loads(_native.check_arch(json.dumps(arch)))
    return _layers_of(arch, "arch")


def init_params(arch: Any, seed: int, d_in: int, ensemble: int = 1,
                parameterization: Optional[str] = None, base_width: int = 64) -> Params:
    """Seeded parameters of ``ensemble`` networks of ``arch`` for ``d_in`` inputs."""
    layers = _arch_layers(arch)
    d_in = _arrays.positive_int(d_in, "d_in")
    ensemble = _arrays.positive_int(ensemble, "ensemble")
    base_width = _arrays.positive_int(base_width, "base_width")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if parameterization is not None:
        parameterization = str(parameterization).lower().replace("_", "-")
        if parameterization not in ("ntk", "standard", "mup", "mean-field"):
            raise ValueError(
                f"unknown parameterization '{parameterization}' (expected ntk, standard, mup or mean-field)"
            )
    spec = {"arch": layers, "d_in": d_in, "ensemble": ensemble,
            "parameterization": parameterization, "base_width": base_width}
    spec_json, tensors = _native.init(json.dumps(spec), int(seed))
    return _params(spec_json, tensors)


def outputs(params: Params, x: Any, *, device: Optional[str] = None,
            arch: Optional[List[Any]] = None) -> np.ndarray:
    """Outputs ``[E, n, d_out]`` of every member on ``x``."""
    tensors = _arrays_of(params)
    if arch is not None and params.arch != json.loads(_native.check_arch(json.dumps(arch))):
        raise ValueError(
            f"params are of the architecture {json.dumps(params.arch)}, "
            f"not of this apply_fn's {json.dumps(arch)}"
        )
    xa = _arrays.matrix(x, "x", np.float32)
    return _native.forward(_spec_json(params), tensors, xa, device)


def train(arch_or_params: Any, x: Any, y: Any, optimizer: str = "adam", lr: Union[float, Sequence[float]] = 1e-3,
          steps: int = 100, loss: str = "mse", batch_size: Optional[int] = None, *,
          ensemble: int = 1, seed: int = 0, schedule: str = "constant",
          log_every: Optional[int] = None, momentum: float = 0.9,
          betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          parameterization: Optional[str] = None, base_width: int = 64,
          device: Optional[str] = None) -> Tuple[Params, Dict[str, Any]]:
    """Trains an ensemble of networks on ``(x, y)``, every member at once on the device.

    Args:
      arch_or_params: parameters to start from (``widenet.Params``), or an
        architecture (a stax layer, its JSON list, or a string such as
        ``'Dense(512), Relu, Dense(1)'``) to initialize with ``seed`` and
        ``ensemble`` members.
      x: ``[n, d_in]`` inputs (converted to float32).
      y: ``[n, d_out]`` targets (a 1-d array is one output); for
        ``loss='xent'`` integer class labels ``[n]`` or rows of probabilities.
      optimizer: ``'gd'`` (full batch), ``'sgd'``, ``'momentum'`` or ``'adam'``.
      lr: learning rate, or one per member.
      steps: optimizer steps.
      loss: ``'mse'`` (``1/(2N) sum (f - y)^2``, ``N = y.size``) or ``'xent'``
        (softmax cross-entropy).
      batch_size: minibatch size (seeded shuffling); ``None`` is full batch.
      ensemble, seed, parameterization, base_width: for a new ensemble (see ``init_fn``).
      schedule: ``'constant'`` or ``'cosine'``.
      log_every: read the losses back every this many steps (default: a tenth of the run).
      momentum, betas, eps: the optimizers' constants.
      device: see ``widenet.devices()``.

    Returns:
      ``(params, history)``: the trained ``widenet.Params`` and a dict with
      ``steps`` (the logged steps), ``loss`` ``[len(steps), E]`` (each
      member's loss before that step's update), ``final_loss`` ``[E]`` (on all
      the data after training; NaN for a diverged member) and
      ``diverged_at`` (the step each member diverged at, or None).

    Ctrl-C stops training between steps (``KeyboardInterrupt``).
    """
    xa = _arrays.matrix(x, "x", np.float32)
    ya = _arrays.targets(y, xa.shape[0])
    if isinstance(arch_or_params, Params):
        params = arch_or_params
    else:
        params = init_params(arch_or_params, seed, xa.shape[1], ensemble, parameterization, base_width)
    steps = _arrays.positive_int(steps, "steps")
    batch_size = _arrays.positive_int(batch_size, "batch_size")
    log_every = _arrays.positive_int(log_every, "log_every")
    if str(optimizer).lower() == "gd" and batch_size is not None:
        raise ValueError("batch_size does not apply to gd (full batch); use sgd")
    lrs = [float(v) for v in np.atleast_1d(np.asarray(lr, dtype=np.float64))]
    spec_json, tensors, log = _native.train(
        _spec_json(params), _arrays_of(params), xa, ya, str(optimizer), lrs, steps, str(loss),
        batch_size, str(schedule), log_every, int(seed), float(momentum),
        (float(betas[0]), float(betas[1])), float(eps), device)
    log = json.loads(log)
    history = {
        "steps": np.asarray(log["steps"], dtype=np.int64),
        "loss": np.asarray(log["loss"], dtype=np.float64),
        "final_loss": np.asarray([np.nan if v is None else v for v in log["final_loss"]], dtype=np.float64),
        "diverged_at": log["diverged_at"],
    }
    return _params(spec_json, tensors), history


def empirical_kernel(params: Params, x1: Any, x2: Any = None, get: Get = "ntk", *,
                     device: Optional[str] = None) -> Any:
    """The empirical kernels of every member, ``[E, n1, n2]`` (float32).

    The NTK is ``sum over parameters of df(x1)/dp . df(x2)/dp``, averaged over
    the outputs (neural-tangents' ``empirical_ntk_fn`` with
    ``trace_axes=(-1,)``), computed from per-layer Gram matrices on the
    device; the NNGP is that of the readout given its input features. As the
    width grows they approach ``kernel_fn``'s values.

    ``get`` is as in ``kernel_fn``: a name gives an array, a tuple or None a
    named tuple.
    """
    names = _gets.names(get)
    a1 = _arrays.matrix(x1, "x1", np.float32)
    n1 = a1.shape[0]
    both = a1 if x2 is None else np.concatenate([a1, _arrays.matrix(x2, "x2", np.float32)])
    ntk, nngp = _native.empirical(_spec_json(params), _arrays_of(params), both, device)
    if "nngp" in names and nngp is None:
        raise ValueError("the empirical NNGP needs a network that ends with a Dense layer")
    cols = slice(0, n1) if x2 is None else slice(n1, None)
    pick = lambda k: None if k is None else np.ascontiguousarray(k[:, :n1, cols])  # noqa: E731
    return _gets.pack(get, {"ntk": pick(ntk), "nngp": pick(nngp)})


def load(path: Union[str, os.PathLike]) -> Params:
    """Reads a safetensors parameter file (written by ``widenet.save`` or
    ``widenet init/train``)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)}: no such file")
    spec_json, tensors = _native.load(os.fspath(path))
    return _params(spec_json, tensors)


def save(path: Union[str, os.PathLike], params: Params) -> None:
    """Writes ``params`` to a safetensors file (atomically: a temporary file
    renamed into place), readable by ``widenet.load`` and the command line."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{os.fspath(path)}: the folder does not exist")
    _native.save(os.fspath(path), _spec_json(params), _arrays_of(params))


def devices() -> List[Dict[str, Any]]:
    """Every device widenet can run on: the GPU adapters wgpu finds (best
    first; ``device='gpu:INDEX'`` picks one by its ``index``), then the CPU
    backend (``device='cpu'``). Each is a dict: name, vendor, backend,
    device_type, driver, features (f16, subgroup, ...) and limits."""
    return json.loads(_native.devices())


def device_info(device: Optional[str] = None) -> Dict[str, Any]:
    """The device that ``device=`` picks (``None``: ``$WIDENET_DEVICE`` or
    ``'auto'``), opened if it was not yet: its description as in ``devices()``."""
    return json.loads(_native.device_info(device))
