//! The matrix-product autotune: what it measures, what it caches and when it
//! trusts the cache.

mod common;

use widenet::gpu::tune::{self, Autotune, Shape, Tuned};
use widenet::gpu::{GpuBackend, MatmulConfig, MatmulKernel, MatmulPlan};

fn fresh() -> Option<GpuBackend> {
    common::gpu()?;
    common::open_test_gpu()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("widenet-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Small products of both classes: the choice and the cache are what is
/// tested here, not the rates of the tune's own (larger) shapes.
fn shapes() -> Vec<Shape> {
    vec![
        ("large", 1, 128, 128, 128),
        ("large", 1, 256, 128, 64),
        ("small", 4, 32, 64, 64),
    ]
}

/// Three configurations: enough to exercise the choice, quick to compile.
fn few() -> Vec<MatmulConfig> {
    let mut v = vec![MatmulConfig::default_for(MatmulKernel::Generic)];
    for wg_y in [2, 8] {
        v.push(MatmulConfig {
            kernel: MatmulKernel::Vec4,
            wg_y,
            walk_m: false,
        });
    }
    v
}

#[test]
fn a_tune_is_cached_per_adapter_and_reused() {
    let Some(g) = fresh() else { return };
    let dir = tmp("cache");
    let path = dir.join("autotune.json");
    let configs = few();
    let mut calls = 0;
    let first = tune::autotune_with(
        &g,
        Autotune::Cached,
        Some(path.clone()),
        &configs,
        &shapes(),
        |_, _| calls += 1,
    )
    .unwrap();
    let Tuned::Measured(entry, Some(p)) = first else {
        panic!("expected a measurement written to the cache: {first:?}")
    };
    assert_eq!(p, path);
    // Every configuration timed on every shape, all of them correct, and the
    // chosen one the best of its class by the geometric mean of its rates.
    let n_shapes = shapes().len();
    assert_eq!(calls, n_shapes * configs.len());
    let f32_trials = entry.trials.iter().filter(|t| t.class != "f16").count();
    assert_eq!(f32_trials, n_shapes * configs.len());
    // f16 operands are timed on cooperative-matrix tiles against the register
    // kernels (on the large shapes) only where the adapter has such tiles.
    let f16_trials = entry.trials.len() - f32_trials;
    let tiles = g.coop_shape(true).is_some();
    let large = shapes().iter().filter(|s| s.0 == "large").count();
    assert_eq!(f16_trials, if tiles { 2 * large } else { 0 });
    assert!(
        entry
            .trials
            .iter()
            .all(|t| t.gflops > 0.0 && t.rel_err < 1e-4)
    );
    for class in ["large", "small"] {
        let best = configs
            .iter()
            .max_by(|a, b| {
                let s = |c| tune::class_score(&entry.trials, class, c).unwrap();
                s(a).total_cmp(&s(b))
            })
            .unwrap();
        let chosen = if class == "large" {
            entry.plan.large
        } else {
            entry.plan.small
        };
        assert_eq!(*best, chosen, "{class}");
    }
    assert_eq!(g.matmul_plan(), entry.plan);
    assert_eq!(
        entry.adapter,
        tune::adapter_key(&widenet::Backend::info(&g))
    );

    // A second backend on the same adapter takes the plan from the file without measuring.
    let g2 = fresh().unwrap();
    let again = tune::autotune_with(
        &g2,
        Autotune::Cached,
        Some(path.clone()),
        &configs,
        &shapes(),
        |_, _| panic!("measured although cached"),
    )
    .unwrap();
    let Tuned::Cached(cached) = again else {
        panic!("{again:?}")
    };
    assert_eq!(cached.plan, entry.plan);
    assert_eq!(g2.matmul_plan(), entry.plan);

    // Force measures again.
    let mut calls = 0;
    let forced = tune::autotune_with(
        &g2,
        Autotune::Force,
        Some(path.clone()),
        &configs,
        &shapes(),
        |_, _| calls += 1,
    )
    .unwrap();
    assert!(matches!(forced, Tuned::Measured(_, Some(_))));
    assert_eq!(calls, shapes().len() * configs.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_or_foreign_cache_is_measured_again() {
    let Some(g) = fresh() else { return };
    let configs = few();
    let dir = tmp("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("autotune.json");
    // Not JSON; then JSON whose plan names a setting no kernel has.
    let key = tune::adapter_key(&widenet::Backend::info(&g));
    let bad_plan = serde_json::json!({
        "format": tune::CACHE_FORMAT,
        "entries": {key.clone(): {
            "adapter": key, "trials": [], "timing": "Wall", "seconds": 0.0, "tuned_at": 0,
            "plan": {
                "large": {"kernel": "vec4", "wg_y": 3, "walk_m": false},
                "small": {"kernel": "vec4", "wg_y": 8, "walk_m": false}
            }
        }}
    });
    for text in ["{ not json".to_string(), bad_plan.to_string()] {
        std::fs::write(&path, &text).unwrap();
        let r = tune::autotune_with(
            &g,
            Autotune::Cached,
            Some(path.clone()),
            &configs,
            &shapes(),
            |_, _| {},
        )
        .unwrap();
        assert!(matches!(r, Tuned::Measured(_, Some(_))), "{text}: {r:?}");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let plan: MatmulPlan = serde_json::from_value(
            written["entries"][&tune::adapter_key(&widenet::Backend::info(&g))]["plan"].clone(),
        )
        .unwrap();
        assert_eq!(plan, g.matmul_plan());
        assert!(plan.large.is_valid() && plan.small.is_valid());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_explicit_kernel_is_not_tuned_away() {
    let Some(g) = fresh() else { return };
    widenet::testing::set_matmul_kernel(&g, MatmulKernel::Generic).unwrap();
    let r = tune::autotune_with(&g, Autotune::Force, None, &few(), &shapes(), |_, _| {
        panic!("measured although the kernel was chosen")
    })
    .unwrap();
    assert!(matches!(r, Tuned::Forced));
    assert_eq!(
        g.matmul_plan(),
        MatmulPlan::uniform(MatmulConfig::default_for(MatmulKernel::Generic))
    );
}

#[test]
fn an_unavailable_configuration_is_refused() {
    let Some(g) = fresh() else { return };
    let bad = MatmulConfig {
        kernel: MatmulKernel::Vec4,
        wg_y: 5,
        walk_m: true,
    };
    assert!(g.set_matmul_plan(MatmulPlan::uniform(bad)).is_err());
}
