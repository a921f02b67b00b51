"""Every exception path: bad input is a ValueError with the library's
message, a device failure a RuntimeError, nothing crashes the interpreter."""

import numpy as np
import pytest

import widenet
from widenet import _native, predict, stax

NET = stax.serial(stax.Dense(32), stax.Relu(), stax.Dense(1))
X = np.random.default_rng(0).standard_normal((4, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: NET[2](X[0], None, "ntk"), "must be a 2-d array"),
    (lambda: NET[2](X, np.ones((2, 5)), "ntk"), "x1 has 3 features but x2 has 5"),
    (lambda: NET[2](X.astype(np.float32), np.ones((2, 5), np.float32), "ntk"), "x1 has 3 features but x2 has 5"),
    (lambda: NET[2](X.astype(int), None, "ntk"), "dtype int64"),
    (lambda: NET[2](X.astype(complex), None, "ntk"), "dtype complex128"),
    (lambda: NET[2](np.where(X > 1, np.nan, X), None, "ntk"), "non-finite value"),
    (lambda: NET[2](np.where(X > 1, np.inf, X).astype(np.float32), None, "ntk"), "non-finite value"),
    (lambda: NET[2](np.zeros((0, 3)), None, "ntk"), "x1 holds no point"),
    (lambda: NET[2](X, None, "ntkk"), "get must be"),
    (lambda: NET[2](X, None, ()), "at least one kernel"),
    (lambda: NET[2](X.astype(np.float32), batch_size=0), "batch_size must be a positive integer"),
    (lambda: NET[2](X.astype(np.float32), device="no-such-adapter-anywhere"), "no device matches"),
    (lambda: NET[2](X.astype(np.float32), device="gpu:x"), "expected gpu:INDEX"),
    (lambda: stax.serial(stax.Relu(), stax.Dense(1))[2](X), "needs a Gaussian input"),
    (lambda: stax.Dense(0), "out_dim must be a positive integer"),
    (lambda: stax.Dense(4, parameterization="mup"), "layer 1 (Dense)"),
    (lambda: stax.Gelu(approximate=True), "exact GELU"),
    (lambda: stax.serial(stax.FanOut(3), stax.parallel(stax.Identity(), stax.Dense(4)), stax.FanInSum()), "FanOut(2)"),
    (lambda: stax.serial(stax.FanOut(2), stax.Dense(4)), "residual block"),
    (lambda: stax.serial(stax.Dense(4), stax.Residual(stax.Relu(), stax.Dense(3)))[2](X), "block outputs width 3"),
    (lambda: widenet.train("[[\"Dense\", 4], [\"Swish\"], [\"Dense\", 1]]", X, X[:, 0]), "layer 2 (Swish): unknown layer"),
    (lambda: widenet.train(NET, X, X[:3, 0]), "y has 3 rows but x has 4"),
    (lambda: widenet.train(NET, X, X[:, 0], optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
    (lambda: widenet.train(NET, X, X[:, 0], loss="hinge"), "unknown loss 'hinge'"),
    (lambda: widenet.train(NET, X, X[:, 0], optimizer="gd", batch_size=2), "does not apply to gd"),
    (lambda: widenet.train(NET, X, X[:, 0], lr=-1.0), "lr must be positive"),
    (lambda: widenet.train(NET, X, X[:, 0], steps=0), "steps must be a positive integer"),
    (lambda: widenet.train(NET, X, np.stack([X[:, 0]] * 2, 1)), "y has 2 columns but the network has d_out = 1"),
    (lambda: NET[1]({"layers.0.weight": np.zeros((1, 32, 3))}, X), "params must be widenet.Params"),
    (lambda: NET[1](NET[0](0, 5), X), "x has 3 features but the network has d_in = 5"),
    (lambda: stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[1](NET[0](0, 3), X), "not of this apply_fn's"),
    (lambda: predict.gradient_descent_mse_ensemble(NET[2], X, np.ones(5)), "y_train must be"),
    (lambda: predict.gradient_descent_mse_ensemble(NET[2], X, np.ones(4))(t=-1.0, get="ntk"), "t must be non-negative"),
    (lambda: predict.gradient_descent_mse_ensemble(NET[2], np.ones((4, 3)), np.ones(4))(get="ntk"), "not positive definite"),
    (lambda: predict.gradient_descent_mse_ensemble(NET[2], X, np.ones(4), trace_axes=()), "trace_axes"),
    (lambda: widenet.experiments.compare(widths=[16, 32], no_such_setting=1), "unknown field `no-such-setting`"),
    (lambda: widenet.experiments.compare(quick=True, large=True), "pick one"),
    (lambda: widenet.experiments.drift(resume=True), "resume needs out="),
])
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value)


def test_params_that_do_not_match_their_spec(tmp_path):
    p = NET[0](0, 3)
    bad = widenet.Params(dict(p), p.spec)
    bad["layers.0.weight"] = bad["layers.0.weight"][:, :5]
    with pytest.raises(ValueError, match=r"'layers.0.weight' has shape \[1, 5, 3\], expected \[1, 32, 3\]"):
        NET[1](bad, X)
    extra = widenet.Params({**p, "layers.9.weight": np.zeros(3, np.float32)}, p.spec)
    with pytest.raises(ValueError, match="unexpected entries"):
        widenet.save(tmp_path / "p.safetensors", extra)
    missing = widenet.Params({"layers.0.weight": p["layers.0.weight"]}, p.spec)
    with pytest.raises(ValueError, match="missing 'layers.1.weight'"):
        NET[1](missing, X)


def test_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        widenet.load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file of tensors")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        widenet.load(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        widenet.save(tmp_path / "no" / "p.safetensors", NET[0](0, 3))


@pytest.mark.parametrize("kind, exc", [
    ("invalid", ValueError), ("shape", ValueError), ("no-device", ValueError),
    ("numerical", ValueError), ("file", ValueError), ("device-limit", RuntimeError),
    ("gpu", RuntimeError), ("cancelled", KeyboardInterrupt), ("interrupted", KeyboardInterrupt),
])
def test_every_library_error_maps_to_its_exception(kind, exc):
    with pytest.raises(exc) as e:
        _native.raise_library_error(kind)
    assert str(e.value)  # the library's message comes along
