"""widenet's experiments as functions: each runs what the command of the same
name runs (``widenet compare``, ``drift``, ``mutransfer``, ``deep-linear``) and
returns its report (``report.json``'s content) as a dict.

Settings are keyword arguments named as the command's flags (``widths``,
``seeds``, ``steps``, ``arch``, ...; ``arch`` may be a stax layer), on top of
the defaults, or of the ``quick=True`` or ``large=True`` presets. The report
folder (``report.json``, ``report.md``, SVG figures, checkpointed points) is
kept only with ``out=FOLDER``; without it the run writes to a temporary
folder that is removed afterwards. ``resume=True`` continues an interrupted
run in ``out``. Ctrl-C stops a run between points (with ``out``, the points
finished so far and a partial report stay there) and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import numpy as np

from . import _arrays, _native

__all__ = ["compare", "drift", "mutransfer", "deep_linear"]


def _settings(config: Dict[str, Any]) -> str:
    from ._nets import _arch_layers  # noqa: PLC0415

    out = {}
    for k, v in config.items():
        if k == "arch" and v is not None:
            v = _arch_layers(v)
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (np.integer, np.floating)):
            v = v.item()
        out[k] = v
    return json.dumps(out)


def _run(name: str, config: Dict[str, Any], quick: bool, large: bool, out: Any, resume: bool,
         quiet: bool, device: Optional[str], x: Any = None, y: Any = None) -> Dict[str, Any]:
    if quick and large:
        raise ValueError("quick and large are two presets: pick one")
    preset = "quick" if quick else ("large" if large else None)
    xa = ya = None
    if x is not None or y is not None:
        if x is None or y is None:
            raise ValueError("compare takes x and y together")
        xa = _arrays.matrix(x, "x", np.float32)
        ya = _arrays.targets(y, xa.shape[0])
    folder = None if out is None else os.fspath(out)
    report = _native.experiment(name, _settings(config), preset, xa, ya, folder, resume, quiet, device)
    return json.loads(report)


def compare(*, quick: bool = False, large: bool = False, x: Any = None, y: Any = None,
            out: Any = None, resume: bool = False, quiet: bool = True,
            device: Optional[str] = None, **config: Any) -> Dict[str, Any]:
    """Finite networks trained by gradient descent against the infinite-width
    prediction at the same time, across widths (``widenet compare``).

    Settings (``**config``): ``widths``, ``seeds``, ``arch`` (every hidden
    Dense layer set to each width) or ``depth``/``activation``/``w_std``/``b_std``,
    ``d_in``, ``n_train``, ``n_test``, ``steps``, ``lr`` (default
    ``n_train / lambda_max``), ``curve_points``, ``seed``. With ``x`` and ``y``
    the first ``n_train`` rows train and the rest test, instead of the
    synthetic teacher task.

    Returns the report: per width the kernel distances at initialization,
    each member's deviation from the linearized dynamics, kernel movement,
    loss curves; ``slopes`` (fitted in width; theory: -1/2).

    Example::

        r = widenet.experiments.compare(quick=True)
        r["slopes"]["ntk_init_distance"]["slope"]   # about -0.5
    """
    return _run("compare", config, quick, large, out, resume, quiet, device, x, y)


def drift(*, quick: bool = False, large: bool = False, out: Any = None, resume: bool = False,
          quiet: bool = True, device: Optional[str] = None, **config: Any) -> Dict[str, Any]:
    """Lazy against rich training (``widenet drift``): relative movement of the
    empirical NTK and of the hidden features against width under the ntk
    parameterization (shrinks like width^-1/2) and muP (stays of order one),
    and against an output scale alpha (shrinks like 1/alpha).

    Settings: ``widths``, ``seeds``, ``arch`` or ``depth``/``activation``,
    ``d_in``, ``n_train``, ``steps``, ``alphas``, ``alpha_width``, ``seed``.
    """
    return _run("drift", config, quick, large, out, resume, quiet, device)


def mutransfer(*, quick: bool = False, large: bool = False, out: Any = None, resume: bool = False,
               quiet: bool = True, device: Optional[str] = None, **config: Any) -> Dict[str, Any]:
    """Learning-rate sweeps across widths under SP and muP, SGD and Adam
    (``widenet mutransfer``): the best learning rate per width and its shift
    per doubling of the width.

    Settings: ``widths``, ``sgd_log2_lrs``, ``adam_log2_lrs``, ``seeds``,
    ``arch`` or ``depth``/``activation``, ``d_in``, ``n_train``, ``steps``, ``seed``.
    """
    return _run("mutransfer", config, quick, large, out, resume, quiet, device)


def deep_linear(*, quick: bool = False, large: bool = False, out: Any = None,
                quiet: bool = True, device: Optional[str] = None, **config: Any) -> Dict[str, Any]:
    """Deep linear networks learning the singular modes of their task one by
    one, against Saxe, McClelland and Ganguli's exact solution (``widenet deep-linear``).

    Settings: ``layers``, ``singular_values``, ``width``, ``seeds``, ``u0``,
    ``tau``, ``steps``, ``every``, ``seed``.
    """
    return _run("deep_linear", config, quick, large, out, False, quiet, device)
