//! The cooperative-matrix product (`shaders/matmul_coop.wgsl`) against f64
//! products on the CPU, on adapters that report cooperative matrices (tensor
//! cores, simdgroup matrices). Elsewhere the tests check that the kernel is
//! not offered; `src/gpu/context.rs` checks on every machine that it compiles
//! to SPIR-V with real cooperative-matrix instructions.

mod common;

use common::{dense_forward_errors, gpu, gpu_with_config, matmul_error, matmul_f16_errors};
use widenet::Activation;
use widenet::backend::{Backend, Matmul};
use widenet::gpu::{COOP_MULTIPLE, GpuBackend, MatmulConfig, MatmulKernel, MatmulPlan, tune};

/// Relative Frobenius error allowed against f64 (the bar for every
/// tuned variant).
const TOL: f64 = 1e-4;

/// Shapes the kernel takes (multiples of 16), with a last block of 2T rows or
/// columns that is cut in half (48, 80), batches, broadcast operands and beta.
fn shapes() -> Vec<Matmul> {
    vec![
        Matmul::new(16, 16, 16),
        Matmul::new(48, 80, 32),
        Matmul::new(256, 128, 64),
        Matmul::new(64, 48, 96).batch(3).broadcast(true, false),
        Matmul::new(32, 64, 16).batch(2).broadcast(false, true),
        Matmul::new(80, 32, 48).batch(2).scaled(0.5, -1.5),
        // Transposed operands reach the kernel through the transposing copy.
        Matmul::new(64, 32, 48).trans(true, true).scaled(2.0, 0.0),
    ]
}

fn coop_backends(test: &str, g0: &GpuBackend) -> Vec<GpuBackend> {
    let backends = [false, true]
        .into_iter()
        .filter_map(|walk_m| {
            gpu_with_config(MatmulConfig {
                kernel: MatmulKernel::Coop,
                wg_y: 8,
                walk_m,
            })
        })
        .inspect(|g| assert!(g.coop_shape(false).is_some(), "{:?}", g0.info()))
        .collect::<Vec<_>>();
    common::has_feature(test, "coop-f32", !backends.is_empty());
    backends
}

#[test]
fn coop_kernel_offered_exactly_where_the_adapter_reports_tiles() {
    let Some(g) = gpu() else { return };
    let info = g.info();
    let ctx = &g;
    let has_f32 = info.cooperative_matrix.iter().any(|c| !c.f16);
    let enabled = std::env::var("WIDENET_COOPERATIVE_MATRIX").map_or(true, |v| v != "0");
    assert_eq!(
        ctx.matmul_kernels().contains(&MatmulKernel::Coop),
        has_f32 && enabled,
        "{info:?}"
    );
    for c in &info.cooperative_matrix {
        assert!(matches!(c.side, 8 | 16), "{c:?}");
        assert!(COOP_MULTIPLE.is_multiple_of(c.side as usize));
    }
    if info.cooperative_matrix.is_empty() {
        eprintln!(
            "{}: no cooperative matrices; the kernel is not offered",
            info.name
        );
        assert!(ctx.coop_shape(false).is_none() && ctx.coop_shape(true).is_none());
    }
}

#[test]
fn coop_f32_products_match_f64() {
    let Some(g0) = gpu() else { return };
    let mut seed = 700;
    for g in &coop_backends("coop_f32_products_match_f64", &g0) {
        for spec in shapes() {
            seed += 3;
            let err = matmul_error(g, spec, seed);
            assert!(err < TOL, "{spec:?}: relative error {err:e}");
        }
    }
}

#[test]
fn coop_fused_dense_forward_matches_f64() {
    let Some(g0) = gpu() else { return };
    for g in coop_backends("coop_fused_dense_forward_matches_f64", &g0) {
        let spec = Matmul::new(48, 32, 64).batch(2).scaled(0.7, 0.0);
        let (ez, eh) = dense_forward_errors(&g, spec, Activation::Gelu);
        assert!(ez < TOL && eh < TOL, "{ez:e} {eh:e}");
    }
}

/// A fresh backend whose f16 products run on cooperative-matrix tiles, where
/// the adapter has f16 tiles.
fn f16_coop_backend(test: &str) -> Option<GpuBackend> {
    let g = gpu_with_config(MatmulConfig::default_for(MatmulKernel::Vec4))?;
    let ctx = &g;
    if !common::has_feature(test, "coop-f16", ctx.coop_shape(true).is_some()) {
        return None;
    }
    ctx.set_matmul_plan(MatmulPlan {
        f16_coop: true,
        ..ctx.matmul_plan()
    })
    .unwrap();
    Some(g)
}

#[test]
fn coop_f16_products_match_f64_of_rounded_operands() {
    let Some(g) = f16_coop_backend("coop_f16_products_match_f64_of_rounded_operands") else {
        return;
    };
    let mut seed = 900;
    for spec in shapes().into_iter().filter(|s| !s.trans_a && !s.trans_b) {
        seed += 3;
        let (err, _) = matmul_f16_errors(&g, spec, seed).unwrap();
        assert!(err < TOL, "{spec:?}: relative error {err:e}");
    }
}

#[test]
fn the_tune_times_f16_tiles_against_the_register_kernels() {
    let Some(g) = f16_coop_backend("the_tune_times_f16_tiles_against_the_register_kernels") else {
        return;
    };
    let configs = [
        MatmulConfig::default_for(MatmulKernel::Generic),
        MatmulConfig::default_for(MatmulKernel::Vec4),
    ];
    let entry = tune::tune_among(&g, &configs, &tune::SHAPES, 1, |_, _| {}).unwrap();
    let f16: Vec<_> = entry.trials.iter().filter(|t| t.class == "f16").collect();
    // The large shapes, each on the tiles and on the large class's choice.
    let large = tune::SHAPES.iter().filter(|s| s.0 == "large").count();
    assert_eq!(f16.len(), 2 * large, "{f16:?}");
    assert!(
        f16.iter().all(|t| t.rel_err <= 1e-4 && t.gflops > 0.0),
        "{f16:?}"
    );
    let coop = MatmulConfig::default_for(MatmulKernel::Coop);
    let tiles = tune::class_score(&entry.trials, "f16", &coop).unwrap();
    let register = tune::class_score(&entry.trials, "f16", &entry.plan.large).unwrap();
    assert_eq!(entry.plan.f16_coop, tiles > register, "{tiles} {register}");
    assert_eq!(g.matmul_plan(), entry.plan);
}
