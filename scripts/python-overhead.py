#!/usr/bin/env python3
"""The Python layer's overhead: kernel_fn on 2,000 x 2,000 points and a
100-step widenet.train, each timed from Python and through the Rust library
alone (the same work on the same device in the same process: widenet's
`_native.bench_*_rust`), in alternating rounds so that a slow phase of a
shared machine slows both alike. Prints the medians and their ratios.

    python scripts/python-overhead.py [--device auto] [--rounds 5] [--json]

Needs the package installed (`pip install ./python`).
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np

import widenet
from widenet import _native, stax


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="auto, cpu, gpu:INDEX or part of a name")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (after a warm-up)")
    ap.add_argument("--n", type=int, default=2000, help="points of the kernel")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    # The kernel: a depth-3 ReLU network on n points of 64 features, NTK of the set with itself.
    net = stax.serial(*[stax.Dense(512), stax.Relu()] * 3, stax.Dense(1))
    kernel_fn = net[2]
    x = rng.standard_normal((a.n, 64)).astype(np.float32)
    # Training: 16 members of width 256, depth 2, 128 points of 32 features, 100 full-batch steps.
    train_net = stax.serial(*[stax.Dense(256), stax.Relu()] * 2, stax.Dense(1))
    xt = rng.standard_normal((128, 32)).astype(np.float32)
    yt = np.sin(xt[:, :1]).astype(np.float32)
    p = train_net[0](0, 32, ensemble=16)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in p.items()}

    def py_kernel() -> float:
        t = time.perf_counter()
        kernel_fn(x, None, "ntk", device=a.device)
        return time.perf_counter() - t

    def rust_kernel() -> float:
        return _native.bench_kernel_rust(kernel_fn._json, x, 1, a.device)[0]

    def py_train() -> float:
        t = time.perf_counter()
        widenet.train(p, xt, yt, optimizer="gd", lr=0.5, steps=100, device=a.device)
        return time.perf_counter() - t

    def rust_train() -> float:
        return _native.bench_train_rust(json.dumps(p.spec), arrays, xt, yt, 0.5, 100, 1, a.device)[0]

    info = widenet.device_info(a.device)
    results = {}
    for name, (py, rs) in {"kernel_fn 2000x2000 NTK": (py_kernel, rust_kernel),
                           "train 100 steps": (py_train, rust_train)}.items():
        py(), rs()  # warm-up: device open, pipelines, autotune cache
        tp, tr = [], []
        for r in range(a.rounds):
            first, second = (py, rs) if r % 2 == 0 else (rs, py)
            t1, t2 = first(), second()
            (tp if first is py else tr).append(t1)
            (tr if first is py else tp).append(t2)
            print(f"{name}: round {r + 1}/{a.rounds}: python {tp[-1]:.3f} s, rust {tr[-1]:.3f} s",
                  file=sys.stderr)
        results[name] = {"python_s": tp, "rust_s": tr, "python_median_s": statistics.median(tp),
                         "rust_median_s": statistics.median(tr),
                         "ratio": statistics.median(tp) / statistics.median(tr)}
    if a.json:
        print(json.dumps({"device": info, "results": results}, indent=1))
    else:
        print(f"device: {info['name']} ({info['backend']})")
        print("| work | Python (median s) | Rust library (median s) | ratio |")
        print("|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['python_median_s']:.3f} | {r['rust_median_s']:.3f} | {r['ratio']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
