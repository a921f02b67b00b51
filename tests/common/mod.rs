//! Shared test helpers: the GPU under test, visible skips, random data,
//! error norms, and `backend_tests!`, which writes a test once for the CPU
//! backend and the GPU.
//!
//! Environment:
//! - `WIDENET_TEST_ADAPTER=NAME`: run the GPU tests on the adapter whose name
//!   contains NAME (default: the best adapter); with `WIDENET_REQUIRE_GPU=1`
//!   an adapter asked for and not found fails the tests.
//! - `WIDENET_REQUIRE_GPU=1`: a missing adapter fails the GPU tests.
//! - `WIDENET_REQUIRE=f16,subgroup8,coop`: a test that needs one of these
//!   features fails instead of skipping when the adapter lacks it.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use widenet::DeviceChoice;
use widenet::gpu::{GpuBackend, GpuOptions};

/// The options tests open adapters with (no autotune: the built-in plan).
pub fn test_options() -> GpuOptions {
    let mut o = GpuOptions::default();
    o.autotune = false;
    o
}

/// The adapter the GPU tests run on: `WIDENET_TEST_ADAPTER`, else the best.
pub fn test_choice() -> DeviceChoice {
    match std::env::var("WIDENET_TEST_ADAPTER") {
        Ok(name) if !name.trim().is_empty() => DeviceChoice::Name(name),
        _ => DeviceChoice::Gpu(None),
    }
}

fn require_gpu() -> bool {
    std::env::var("WIDENET_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Opens the adapter under test (a fresh backend).
pub fn open_test_gpu() -> Option<GpuBackend> {
    match GpuBackend::open(&test_choice(), &test_options()) {
        Ok(g) => g,
        Err(e) => {
            if require_gpu() {
                panic!("WIDENET_REQUIRE_GPU=1 but the adapter under test could not be opened: {e}");
            }
            eprintln!("no GPU backend: {e}");
            None
        }
    }
}

/// The GPU backend all GPU tests of a test binary share, or `None` when this
/// machine has no adapter. With `WIDENET_REQUIRE_GPU=1` a missing adapter fails.
pub fn gpu() -> Option<Arc<GpuBackend>> {
    static GPU: OnceLock<Option<Arc<GpuBackend>>> = OnceLock::new();
    let g = GPU
        .get_or_init(|| {
            let g = open_test_gpu().map(Arc::new);
            if let Some(g) = &g {
                use widenet::Backend;
                eprintln!("GPU tests on: {}", g.describe());
            }
            g
        })
        .clone();
    if g.is_none() && require_gpu() {
        panic!("WIDENET_REQUIRE_GPU=1 but no GPU adapter could be opened");
    }
    if g.is_none() {
        eprintln!("SKIP (no adapter): GPU test");
    }
    g
}

/// Whether the adapter has `feature` for a test; prints a visible SKIP line
/// when it does not, and fails when `WIDENET_REQUIRE` lists the feature.
pub fn has_feature(test: &str, feature: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let required = std::env::var("WIDENET_REQUIRE")
        .is_ok_and(|v| v.split(',').any(|f| f.trim().eq_ignore_ascii_case(feature)));
    if required {
        panic!("{test}: WIDENET_REQUIRE lists {feature}, which the adapter under test lacks");
    }
    eprintln!("SKIP ({feature} missing on the adapter under test): {test}");
    false
}

/// Writes each test once, as a function of the backend, and runs it on the
/// CPU backend (`NAME::cpu`) and on the GPU under test (`NAME::gpu`).
#[macro_export]
macro_rules! backend_tests {
    ($(fn $name:ident($dev:ident: &dyn Backend) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($dev: &dyn widenet::Backend) $body
            #[test]
            fn cpu() {
                run(&widenet::cpu::CpuBackend);
            }
            #[test]
            fn gpu() {
                if let Some(g) = $crate::common::gpu() {
                    run(g.as_ref());
                }
            }
        }
    )*};
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
pub fn poisoned(b: &dyn widenet::Backend, n: usize) -> widenet::backend::Buffer {
    b.upload(&vec![f32::NAN; n]).expect("upload")
}

/// A fresh GPU backend running every product that allows it with one
/// matrix-product configuration, or `None` without an adapter.
pub fn gpu_with_config(c: widenet::gpu::MatmulConfig) -> Option<GpuBackend> {
    gpu()?;
    let g = open_test_gpu()?;
    g.set_matmul_plan(widenet::gpu::MatmulPlan::uniform(c))
        .ok()?;
    Some(g)
}

/// A fresh GPU backend (not shared with other tests) using the given matrix
/// kernel, or `None` when the adapter cannot run it or there is no adapter.
pub fn gpu_with_kernel(k: widenet::gpu::MatmulKernel) -> Option<GpuBackend> {
    gpu()?;
    let g = open_test_gpu()?;
    widenet::testing::set_matmul_kernel(&g, k).ok()?;
    Some(g)
}

/// Relative error of a product on `g` against the f64 product of the same
/// random operands (C poisoned first where beta is 0).
pub fn matmul_error(g: &dyn widenet::Backend, spec: widenet::backend::Matmul, seed: u64) -> f64 {
    let a = randn(seed, spec.a_len());
    let b = randn(seed + 1, spec.b_len());
    let c0 = randn(seed + 2, spec.c_len());
    let mut want = wide(&c0);
    widenet::cpu::ops::matmul(&spec, &wide(&a), &wide(&b), &mut want);
    let ga = g.upload(&a).unwrap();
    let gb = g.upload(&b).unwrap();
    let mut gc = if spec.beta == 0.0 {
        poisoned(g, spec.c_len())
    } else {
        g.upload(&c0).unwrap()
    };
    g.matmul(&spec, &ga, &gb, &mut gc).unwrap();
    rel_err(&g.read(&gc).unwrap(), &want)
}

/// f16 operands: `(error against f64 of the f16-rounded operands, error
/// against f64 of the f32 operands)`, or the product's error.
pub fn matmul_f16_errors(
    g: &GpuBackend,
    spec: widenet::backend::Matmul,
    seed: u64,
) -> widenet::Result<(f64, f64)> {
    use widenet::Backend;
    let rounded =
        |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| half::f16::from_f32(x).to_f64()).collect() };
    let a = randn(seed, spec.a_len());
    let b = randn(seed + 1, spec.b_len());
    let c0 = randn(seed + 2, spec.c_len());
    let mut want = wide(&c0);
    widenet::cpu::ops::matmul(&spec, &rounded(&a), &rounded(&b), &mut want);
    let mut gc = if spec.beta == 0.0 {
        poisoned(g, spec.c_len())
    } else {
        g.upload(&c0).unwrap()
    };
    let (ga, gb) = (g.upload_f16(&a).unwrap(), g.upload_f16(&b).unwrap());
    g.matmul_f16(&spec, &ga, &gb, &mut gc)?;
    let got = g.read(&gc).unwrap();
    let mut exact = wide(&c0);
    widenet::cpu::ops::matmul(&spec, &wide(&a), &wide(&b), &mut exact);
    Ok((rel_err(&got, &want), rel_err(&got, &exact)))
}

