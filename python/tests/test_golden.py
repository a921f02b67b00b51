"""The kernels and predictions through the Python API against neural-tangents
0.6.5's float64 values (tests/data): relative Frobenius error at most 1e-9 on
the float64 path (1e-5 where neural-tangents integrates numerically: tanh,
sigmoid) and 1e-4 on the float32 device path, as in the Rust tests."""

import numpy as np
import pytest

from conftest import rel
from widenet import predict, stax


def mlp(c):
    act = {"relu": stax.Relu, "erf": stax.Erf, "linear": stax.Identity}[c["activation"]]
    dense = lambda out: stax.Dense(out, W_std=c["w_std"], b_std=c["b_std"],  # noqa: E731
                                   parameterization=c["parameterization"])
    layers = []
    for _ in range(c["depth"]):
        layers += [dense(c["width"]), act()]
    return stax.serial(*layers, dense(1))


def test_f64_kernels_match_neural_tangents(golden):
    x1, x2 = np.array(golden["x1"]), np.array(golden["x2"])
    assert len(golden["kernels"]) == 24
    for c in golden["kernels"]:
        _, _, kernel_fn = mlp(c)
        k12 = kernel_fn(x1, x2)
        k11 = kernel_fn(x1, None, ("nngp", "ntk"))
        assert k12.nngp.dtype == np.float64 and k12.ntk.shape == (6, 4)
        for got, name in [(k12.nngp, "nngp_x1_x2"), (k12.ntk, "ntk_x1_x2"),
                          (k11.nngp, "nngp_x1_x1"), (k11.ntk, "ntk_x1_x1")]:
            assert rel(got, c[name]) < 1e-9, (c, name)
        # A single name gives the array itself.
        np.testing.assert_array_equal(kernel_fn(x1, x2, "ntk"), k12.ntk)


def test_f32_kernels_match_neural_tangents(golden, device):
    x1, x2 = np.array(golden["x1"], np.float32), np.array(golden["x2"], np.float32)
    for c in golden["kernels"]:
        _, _, kernel_fn = mlp(c)
        k12 = kernel_fn(x1, x2, device=device)
        k11 = kernel_fn(x1, get=("ntk", "nngp"), device=device)
        assert k12.ntk.dtype == np.float32 and k11._fields == ("ntk", "nngp")
        for got, name in [(k12.nngp, "nngp_x1_x2"), (k12.ntk, "ntk_x1_x2"),
                          (k11.nngp, "nngp_x1_x1"), (k11.ntk, "ntk_x1_x1")]:
            assert rel(got, c[name]) < 1e-4, (c, name)


def from_json(layers):
    """A stax network from a golden file's JSON layer list."""
    out = []
    for l in layers:
        name, args = l[0], l[1:]
        opts = args.pop() if args and isinstance(args[-1], dict) else {}
        if name == "Residual":
            out.append(stax.Residual(*[from_json([b]) for b in args[0]]))
        elif name == "Dense":
            out.append(stax.Dense(*args, **opts))
        else:
            out.append(getattr(stax, name)(*args, **opts))
    return stax.serial(*out)


@pytest.mark.parametrize("precision", ["f64", "f32"])
def test_architectures_match_neural_tangents(golden_archs, precision, device):
    dtype = np.float64 if precision == "f64" else np.float32
    x1, x2 = np.array(golden_archs["x1"], dtype), np.array(golden_archs["x2"], dtype)
    assert len(golden_archs["cases"]) == 5
    for c in golden_archs["cases"]:
        net = from_json(c["arch"])
        assert net.arch == stax.serial(net).arch
        numerical = any(l[0] in ("Tanh", "Sigmoid") for l in c["arch"])
        tol = 1e-4 if precision == "f32" else (1e-5 if numerical else 1e-9)
        kernel_fn = net[2]
        k11, k12 = kernel_fn(x1, device=device), kernel_fn(x1, x2, device=device)
        for got, want in [(k11.nngp, c["k11"]["nngp"]), (k11.ntk, c["k11"]["ntk"]),
                          (k12.nngp, c["k12"]["nngp"]), (k12.ntk, c["k12"]["ntk"])]:
            assert got.dtype == dtype
            assert rel(got, want) < tol, c["name"]


def test_predictions_match_neural_tangents(golden):
    p = golden["predict"]
    x_train, y_train, x_test = (np.array(p[k]) for k in ("x_train", "y_train", "x_test"))
    assert len(p["cases"]) == 24
    for c in p["cases"]:
        _, _, kernel_fn = mlp(c)
        predict_fn = predict.gradient_descent_mse_ensemble(
            kernel_fn, x_train, y_train, learning_rate=c["learning_rate"], diag_reg=c["diag_reg"])
        out = predict_fn(t=c["t"], x_test=x_test, get=c["get"], compute_cov=True)
        assert rel(out.mean, c["mean"]) < 1e-9, c
        assert rel(out.covariance, c["cov"]) < 1e-9, c
