"""widenet: wide neural networks on any GPU (through WGSL compute shaders and
wgpu, or on the CPU) and their infinite-width limits, the NNGP and the NTK,
with exactly neural-tangents' conventions and names.

Quickstart::

    import numpy as np
    from widenet import stax, predict

    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5, b_std=0.1))
    x_train, y_train = np.random.randn(20, 5), np.random.randn(20, 1)
    x_test = np.random.randn(5, 5)
    k = kernel_fn(x_test, x_train, "ntk")                 # float64 in: exact float64 kernels
    predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train)
    mean = predict_fn(t=10.0, x_test=x_test, get="ntk")    # the infinite ensemble at time 10
    params, history = widenet.train(kernel_fn, x_train, y_train, optimizer="gd", lr=1.0,
                                    steps=100, ensemble=16)  # sixteen finite networks
    f = apply_fn(params, x_test)                           # [16, 5, 1]

Modules and functions:

- ``widenet.stax``: layers as ``(init_fn, apply_fn, kernel_fn)`` triples.
- ``widenet.predict``: ``gradient_descent_mse_ensemble``, ``gp_inference``.
- ``widenet.train``, ``widenet.empirical_kernel``, ``widenet.load``,
  ``widenet.save``, ``widenet.Params``: finite ensembles.
- ``widenet.experiments``: ``compare``, ``drift``, ``mutransfer``, ``deep_linear``.
- ``widenet.devices()``, ``widenet.device_info()``; every computation takes
  ``device=`` (``'auto'``, ``'cpu'``, ``'gpu'``, ``'gpu:0'`` or part of a name).

Bad input raises ``ValueError`` and device failures ``RuntimeError``, with
the library's message. The GIL is released while widenet works, and Ctrl-C
stops a long call (between tiles, rows, steps or points).
"""

import os as _os
import sys as _sys
import tempfile as _tempfile

if _sys.platform.startswith("linux") and not _os.environ.get("XDG_RUNTIME_DIR"):
    # Mesa prints "XDG_RUNTIME_DIR is invalid or not set" at every start of a
    # headless process; give it a private folder, as the command line does.
    _runtime = _os.path.join(_tempfile.gettempdir(), f"widenet-runtime-{_os.getuid()}")
    try:
        _os.makedirs(_runtime, mode=0o700, exist_ok=True)
        _os.environ["XDG_RUNTIME_DIR"] = _runtime
    except OSError:
        pass

from . import experiments, predict, stax  # noqa: E402
from ._native import __version__  # noqa: E402
from ._nets import Params, device_info, devices, empirical_kernel, load, save, train  # noqa: E402

__all__ = [
    "stax", "predict", "experiments", "train", "empirical_kernel", "load", "save",
    "Params", "devices", "device_info", "__version__",
]