/// The fused dense layer `z = alpha * x w + mult_b * bias`, `h = act(z)` on
/// `g` against f64: `(error of z, error of h)`.
pub fn dense_forward_errors(
    g: &dyn widenet::Backend,
    spec: widenet::backend::Matmul,
    act: widenet::Activation,
) -> (f64, f64) {
    use widenet::cpu::ops;
    let (batch, m, n) = (spec.batch, spec.m, spec.n);
    let x = randn(1, spec.a_len());
    let w = randn(2, spec.b_len());
    let bias = randn(3, batch * n);
    let mut z = vec![0.0; spec.c_len()];
    ops::matmul(&spec, &wide(&x), &wide(&w), &mut z);
    ops::bias_add(
        widenet::backend::Batched::new(batch, m, n),
        &mut z,
        &wide(&bias),
        -1.25,
    );
    let mut h = vec![0.0; z.len()];
    ops::activation(act, &z, &mut h);
    let (mut gz, mut gh) = (poisoned(g, z.len()), poisoned(g, z.len()));
    g.dense_forward(
        &spec,
        &g.upload(&x).unwrap(),
        &g.upload(&w).unwrap(),
        &g.upload(&bias).unwrap(),
        -1.25,
        act,
        &mut gz,
        &mut gh,
    )
    .unwrap();
    (
        rel_err(&g.read(&gz).unwrap(), &z),
        rel_err(&g.read(&gh).unwrap(), &h),
    )
}
pub mod reference;
