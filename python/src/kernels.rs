//! Infinite-width kernels and predictions: `kernel_fn`'s two paths (float64
//! exact on the CPU, float32 tiled on a device) and `predict`'s linear algebra.

use crate::arrays::{cube, matrix, view};
use crate::detach;
use crate::device;
use crate::errors::{OrPy, invalid};
use numpy::{PyArray2, PyArray3, PyReadonlyArray2};
use pyo3::prelude::*;
use widenet::Arch;
use widenet::kernel::{Control, Kernels, Want, kernels_device_with, kernels_f64_with};
use widenet::matrix::Matrix;
use widenet::predict::{Get, PredictKernels, PredictSpec};

/// An architecture from its canonical JSON (or short form).
pub fn arch(text: &str) -> PyResult<Arch> {
    Arch::parse(text).or_py()
}

/// Checks an architecture (and, with `d_in`, its composition for inputs of
/// that many features); returns its canonical JSON.
#[pyfunction]
#[pyo3(signature = (text, d_in=None))]
pub fn check_arch(text: &str, d_in: Option<usize>) -> PyResult<String> {
    let a = arch(text)?;
    if let Some(d) = d_in {
        a.kernel_program(d).or_py()?;
    }
    Ok(a.to_json().to_string())
}

fn want(nngp: bool, ntk: bool) -> PyResult<Want> {
    if !(nngp || ntk) {
        return Err(invalid("get must name nngp, ntk or both"));
    }
    Ok(Want { nngp, ntk })
}

type Pair<'py, T> = (
    Option<Bound<'py, PyArray2<T>>>,
    Option<Bound<'py, PyArray2<T>>>,
);

fn to_arrays<'py, T: numpy::Element + Copy + Default>(
    py: Python<'py>,
    k: Kernels<T>,
) -> PyResult<Pair<'py, T>> {
    let out = |m: Option<Matrix<T>>| -> PyResult<Option<Bound<'py, PyArray2<T>>>> {
        m.map(|m| {
            let (r, c) = (m.rows(), m.cols());
            matrix(py, m.into_data(), r, c)
        })
        .transpose()
    };
    Ok((out(k.nngp)?, out(k.ntk)?))
}

/// The exact kernels in float64 on the CPU (neural-tangents' float64
/// values); `device` is checked but float64 always runs on the CPU.
#[pyfunction]
#[pyo3(signature = (arch_json, x1, x2, nngp, ntk, device=None))]
pub fn kernel_f64<'py>(
    py: Python<'py>,
    arch_json: &str,
    x1: PyReadonlyArray2<'py, f64>,
    x2: Option<PyReadonlyArray2<'py, f64>>,
    nngp: bool,
    ntk: bool,
    device: Option<String>,
) -> PyResult<Pair<'py, f64>> {
    device::choice(device.as_deref()).or_py()?;
    let a = arch(arch_json)?;
    let w = want(nngp, ntk)?;
    let v1 = view(&x1, "x1")?;
    let v2 = x2.as_ref().map(|x| view(x, "x2")).transpose()?;
    let k = detach::run(py, detach::nothing, |stop| {
        let ctl = Control {
            tile: None,
            stop: Some(stop),
        };
        kernels_f64_with(&a, v1, v2, w, ctl)
    })?;
    to_arrays(py, k)
}

/// The kernels in float32 on a device, tile by tile (`tile`: points per tile side).
#[pyfunction]
#[pyo3(signature = (arch_json, x1, x2, nngp, ntk, device=None, tile=None))]
#[allow(clippy::too_many_arguments)]
pub fn kernel_f32<'py>(
    py: Python<'py>,
    arch_json: &str,
    x1: PyReadonlyArray2<'py, f32>,
    x2: Option<PyReadonlyArray2<'py, f32>>,
    nngp: bool,
    ntk: bool,
    device: Option<String>,
    tile: Option<usize>,
) -> PyResult<Pair<'py, f32>> {
    let a = arch(arch_json)?;
    let w = want(nngp, ntk)?;
    let choice = device::choice(device.as_deref()).or_py()?;
    let v1 = view(&x1, "x1")?;
    let v2 = x2.as_ref().map(|x| view(x, "x2")).transpose()?;
    let k = detach::run(py, detach::nothing, |stop| {
        let dev = device::open(&choice)?;
        let ctl = Control {
            tile,
            stop: Some(stop),
        };
        kernels_device_with(dev.as_ref(), &a, v1, v2, w, ctl, |_, _| {})
    })?;
    to_arrays(py, k)
}

