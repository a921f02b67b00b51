"""stax: one spec for the finite network and its limit, neural-tangents' spellings."""

import json

import numpy as np

import widenet
from widenet import stax

X = np.random.default_rng(1).standard_normal((5, 4))


def test_fanout_spelling_is_the_residual_block():
    block = stax.serial(stax.Relu(), stax.Dense(64, W_std=1.2))
    a = stax.serial(stax.Dense(64), stax.Residual(stax.Relu(), stax.Dense(64, W_std=1.2)), stax.Dense(1))
    b = stax.serial(stax.Dense(64), stax.FanOut(2), stax.parallel(stax.Identity(), block),
                    stax.FanInSum(), stax.Dense(1))
    c = stax.serial(stax.Dense(64), stax.FanOut(2), stax.parallel(block, stax.serial()),
                    stax.FanInSum(), stax.Dense(1))
    assert a.arch == b.arch == c.arch
    assert a.arch[1] == ["Residual", [["Relu"], ["Dense", 64, {"W_std": 1.2}]]]
    np.testing.assert_array_equal(a[2](X, None, "ntk"), b[2](X, None, "ntk"))
    # The residual block adds the kernels of its two branches.
    plain = stax.serial(stax.Dense(64), stax.Dense(1))[2](X, None, "nngp")
    assert not np.allclose(a[2](X, None, "nngp"), plain)


def test_spec_is_the_command_lines_json():
    net = stax.serial(stax.Dense(256, W_std=1.3, b_std=0.05, parameterization="standard"), stax.Tanh(),
                      stax.LayerNorm(eps=1e-6), stax.LeakyRelu(0.2), stax.Dense(1))
    assert net.arch == [
        ["Dense", 256, {"W_std": 1.3, "b_std": 0.05, "parameterization": "standard"}],
        ["Tanh"], ["LayerNorm", {"eps": 1e-06}], ["LeakyRelu", 0.2], ["Dense", 1]]
    # The same kernels from the JSON string, the short form and the triple.
    from widenet._nets import _arch_layers
    assert _arch_layers(json.dumps(net.arch)) == net.arch
    assert _arch_layers("Dense(256, W_std=1.3, b_std=0.05, parameterization=standard), Tanh, "
                        "LayerNorm(eps=1e-6), LeakyRelu(0.2), Dense(1)") == net.arch


def test_layers_unpack_and_compose():
    init_fn, apply_fn, kernel_fn = stax.Dense(3)
    assert kernel_fn.arch == [["Dense", 3]]
    net = stax.serial(stax.serial(stax.Dense(8), stax.Erf(2.0, 0.5, 0.1)), (init_fn, apply_fn, kernel_fn))
    assert net.arch == [["Dense", 8], ["Erf", 2.0, 0.5, 0.1], ["Dense", 3]]
    p = net[0](0, (-1, 4), ensemble=2)
    assert net[1](p, X).shape == (2, 5, 3)
    assert stax.ABRelu(-0.5, 1.5).arch == [["ABRelu", -0.5, 1.5]]
    assert stax.ABRelu(-1, 1).arch == [["Abs"]]  # the same function, named as the library names it
    assert stax.Abs().arch == [["Abs"]]


def test_help_teaches():
    doc = stax.Dense.__doc__
    for words in ("out_dim", "W_std", "b_std", "parameterization", "standard", "Example"):
        assert words in doc
    assert "x1" in stax.KernelFn.__doc__ and "float64" in stax.KernelFn.__doc__
    assert "Gaussian" in widenet.predict.gradient_descent_mse_ensemble.__doc__


def test_standard_parameterization_ntk_grows_with_width():
    narrow = stax.serial(stax.Dense(64, parameterization="standard"), stax.Relu(),
                         stax.Dense(1, parameterization="standard"))
    wide = stax.serial(stax.Dense(256, parameterization="standard"), stax.Relu(),
                       stax.Dense(1, parameterization="standard"))
    assert np.all(np.diag(wide[2](X, None, "ntk")) > np.diag(narrow[2](X, None, "ntk")))
