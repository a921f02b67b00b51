"""The GIL is released during device work, and Ctrl-C interrupts long calls."""

import _thread
import threading
import time

import numpy as np
import pytest

import widenet
from widenet import stax

# Tanh's kernels integrate numerically (120 x 120 points per entry and layer):
# a few hundred points keep a kernel busy for seconds.
SLOW = stax.serial(stax.Dense(64), stax.Tanh(), stax.Dense(64), stax.Tanh(), stax.Dense(1))


def points(n, dtype):
    return np.random.default_rng(0).standard_normal((n, 8)).astype(dtype)


def test_a_second_thread_runs_during_a_kernel(device):
    x = points(96, np.float32)
    SLOW[2](points(8, np.float32), None, "ntk", device=device)  # opens the device
    count, done = [0], threading.Event()

    def spin():
        while not done.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.5:
            SLOW[2](x, None, "ntk", device=device)
        elapsed = time.perf_counter() - start
    finally:
        done.set()
        t.join()
    # Holding the GIL, the kernel would leave the spinner a few switch
    # intervals at most; released, it spins all along (about 10^6 / s here).
    assert count[0] > 50_000 * elapsed


@pytest.mark.parametrize("precision", [np.float32, np.float64])
def test_ctrl_c_stops_a_long_kernel(precision, device):
    x = points(800, precision)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        SLOW[2](x, None, "ntk", device=device, batch_size=64)
    elapsed = time.perf_counter() - start
    timer.cancel()
    # The whole kernel takes minutes here; it stops within a tile (float32)
    # or an entry (float64).
    assert elapsed < 15, elapsed
    # The module is still usable.
    assert SLOW[2](points(4, precision), None, "nngp", device=device).shape == (4, 4)


def test_ctrl_c_stops_training(device):
    x = points(64, np.float32)
    y = x[:, 0]
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        widenet.train("Dense(512), Relu, Dense(512), Relu, Dense(1)", x, y, optimizer="sgd",
                      lr=0.01, steps=1_000_000, ensemble=4, device=device)
    timer.cancel()
    assert time.perf_counter() - start < 20
