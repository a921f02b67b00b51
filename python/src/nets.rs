//! Finite ensembles: parameters as named numpy arrays (the safetensors
//! names), initialization, outputs, training step by step (interruptible
//! between steps), empirical kernels, and the parameter files.

use crate::arrays::{cube, view};
use crate::detach;
use crate::device;
use crate::errors::{OrPy, invalid};
use numpy::{PyArray3, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::Ordering;
use widenet::backend::{Loss, Rule};
use widenet::net::train::{Schedule, TrainConfig, Trainer, forward_ref};
use widenet::net::{Ensemble, NetSpec, Params};

/// Tensors by name, `[E, fan_out, fan_in]` weights and `[E, fan_out]` biases.
type Tensors<'py> = Vec<(String, Bound<'py, PyAny>)>;

fn spec_of(json: &str) -> PyResult<NetSpec> {
    let spec: NetSpec =
        serde_json::from_str(json).map_err(|e| invalid(format!("bad network description: {e}")))?;
    spec.validate().or_py()?;
    Ok(spec)
}

fn spec_json(spec: &NetSpec) -> PyResult<String> {
    serde_json::to_string(spec).map_err(|e| invalid(e.to_string()))
}

/// Parameters from the spec and a dict of float32 C-contiguous arrays.
pub fn params_of(spec_json: &str, tensors: &Bound<'_, PyDict>) -> PyResult<Params> {
    let spec = spec_of(spec_json)?;
    let e = spec.ensemble;
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    let mut used = 0;
    let take = |name: &str, shape: &[usize]| -> PyResult<Vec<f32>> {
        let item = tensors
            .get_item(name)?
            .ok_or_else(|| invalid(format!("params: missing '{name}'")))?;
        let a = item
            .cast::<numpy::PyArrayDyn<f32>>()
            .map_err(|_| invalid(format!("params: '{name}' is not a float32 array")))?
            .readonly();
        if a.shape() != shape {
            return Err(invalid(format!(
                "params: '{name}' has shape {:?}, expected {shape:?}",
                a.shape()
            )));
        }
        let v = a
            .to_vec()
            .map_err(|_| invalid(format!("params: '{name}' is not contiguous")))?;
        if let Some(p) = v.iter().position(|x| !x.is_finite()) {
            return Err(invalid(format!(
                "params: '{name}' has a non-finite value at flat index {p}"
            )));
        }
        Ok(v)
    };
    for l in spec.dense_layers() {
        weights.push(take(
            &format!("layers.{}.weight", l.index),
            &[e, l.fan_out, l.fan_in],
        )?);
        used += 1;
        if l.dense.has_bias() {
            biases.push(Some(take(
                &format!("layers.{}.bias", l.index),
                &[e, l.fan_out],
            )?));
            used += 1;
        } else {
            biases.push(None);
        }
    }
    if tensors.len() != used {
        let mut extra: Vec<String> = Vec::new();
        for k in tensors.keys() {
            let k: String = k.extract()?;
            let known = spec.dense_layers().iter().any(|l| {
                k == format!("layers.{}.weight", l.index)
                    || (l.dense.has_bias() && k == format!("layers.{}.bias", l.index))
            });
            if !known {
                extra.push(k);
            }
        }
        return Err(invalid(format!(
            "params: unexpected entries {extra:?} for {} Dense layers",
            spec.dense_layers().len()
        )));
    }
    let p = Params {
        spec,
        weights,
        biases,
    };
    p.check().or_py()?;
    Ok(p)
}

/// The named arrays of parameters.
fn tensors_of<'py>(py: Python<'py>, p: Params) -> PyResult<Tensors<'py>> {
    let e = p.spec.ensemble;
    let mut out = Vec::new();
    let layers = p.spec.dense_layers();
    for (l, (w, b)) in layers.iter().zip(p.weights.into_iter().zip(p.biases)) {
        out.push((
            format!("layers.{}.weight", l.index),
            cube(py, w, [e, l.fan_out, l.fan_in])?.into_any(),
        ));
        if let Some(b) = b {
            let arr = numpy::PyArray1::from_vec(py, b).reshape([e, l.fan_out])?;
            out.push((format!("layers.{}.bias", l.index), arr.into_any()));
        }
    }
    Ok(out)
}

/// Seeded parameters of a network (`spec_json`: arch, d_in, ensemble,
/// parameterization, base_width); returns the checked spec and the arrays.
#[pyfunction]
pub fn init<'py>(py: Python<'py>, spec_json: &str, seed: u64) -> PyResult<(String, Tensors<'py>)> {
    let spec = spec_of(spec_json)?;
    let p = detach::run(py, detach::nothing, |_| Params::init(&spec, seed))?;
    Ok((spec_json_of(&p)?, tensors_of(py, p)?))
}

fn spec_json_of(p: &Params) -> PyResult<String> {
    spec_json(&p.spec)
}

/// Outputs `[E, n, d_out]` of every member on `x`.
#[pyfunction]
#[pyo3(signature = (spec_json, tensors, x, device=None))]
pub fn forward<'py>(
    py: Python<'py>,
    spec_json: &str,
    tensors: &Bound<'py, PyDict>,
    x: PyReadonlyArray2<'py, f32>,
    device: Option<String>,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let p = params_of(spec_json, tensors)?;
    let choice = device::choice(device.as_deref()).or_py()?;
    let xv = view(&x, "x")?;
    let (e, n, d_out) = (p.spec.ensemble, xv.rows(), p.spec.d_out());
    let out = detach::run(py, detach::nothing, |_| {
        let dev = device::open(&choice)?;
        let ens = Ensemble::new(dev.as_ref(), &p)?;
        forward_ref(&ens, xv)
    })?;
    cube(py, out, [e, n, d_out])
}

