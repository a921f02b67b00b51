"""Arrays in and out: dtypes choose the path, any float dtype and memory order
is accepted (converted once), C-contiguous float32 input is read in place,
parameters round-trip through dicts and safetensors files."""

import numpy as np

import widenet
from widenet import _native, stax

NET = stax.serial(stax.Dense(64, W_std=1.3, b_std=0.2), stax.Relu(), stax.Dense(2, W_std=1.3))


def points(n=7, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def test_dtype_chooses_the_path():
    _, _, kernel_fn = NET
    x = points()
    k64 = kernel_fn(x, None, "ntk")
    k32 = kernel_fn(x.astype(np.float32), None, "ntk")
    k16 = kernel_fn(x.astype(np.float16), None, "ntk")
    assert k64.dtype == np.float64 and k32.dtype == np.float32 and k16.dtype == np.float32
    np.testing.assert_allclose(k32, k64, rtol=1e-5, atol=1e-6)
    # Mixed inputs take the wider path.
    assert kernel_fn(x, x.astype(np.float32), "nngp").dtype == np.float64


def test_any_memory_order_gives_the_same_values():
    _, _, kernel_fn = NET
    x = points(9, 4)
    want = kernel_fn(x, None, "ntk")
    fortran = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=0)[::2]
    assert not fortran.flags.c_contiguous and not strided.flags.c_contiguous
    np.testing.assert_array_equal(kernel_fn(fortran, None, "ntk"), want)
    np.testing.assert_array_equal(kernel_fn(strided, None, "ntk"), want)
    np.testing.assert_array_equal(kernel_fn(x.tolist(), None, "ntk"), want)


def test_c_contiguous_float32_is_not_copied():
    _, _, kernel_fn = NET
    x = points(5, 3).astype(np.float32)
    kernel_fn(x, None, "ntk")
    assert _native.last_input_address() == x.__array_interface__["data"][0]
    f = np.asfortranarray(points(5, 3)).astype(np.float32, order="F")
    kernel_fn(f, None, "ntk")
    assert _native.last_input_address() != f.__array_interface__["data"][0]


def test_params_round_trip(tmp_path):
    init_fn, apply_fn, _ = NET
    p = init_fn(seed=3, d_in=3, ensemble=4)
    assert sorted(p) == ["layers.0.bias", "layers.0.weight", "layers.1.weight"]
    assert p["layers.0.weight"].shape == (4, 64, 3) and p["layers.0.weight"].dtype == np.float32
    assert p["layers.0.bias"].shape == (4, 64) and p["layers.1.weight"].shape == (4, 2, 64)
    # Seeds: same seed, same numbers; members do not depend on the ensemble's size.
    np.testing.assert_array_equal(init_fn(3, 3, 4)["layers.1.weight"], p["layers.1.weight"])
    np.testing.assert_array_equal(init_fn(3, 3, 1)["layers.0.weight"][0], p["layers.0.weight"][0])
    assert not np.array_equal(init_fn(4, 3, 4)["layers.0.weight"], p["layers.0.weight"])
    path = tmp_path / "p.safetensors"
    widenet.save(path, p)
    q = widenet.load(path)
    assert q.spec == p.spec and sorted(q) == sorted(p)
    for k in p:
        np.testing.assert_array_equal(q[k], p[k])
    x = points(6, 3)
    f = apply_fn(q, x)
    assert f.shape == (4, 6, 2) and f.dtype == np.float32
    np.testing.assert_array_equal(f, apply_fn(p, x))


def test_apply_fn_is_the_network():
    init_fn, apply_fn, _ = NET
    p = init_fn(seed=1, d_in=3, ensemble=2)
    x = points(5, 3)
    w0, b0, w1 = (p[k].astype(np.float64) for k in ("layers.0.weight", "layers.0.bias", "layers.1.weight"))
    for e in range(2):
        h = np.maximum(1.3 / np.sqrt(3) * x @ w0[e].T + 0.2 * b0[e], 0)
        want = 1.3 / np.sqrt(64) * h @ w1[e].T
        np.testing.assert_allclose(apply_fn(p, x)[e], want, rtol=1e-5, atol=1e-5)
    # Changed arrays are used as given.
    p["layers.1.weight"] = np.zeros_like(p["layers.1.weight"])
    np.testing.assert_array_equal(apply_fn(p, x), 0.0)
