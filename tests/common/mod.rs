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

/// Relative error of a product on `g` against the f64 product of the same
/// random operands (C poisoned first where beta is 0).
pub fn matmul_error(g: &dyn widenet::Backend, spec: widenet::Matmul, seed: u64) -> f64 {
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
    spec: widenet::Matmul,
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
    spec: widenet::Matmul,
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
        widenet::Batched::new(batch, m, n),
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
