"""Training and empirical kernels from Python."""

import numpy as np

import widenet
from widenet import stax


def data(n=16, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x, np.sin(x[:, 0]) + 0.5 * x[:, 1]


def test_training_fits_and_logs():
    x, y = data()
    net = stax.serial(stax.Dense(256, b_std=0.1), stax.Relu(), stax.Dense(1))
    params, h = widenet.train(net, x, y, optimizer="gd", lr=1.0, steps=200, ensemble=3, log_every=50)
    assert params.ensemble == 3 and list(h["steps"]) == [1, 50, 100, 150, 200]
    assert h["loss"].shape == (5, 3) and h["final_loss"].shape == (3,)
    assert all(d is None for d in h["diverged_at"])
    assert np.all(h["final_loss"] < 0.05 * h["loss"][0])
    # The final loss is that of the returned parameters.
    f = net[1](params, x)
    mse = ((f[:, :, 0] - y[None, :]) ** 2).sum(1) / (2 * len(y))
    np.testing.assert_allclose(mse, h["final_loss"], rtol=1e-3)
    # Training goes on from given parameters.
    more, h2 = widenet.train(params, x, y, optimizer="adam", lr=1e-3, steps=20, batch_size=8)
    assert more.spec == params.spec and h2["loss"].shape[1] == 3


def test_divergence_is_recorded():
    x, y = data()
    _, h = widenet.train("Dense(64), Relu, Dense(1)", x, y, optimizer="gd", lr=[1.0, 1e6], steps=30, ensemble=2)
    assert h["diverged_at"][0] is None and h["diverged_at"][1] is not None
    assert np.isfinite(h["final_loss"][0]) and np.isnan(h["final_loss"][1])


def test_empirical_kernel_approaches_the_analytic_one():
    x, _ = data(8, 3)
    init_fn, _, kernel_fn = stax.serial(stax.Dense(2048, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.5))
    p = init_fn(0, 3, ensemble=2)
    emp = widenet.empirical_kernel(p, x, get=("ntk", "nngp"))
    assert emp.ntk.shape == (2, 8, 8) and emp._fields == ("ntk", "nngp")
    exact = kernel_fn(x.astype(np.float64), None)
    for e in range(2):
        # Width 2048: the empirical kernels are within a few percent (fluctuations ~ width^-1/2).
        assert np.linalg.norm(emp.ntk[e] - exact.ntk) / np.linalg.norm(exact.ntk) < 0.05
        assert np.linalg.norm(emp.nngp[e] - exact.nngp) / np.linalg.norm(exact.nngp) < 0.1
    # x2: the off-diagonal block of the kernel of both sets.
    x2 = data(5, 3, seed=1)[0]
    both = widenet.empirical_kernel(p, np.concatenate([x, x2]))
    np.testing.assert_allclose(widenet.empirical_kernel(p, x, x2), both[:, :8, 8:], rtol=1e-5, atol=1e-6)


def test_devices_lists_the_cpu_backend():
    devs = widenet.devices()
    assert devs[-1]["backend"] == "Cpu" and devs[-1]["index"] is None
    assert widenet.device_info("cpu")["backend"] == "Cpu"