/// The optimizer of a name, as the command line names them.
fn rule(optimizer: &str, momentum: f32, betas: (f32, f32), eps: f32) -> PyResult<Rule> {
    Ok(match optimizer.to_ascii_lowercase().as_str() {
        "gd" | "sgd" => Rule::Sgd,
        "momentum" => Rule::Momentum { mu: momentum },
        "adam" => Rule::Adam {
            b1: betas.0,
            b2: betas.1,
            eps,
        },
        o => {
            return Err(invalid(format!(
                "unknown optimizer '{o}' (expected gd, sgd, momentum or adam)"
            )));
        }
    })
}

/// Trains the ensemble; returns its spec, the trained arrays and the log as JSON.
#[pyfunction]
#[pyo3(signature = (spec_json, tensors, x, y, optimizer, lr, steps, loss, batch_size, schedule, log_every, seed, momentum, betas, eps, device=None))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    spec_json: &str,
    tensors: &Bound<'py, PyDict>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    optimizer: &str,
    lr: Vec<f64>,
    steps: usize,
    loss: &str,
    batch_size: Option<usize>,
    schedule: &str,
    log_every: Option<usize>,
    seed: u64,
    momentum: f32,
    betas: (f32, f32),
    eps: f32,
    device: Option<String>,
) -> PyResult<(String, Tensors<'py>, String)> {
    let p = params_of(spec_json, tensors)?;
    let cfg = TrainConfig {
        rule: rule(optimizer, momentum, betas, eps)?,
        lr,
        steps,
        batch_size,
        loss: match loss.to_ascii_lowercase().as_str() {
            "mse" => Loss::Mse,
            "xent" | "cross-entropy" | "cross_entropy" => Loss::Xent,
            o => {
                return Err(invalid(format!(
                    "unknown loss '{o}' (expected mse or xent)"
                )));
            }
        },
        schedule: match schedule.to_ascii_lowercase().as_str() {
            "constant" => Schedule::Constant,
            "cosine" => Schedule::Cosine,
            o => {
                return Err(invalid(format!(
                    "unknown schedule '{o}' (expected constant or cosine)"
                )));
            }
        },
        log_every: log_every.unwrap_or((steps / 10).max(1)),
        seed,
    };
    let choice = device::choice(device.as_deref()).or_py()?;
    let (xv, yv) = (view(&x, "x")?, view(&y, "y")?);
    let (trained, log) = detach::run(py, detach::nothing, |stop| {
        let dev = device::open(&choice)?;
        let mut ens = Ensemble::new(dev.as_ref(), &p)?;
        let mut t = Trainer::from_refs(&mut ens, xv, yv, &cfg)?;
        for _ in 0..cfg.steps {
            if stop.load(Ordering::Relaxed) {
                return Err(widenet::Error::Cancelled);
            }
            t.step()?;
        }
        let log = t.finish()?;
        Ok((ens.params()?, log))
    })?;
    let log = serde_json::json!({
        "steps": log.steps,
        "loss": log.loss,
        "final_loss": log.final_loss.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>(),
        "diverged_at": log.diverged_at,
    });
    Ok((
        spec_json_of(&trained)?,
        tensors_of(py, trained)?,
        log.to_string(),
    ))
}

/// Empirical NTK `[E, n, n]` and NNGP (of the readout given its features) of
/// every member on `x`.
#[pyfunction]
#[pyo3(signature = (spec_json, tensors, x, device=None))]
#[allow(clippy::type_complexity)]
pub fn empirical<'py>(
    py: Python<'py>,
    spec_json: &str,
    tensors: &Bound<'py, PyDict>,
    x: PyReadonlyArray2<'py, f32>,
    device: Option<String>,
) -> PyResult<(Bound<'py, PyArray3<f32>>, Option<Bound<'py, PyArray3<f32>>>)> {
    let p = params_of(spec_json, tensors)?;
    let choice = device::choice(device.as_deref()).or_py()?;
    let xm = view(&x, "x")?.to_owned();
    let k = detach::run(py, detach::nothing, |_| {
        let dev = device::open(&choice)?;
        let mut ens = Ensemble::new(dev.as_ref(), &p)?;
        widenet::net::empirical::empirical_kernels(&mut ens, &xm)
    })?;
    let shape = [k.members, k.n, k.n];
    Ok((
        cube(py, k.ntk, shape)?,
        k.nngp.map(|v| cube(py, v, shape)).transpose()?,
    ))
}

/// Writes a safetensors parameter file (atomically).
#[pyfunction]
pub fn save(
    py: Python<'_>,
    path: std::path::PathBuf,
    spec_json: &str,
    tensors: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let p = params_of(spec_json, tensors)?;
    detach::run(py, detach::nothing, |_| p.save(&path))
}

/// Reads a safetensors parameter file: its spec and arrays.
#[pyfunction]
pub fn load<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<(String, Tensors<'py>)> {
    let p = detach::run(py, detach::nothing, |_| Params::load(&path))?;
    Ok((spec_json_of(&p)?, tensors_of(py, p)?))
}
