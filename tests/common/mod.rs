//! Shared test helpers: the GPU under test, visible skips, random data,
//! error norms, and `backend_tests!`, which writes a test once for the CPU
//! backend and the GPU.
//!
//! Environment:
//! - `WIDENET_TEST_ADAPTER=NAME`: run the GPU tests on the adapter whose name
//!   contains NAME (default: the best adapter).
//! - `WIDENET_REQUIRE_GPU=1`: a missing adapter fails the GPU tests, and so
//!   does an adapter asked for with `WIDENET_TEST_ADAPTER` and not found
//!   (the message lists the adapters there are).
//! - `WIDENET_REQUIRE=f16,subgroup8,coop-f32,coop-f16,timestamp`: a test
//!   that needs one of these features fails instead of skipping when the
//!   adapter lacks it (see [`has_feature`]).
//!
//! The adapter each test binary ran on and every skip are written past the
//! test harness's capture, so that a CI log shows which tests ran where:
//! `gpu_kernels: GPU tests on: SwiftShader Device (Subzero) (...)`.
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
    match asked_adapter() {
        Some(name) => DeviceChoice::Name(name),
        None => DeviceChoice::Gpu(None),
    }
}

/// The adapter named by `WIDENET_TEST_ADAPTER`, if any.
fn asked_adapter() -> Option<String> {
    std::env::var("WIDENET_TEST_ADAPTER")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

fn require_gpu() -> bool {
    std::env::var("WIDENET_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Writes a line to the test process's standard error past the test
/// harness's capture (which takes only the print macros), so that it shows
/// in CI's log whether or not the test passes.
pub fn say(line: &str) {
    use std::io::Write;
    // One write, so that the harness's lines on stdout cannot cut it.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// This test binary's name (`gpu_kernels`, without cargo's hash).
pub fn binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem,
    }
}

/// The adapters wgpu finds, one per line, for error messages.
pub fn adapter_list() -> String {
    let v: Vec<String> = widenet::gpu::enumerate()
        .into_iter()
        .map(|(_, i)| format!("  {}: {} ({}, {})", i.index, i.name, i.backend, i.driver))
        .collect();
    if v.is_empty() {
        "  (none)".into()
    } else {
        v.join("\n")
    }
}

/// Opens the adapter under test (a fresh backend).
pub fn open_test_gpu() -> Option<GpuBackend> {
    match GpuBackend::open(&test_choice(), &test_options()) {
        Ok(g) => g,
        Err(e) => {
            if require_gpu() {
                let what = match asked_adapter() {
                    Some(n) => format!("the adapter asked for (WIDENET_TEST_ADAPTER={n})"),
                    None => "the adapter under test".to_string(),
                };
                panic!(
                    "WIDENET_REQUIRE_GPU=1 but {what} could not be opened: {e}\nadapters found:\n{}",
                    adapter_list()
                );
            }
            None
        }
    }
}

/// The GPU backend all GPU tests of a test binary share, or `None` when this
/// machine has no adapter (or not the one asked for). With
/// `WIDENET_REQUIRE_GPU=1` a missing adapter fails. The first call says, past
/// the capture, which adapter this binary's GPU tests run on, or that they skip.
pub fn gpu() -> Option<Arc<GpuBackend>> {
    static GPU: OnceLock<Option<Arc<GpuBackend>>> = OnceLock::new();
    let g = GPU
        .get_or_init(|| {
            let g = open_test_gpu().map(Arc::new);
            match &g {
                Some(g) => {
                    use widenet::Backend;
                    let i = g.info();
                    say(&format!(
                        "{}: GPU tests on: {} (vendor {}, subgroups {}-{})",
                        binary(),
                        g.describe(),
                        i.vendor,
                        i.subgroup_sizes.0,
                        i.subgroup_sizes.1
                    ));
                }
                None => say(&format!(
                    "{}: SKIP every GPU test: no adapter{}",
                    binary(),
                    asked_adapter()
                        .map(|n| format!(" named like {n}"))
                        .unwrap_or_default()
                )),
            }
            g
        })
        .clone();
    if g.is_none() && require_gpu() {
        panic!("WIDENET_REQUIRE_GPU=1 but no GPU adapter could be opened");
    }
    g
}

/// Whether `feature` is listed in `WIDENET_REQUIRE` (comma-separated, any case).
pub fn required(list: Option<&str>, feature: &str) -> bool {
    list.is_some_and(|v| v.split(',').any(|f| f.trim().eq_ignore_ascii_case(feature)))
}

/// Whether the adapter has `feature` for a test; says SKIP past the capture
/// when it does not, and fails when `WIDENET_REQUIRE` lists the feature.
/// Features: `f16` (SHADER_F16), `subgroup8` (subgroups of exactly 8
/// lanes), `coop-f32` and `coop-f16` (cooperative-matrix tiles with f32 or
/// f16 operands), `timestamp` (timestamp queries).
pub fn has_feature(test: &str, feature: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if required(std::env::var("WIDENET_REQUIRE").ok().as_deref(), feature) {
        panic!("{test}: WIDENET_REQUIRE lists {feature}, which the adapter under test lacks");
    }
    say(&format!(
        "{}: SKIP ({feature} missing on the adapter under test): {test}",
        binary()
    ));
    false
}

/// A file of the repository, found from the working directory when it has
/// the file (cargo runs tests in the package root; a test binary carried to
/// another machine runs in a copy of the repository), else from where the
/// tests were built.
pub fn repo_file(rel: &str) -> std::path::PathBuf {
    let here = std::path::Path::new(rel);
    if here.exists() {
        here.to_path_buf()
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// Writes each test once, as a function of the backend, and runs it on the
/// CPU backend (`NAME::cpu`) and on the GPU under test (`NAME::gpu`).
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$meta:meta])* fn $name:ident($dev:ident: &dyn Backend) $body:block)*) => {$(
        $(#[$meta])*
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
/// Four steps of SGD, momentum and Adam on `g` against the f64 twin, for 5
/// members of `per` values (one frozen, one with learning rate 0, which must
/// not move): relative error below 1e-5.
pub fn check_updates(g: &dyn widenet::Backend, per: usize) {
    use widenet::backend::{Rule, Update};
    use widenet::cpu::ops;
    let members = 5usize;
    let n = members * per;
    let lr = [0.1f32, 0.0, 0.3, 1e-3, 0.2];
    let alive = [1.0f32, 1.0, 0.0, 1.0, 1.0];
    for rule in [
        Rule::Sgd,
        Rule::Momentum { mu: 0.9 },
        Rule::Adam {
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
        },
    ] {
        let mut p64 = wide(&randn(1, n));
        let mut m64 = vec![0.0; n];
        let mut v64 = vec![0.0; n];
        let mut p = g.upload(&randn(1, n)).unwrap();
        let mut m = g.zeros(n).unwrap();
        let mut v = g.zeros(n).unwrap();
        let (glr, galive) = (g.upload(&lr).unwrap(), g.upload(&alive).unwrap());
        for step in 1..=4u32 {
            let grad = randn(10 + step as u64, n);
            let up = Update {
                rule,
                scale: 0.5,
                step,
            };
            let (mo, vo) = match rule {
                Rule::Sgd => (None, None),
                Rule::Momentum { .. } => (Some(&mut m64[..]), None),
                Rule::Adam { .. } => (Some(&mut m64[..]), Some(&mut v64[..])),
            };
            ops::update(
                &up,
                per,
                &wide(&grad),
                &wide(&lr),
                &wide(&alive),
                &mut p64,
                mo,
                vo,
            );
            let gg = g.upload(&grad).unwrap();
            let (mo, vo) = match rule {
                Rule::Sgd => (None, None),
                Rule::Momentum { .. } => (Some(&mut m), None),
                Rule::Adam { .. } => (Some(&mut m), Some(&mut v)),
            };
            g.update(&up, per, &gg, &glr, &galive, &mut p, mo, vo)
                .unwrap();
        }
        let got = g.read(&p).unwrap();
        assert!(rel_err(&got, &p64) < 1e-5, "{rule:?}");
        // Frozen member 2 and zero-lr member 1 did not move.
        let init = randn(1, n);
        assert_eq!(
            &got[2 * per..3 * per],
            &init[2 * per..3 * per],
            "{rule:?}: frozen member moved"
        );
        assert_eq!(
            &got[per..2 * per],
            &init[per..2 * per],
            "{rule:?}: zero-lr member moved"
        );
    }
}

pub mod reference;
