#!/usr/bin/env python3
"""The CPU peers of widenet's CPU benchmarks, timed the way `widenet bench`
times its own (median of the timed runs after a warm-up), printed as one JSON
object per line:

  sgemm SIZES RUNS     numpy's float32 `a @ b` (OpenBLAS in the numpy wheel)
  train E W DEPTH N D RUNS
                       one full-batch training step of E ReLU MLPs (DEPTH
                       hidden layers of width W, NTK parameterization,
                       W_std 1.4, b_std 0.1, MSE, SGD) on N points of
                       dimension D, in JAX on the CPU: jax.jit(jax.vmap(...)),
                       float32, the same network and step as `widenet bench
                       train`.

Run by scripts/bench-cpu.sh; JAX is installed in a virtual environment for
the benchmark only (the tests never need it).
"""
import json
import sys
import time


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def sgemm(sizes, runs):
    import numpy as np

    rng = np.random.default_rng(1)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        a @ b
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        s = median(times)
        print(json.dumps({"peer": "numpy sgemm", "numpy": np.__version__,
                          "m": n, "n": n, "k": n, "seconds": s,
                          "gflops": 2.0 * n ** 3 / s * 1e-9, "runs": runs}), flush=True)


def train(e, width, depth, n, d, runs):
    import jax
    import jax.numpy as jnp

    w_std, b_std, lr = 1.4, 0.1, 1e-3
    widths = [d] + [width] * depth + [1]
    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, kw, kb = jax.random.split(key, 3)
        params.append((jax.random.normal(kw, (e, fan_in, fan_out), jnp.float32),
                       jax.random.normal(kb, (e, fan_out), jnp.float32)))
    key, kx, ky = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d), jnp.float32)
    y = jax.random.normal(ky, (n, 1), jnp.float32)

    def forward(p, x):
        h = x
        for i, (w, b) in enumerate(p):
            h = (w_std / jnp.sqrt(w.shape[0])) * (h @ w) + b_std * b
            if i + 1 < len(p):
                h = jax.nn.relu(h)
        return h

    def loss(p, x, y):
        return 0.5 * jnp.mean((forward(p, x) - y) ** 2)

    def step(p, x, y):
        g = jax.grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)

    step = jax.jit(jax.vmap(step, in_axes=(0, None, None)))
    params = step(params, x, y)
    jax.block_until_ready(params)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        params = step(params, x, y)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - t)
    s = median(times)
    # The products of a step: forward, weight gradients, input gradients.
    flops = 0
    for i, (fi, fo) in enumerate(zip(widths[:-1], widths[1:])):
        flops += 2 * n * fi * fo * (3 if i > 0 else 2)
    print(json.dumps({"peer": "jax train step", "jax": jax.__version__,
                      "devices": str(jax.devices()), "ensemble": e, "width": width,
                      "depth": depth, "n": n, "d": d, "step_seconds": s,
                      "gflops": e * flops / s * 1e-9, "runs": runs}), flush=True)


def main(argv):
    if len(argv) >= 3 and argv[0] == "sgemm":
        sgemm([int(s) for s in argv[1].split(",")], int(argv[2]))
    elif len(argv) == 7 and argv[0] == "train":
        train(*[int(a) for a in argv[1:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
