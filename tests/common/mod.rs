//! Shared test helpers: the GPU under test, random data, error norms.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use widenet::gpu::{DeviceChoice, GpuBackend};

/// The GPU backend all GPU tests of a test binary share, or `None` when this
/// machine has no adapter. With `WIDENET_REQUIRE_GPU=1` a missing adapter fails.
pub fn gpu() -> Option<Arc<GpuBackend>> {
    static GPU: OnceLock<Option<Arc<GpuBackend>>> = OnceLock::new();
    let g = GPU
        .get_or_init(|| match GpuBackend::open(&DeviceChoice::Gpu(None)) {
            Ok(g) => g.map(Arc::new),
            Err(e) => {
                eprintln!("no GPU backend: {e}");
                None
            }
        })
        .clone();
    if g.is_none() && std::env::var("WIDENET_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("WIDENET_REQUIRE_GPU=1 but no GPU adapter could be opened");
    }
    if g.is_none() {
        eprintln!("skipping GPU test: no adapter");
    }
    g
}

/// Deterministic normals.
pub fn randn(seed: u64, n: usize) -> Vec<f32> {
    widenet::rng::Rng::new(seed).normals_f32(n)
}

/// `||got - want|| / ||want||` (absolute norm when want is zero).
pub fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let mut num = 0.0;
    let mut den = 0.0;
    for (&g, &w) in got.iter().zip(want) {
        let g = g as f64;
        if !g.is_finite() {
            return f64::INFINITY;
        }
        num += (g - w) * (g - w);
        den += w * w;
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// f32 to f64.
pub fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A buffer of `n` NaN, so that any element a kernel forgets to write shows.
pub fn poisoned(b: &dyn widenet::Backend, n: usize) -> widenet::Buffer {
    b.upload(&vec![f32::NAN; n]).expect("upload")
}

/// A fresh GPU backend running every product that allows it with one
/// matrix-product configuration, or `None` without an adapter.
pub fn gpu_with_config(c: widenet::gpu::MatmulConfig) -> Option<GpuBackend> {
    gpu()?;
    let g = GpuBackend::open(&DeviceChoice::Gpu(None)).ok().flatten()?;
    g.context()
        .set_matmul_plan(widenet::gpu::MatmulPlan::uniform(c))
        .ok()?;
    Some(g)
}

/// A fresh GPU backend (not shared with other tests) using the given matrix
/// kernel, or `None` when the adapter cannot run it or there is no adapter.
pub fn gpu_with_kernel(k: widenet::gpu::MatmulKernel) -> Option<GpuBackend> {
    gpu()?;
    let g = GpuBackend::open(&DeviceChoice::Gpu(None)).ok().flatten()?;
    g.context().set_matmul_kernel(k).ok()?;
    Some(g)
}