fn owned(a: &PyReadonlyArray2<'_, f64>, name: &str) -> PyResult<Matrix> {
    Ok(view(a, name)?.to_owned())
}

fn owned_opt(a: &Option<PyReadonlyArray2<'_, f64>>, name: &str) -> PyResult<Option<Matrix>> {
    a.as_ref().map(|a| owned(a, name)).transpose()
}

/// Mean `[T, n_test, d_out]` and covariance `[T, n_test, n_test]` of the
/// infinite ensemble trained on MSE, at each time of `times` (`None`:
/// infinity, the exact posterior), from the kernels (float64).
#[pyfunction]
#[pyo3(signature = (y_train, dd_nngp, dd_ntk, td_nngp, td_ntk, tt_nngp, get, times, learning_rate, diag_reg))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn predict<'py>(
    py: Python<'py>,
    y_train: PyReadonlyArray2<'py, f64>,
    dd_nngp: PyReadonlyArray2<'py, f64>,
    dd_ntk: Option<PyReadonlyArray2<'py, f64>>,
    td_nngp: PyReadonlyArray2<'py, f64>,
    td_ntk: Option<PyReadonlyArray2<'py, f64>>,
    tt_nngp: Option<PyReadonlyArray2<'py, f64>>,
    get: &str,
    times: Vec<Option<f64>>,
    learning_rate: f64,
    diag_reg: f64,
) -> PyResult<(Bound<'py, PyArray3<f64>>, Option<Bound<'py, PyArray3<f64>>>)> {
    let get = Get::parse(get).or_py()?;
    let y = owned(&y_train, "y_train")?;
    let k = PredictKernels {
        dd_nngp: owned(&dd_nngp, "k_train_train")?,
        dd_ntk: owned_opt(&dd_ntk, "k_train_train")?,
        td_nngp: owned(&td_nngp, "k_test_train")?,
        td_ntk: owned_opt(&td_ntk, "k_test_train")?,
        tt_nngp: owned_opt(&tt_nngp, "k_test_test")?,
    };
    let (n, d_out) = (k.td_nngp.rows(), y.cols());
    if k.dd_nngp.rows() != k.dd_nngp.cols() || k.td_nngp.cols() != k.dd_nngp.rows() {
        return Err(invalid(format!(
            "kernel shapes disagree: train-train {} x {}, test-train {} x {}",
            k.dd_nngp.rows(),
            k.dd_nngp.cols(),
            k.td_nngp.rows(),
            k.td_nngp.cols()
        )));
    }
    let want_cov = k.tt_nngp.is_some();
    let nt = times.len();
    let (means, covs) = detach::run(py, detach::nothing, move |stop| {
        let mut means = Vec::with_capacity(times.len() * n * d_out);
        let mut covs = Vec::new();
        for t in &times {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(widenet::Error::Cancelled);
            }
            let spec = PredictSpec {
                get,
                t: *t,
                learning_rate,
                diag_reg,
            };
            let p = widenet::predict::gradient_descent_mse_ensemble(&k, &y, &spec)?;
            means.extend_from_slice(p.mean.data());
            if let Some(c) = p.cov {
                covs.extend_from_slice(c.data());
            }
        }
        Ok((means, covs))
    })?;
    let mean = cube(py, means, [nt, n, d_out])?;
    let cov = if want_cov {
        Some(cube(py, covs, [nt, n, n])?)
    } else {
        None
    };
    Ok((mean, cov))
}
