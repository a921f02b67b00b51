"""predict's neural-tangents semantics beyond the golden cases: arrays of
times, the training points as default test points, gp_inference as the t =
inf limit, named tuples for get, float32 in and out."""

import numpy as np
import pytest

from widenet import predict, stax


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.standard_normal((12, 4)), rng.standard_normal((5, 4))
    y_train = np.sin(x_train.sum(1, keepdims=True)) + np.stack([x_train[:, 0], x_train[:, 1]], 1)[:, :1]
    _, _, kernel_fn = stax.serial(stax.Dense(256, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.5, b_std=0.1))
    return kernel_fn, x_train, y_train, x_test


def test_times_array_matches_scalar_calls(problem):
    kernel_fn, x_train, y_train, x_test = problem
    predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=1e-4)
    ts = np.array([[0.0, 1.0], [10.0, np.inf]])
    out = predict_fn(t=ts, x_test=x_test, get="ntk", compute_cov=True)
    assert out.mean.shape == (2, 2, 5, 1) and out.covariance.shape == (2, 2, 5, 5)
    for idx in np.ndindex(2, 2):
        one = predict_fn(t=float(ts[idx]), x_test=x_test, get="ntk", compute_cov=True)
        np.testing.assert_allclose(out.mean[idx], one.mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out.covariance[idx], one.covariance, rtol=1e-12, atol=1e-14)
    # At t = 0 the mean is the prior mean, zero, and the covariance the prior's.
    np.testing.assert_allclose(out.mean[0, 0], 0.0, atol=1e-12)
    k_tt = kernel_fn(x_test, None, "nngp")
    np.testing.assert_allclose(out.covariance[0, 0], k_tt, rtol=1e-10, atol=1e-12)


def test_infinite_time_is_gp_inference(problem):
    kernel_fn, x_train, y_train, x_test = problem
    predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=1e-3)
    k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
    k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"))
    k_tt = kernel_fn(x_test, None, "nngp")
    gp = predict.gp_inference(k_dd, y_train, diag_reg=1e-3)
    for get in ("nngp", "ntk"):
        a = predict_fn(t=None, x_test=x_test, get=get, compute_cov=True)
        b = gp(get, k_td, k_tt)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
        np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-10, atol=1e-14)
    # Both kernels at once: a named tuple of Gaussians.
    both = gp(None, k_td, k_tt)
    assert both._fields == ("nngp", "ntk") and both.ntk.mean.shape == (5, 1)


def test_training_points_are_fitted(problem):
    kernel_fn, x_train, y_train, _ = problem
    predict_fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=1e-10)
    mean = predict_fn(t=None, get="ntk")  # x_test=None: the training points
    np.testing.assert_allclose(mean, y_train, atol=1e-6)
    # Long training approaches the same fit; short training is still far from it.
    early = predict_fn(t=1e-3, get="ntk")
    assert np.abs(early - y_train).max() > 0.1


def test_absolute_diag_reg_is_relative_times_mean_diagonal(problem):
    kernel_fn, x_train, y_train, x_test = problem
    k = kernel_fn(x_train, None, "ntk")
    scale = np.mean(np.diag(k))
    a = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=0.01)(
        t=5.0, x_test=x_test, get="ntk")
    b = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=0.01 * scale,
                                              diag_reg_absolute_scale=True)(t=5.0, x_test=x_test, get="ntk")
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_float32_in_float32_out(problem):
    kernel_fn, x_train, y_train, x_test = problem
    f64 = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=1e-3)(
        t=3.0, x_test=x_test, get="ntk")
    f32 = predict.gradient_descent_mse_ensemble(kernel_fn, x_train.astype(np.float32), y_train, diag_reg=1e-3)(
        t=3.0, x_test=x_test.astype(np.float32), get="ntk")
    assert f32.dtype == np.float32 and f64.dtype == np.float64
    np.testing.assert_allclose(f32, f64, rtol=1e-3, atol=1e-4)
