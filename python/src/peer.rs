//! The same work as `kernel_fn` and `widenet.train`, timed through the Rust
//! library alone: the peer that `scripts/python-overhead.py` measures the
//! Python layer against, in the same process on the same device.

use crate::arrays::view;
use crate::detach;
use crate::device;
use crate::errors::OrPy;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::Instant;
use widenet::kernel::{Want, kernels_device};
use widenet::net::Ensemble;
use widenet::net::train::{TrainConfig, train};

/// Seconds of `kernels_device(dev, arch, x, None, NTK)` on owned inputs, the
/// device already open (one call per entry of the result).
#[pyfunction]
#[pyo3(signature = (arch_json, x, reps, device=None))]
pub fn bench_kernel_rust(
    py: Python<'_>,
    arch_json: &str,
    x: PyReadonlyArray2<'_, f32>,
    reps: usize,
    device: Option<String>,
) -> PyResult<Vec<f64>> {
    let arch = crate::kernels::arch(arch_json)?;
    let choice = device::choice(device.as_deref()).or_py()?;
    let x = view(&x, "x")?.to_owned();
    detach::run(py, detach::nothing, |_| {
        let dev = device::open(&choice)?;
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let k = kernels_device(dev.as_ref(), &arch, &x, None, Want::NTK, |_, _| {})?;
                std::hint::black_box(k);
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    })
}

/// Seconds of `Ensemble::new`, `train` (full-batch gradient descent, `steps`
/// steps at `lr`) and `Ensemble::params` on owned inputs (one per entry).
#[pyfunction]
#[pyo3(signature = (spec_json, tensors, x, y, lr, steps, reps, device=None))]
#[allow(clippy::too_many_arguments)]
pub fn bench_train_rust(
    py: Python<'_>,
    spec_json: &str,
    tensors: &Bound<'_, PyDict>,
    x: PyReadonlyArray2<'_, f32>,
    y: PyReadonlyArray2<'_, f32>,
    lr: f64,
    steps: usize,
    reps: usize,
    device: Option<String>,
) -> PyResult<Vec<f64>> {
    let p = crate::nets::params_of(spec_json, tensors)?;
    let choice = device::choice(device.as_deref()).or_py()?;
    let (x, y) = (view(&x, "x")?.to_owned(), view(&y, "y")?.to_owned());
    detach::run(py, detach::nothing, |_| {
        let dev = device::open(&choice)?;
        let cfg = TrainConfig::gd(lr, steps);
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let mut ens = Ensemble::new(dev.as_ref(), &p)?;
                let log = train(&mut ens, &x, &y, &cfg, |_, _| {})?;
                let trained = ens.params()?;
                std::hint::black_box((log, trained));
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    })
}
