//! The experiments on their quick settings: reports are produced, and the
//! measured slopes and orderings come out as theory says (tolerances wide
//! enough for seed noise, tight enough to fail on a broken implementation).

mod common;

use widenet::experiments::OutDir;
use widenet::experiments::compare::{CompareConfig, run};
use widenet::experiments::data::teacher;

fn device() -> Box<dyn widenet::Backend> {
    match common::gpu() {
        Some(_) => Box::new(
            widenet::gpu::GpuBackend::open(&common::test_choice(), &common::test_options())
                .unwrap()
                .unwrap(),
        ),
        None => Box::new(widenet::cpu::CpuBackend),
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("widenet-exp-{}-{name}", std::process::id()))
}

#[test]
fn compare_quick_reproduces_the_width_scaling() {
    let cfg = CompareConfig::quick();
    let data = teacher(cfg.d_in, cfg.n_train, cfg.n_test, cfg.seed);
    let out = OutDir::create(Some(&tmp("compare")), "compare").unwrap();
    let dev = device();
    let r = run(dev.as_ref(), &cfg, &data, &out, true, false).unwrap();
    for f in [
        "report.json",
        "report.md",
        "kernel_at_init.svg",
        "deviation_and_movement.svg",
        "loss.svg",
        "test_predictions.svg",
        "ensemble_mean.svg",
    ] {
        assert!(out.file(f).exists(), "{f} missing");
    }
    // The ensemble mean sits on the Monte Carlo floor of its seeds.
    for w in r["widths"].as_array().unwrap() {
        let (e, f) = (
            w["mean_rel_error"].as_f64().unwrap(),
            w["mean_error_floor"].as_f64().unwrap(),
        );
        assert!(
            (0.3..=3.0).contains(&(e / f)),
            "error {e} against floor {f}"
        );
    }
    let md = std::fs::read_to_string(out.file("report.md")).unwrap();
    assert!(md.starts_with("# widenet compare\n\n**What was run.** Data: 32 training"));
    assert!(md.contains("Reduced run: its numbers are noisy"));
    assert!(md.contains("| ntk_movement | ") && md.contains("| -1 | "));
    assert!(md.trim_end().ends_with("```"), "{md}");
    let slope = |k: &str| r["slopes"][k]["slope"].as_f64().unwrap();
    // Kernel fluctuations at initialization and the deviation from the
    // infinite-width dynamics shrink like width^-1/2.
    for k in [
        "ntk_init_distance",
        "nngp_init_distance",
        "member_deviation",
    ] {
        assert!((-0.7..=-0.3).contains(&slope(k)), "{k}: slope {}", slope(k));
    }
    // Kernel movement vanishes at least as fast (lazy training).
    assert!(
        slope("ntk_movement") < -0.4,
        "ntk_movement slope {}",
        slope("ntk_movement")
    );
    // The loss curves of the widest networks follow the infinite-width curve.
    let widths = r["widths"].as_array().unwrap();
    let widest = &widths[widths.len() - 1];
    let inf = r["infinite"]["train_loss_curve"].as_array().unwrap();
    for (a, b) in widest["train_loss_curve"]
        .as_array()
        .unwrap()
        .iter()
        .zip(inf)
    {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!(
            (a - b).abs() < 0.35 * b,
            "train loss {a} against infinite-width {b}"
        );
    }
    // Training reduced the loss by orders of magnitude.
    let first = inf[0].as_f64().unwrap();
    let last = inf[inf.len() - 1].as_f64().unwrap();
    assert!(last < first / 20.0);
    assert_eq!(widest["diverged"], 0);
}

#[test]
fn deep_linear_quick_follows_saxe() {
    use widenet::experiments::deep_linear::{DeepLinearConfig, run};
    let cfg = DeepLinearConfig::quick();
    let out = OutDir::create(Some(&tmp("deep-linear")), "deep-linear").unwrap();
    let dev = device();
    let r = run(dev.as_ref(), &cfg, &out, true).unwrap();
    for f in [
        "report.json",
        "report.md",
        "modes_2_layers.svg",
        "modes_3_layers.svg",
    ] {
        assert!(out.file(f).exists(), "{f} missing");
    }
    for res in r["results"].as_array().unwrap() {
        // The balanced modes follow the exact discrete-time map to f32 precision...
        let disc = res["max_deviation_from_discrete"].as_f64().unwrap();
        assert!(
            disc < 1e-3,
            "layers {}: discrete deviation {disc}",
            res["layers"]
        );
        // ...and the continuous-time solution up to the step size (tau = 25 steps).
        let cont = res["max_deviation_from_continuous"].as_f64().unwrap();
        assert!(
            cont < 0.15,
            "layers {}: continuous deviation {cont}",
            res["layers"]
        );
        assert_eq!(res["learned_in_order"], true);
        // Every mode was learned (a mode that never reached half strength has no time).
        assert!(
            res["half_times"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t.is_u64())
        );
    }
}

#[test]
fn mutransfer_quick_best_rate_transfers_under_mup_only() {
    use widenet::experiments::mutransfer::{MuTransferConfig, best_log2_lr, run};
    // The parabola refinement of the argmin.
    assert_eq!(best_log2_lr(&[0.0, 1.0, 2.0], &[4.0, 1.0, 4.0]), Some(1.0));
    assert_eq!(
        best_log2_lr(
            &[0.0, 1.0, 2.0],
            &[f64::INFINITY, f64::INFINITY, f64::INFINITY]
        ),
        None
    );
    let b = best_log2_lr(&[0.0, 1.0, 2.0], &[2.0, 1.0, 4.0]).unwrap();
    assert!(b > 0.0 && b < 1.0, "{b}");
    let cfg = MuTransferConfig::quick();
    let out = OutDir::create(Some(&tmp("mutransfer")), "mutransfer").unwrap();
    let dev = device();
    let r = run(dev.as_ref(), &cfg, &out, true, false).unwrap();
    // A resumed sweep reads every finished point back and reports the same.
    let again = run(dev.as_ref(), &cfg, &out, true, true).unwrap();
    assert_eq!(again["sweeps"], r["sweeps"]);
    for f in [
        "report.json",
        "report.md",
        "best_lr.svg",
        "lr_sweep_mup_sgd.svg",
        "lr_sweep_standard_adam.svg",
    ] {
        assert!(out.file(f).exists(), "{f} missing");
    }
    // muP's base width is the smallest; a best rate on the grid's edge is flagged.
    assert_eq!(r["base_width"], 32);
    let md = std::fs::read_to_string(out.file("report.md")).unwrap();
    assert!(md.starts_with("# widenet mutransfer\n\n**What was run.**"));
    assert!(md.contains("edge of its grid") || md.contains("edge of their grid"));
    use widenet::experiments::mutransfer::edge;
    assert_eq!(edge(&[1.0, 2.0, 3.0]), Some("low"));
    assert_eq!(edge(&[3.0, 2.0, 1.0, f64::INFINITY]), None);
    assert_eq!(edge(&[3.0, 2.0, 1.0]), Some("high"));
    let shift = |p: &str, o: &str| {
        r["sweeps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["parameterization"] == p && s["optimizer"] == o)
            .unwrap()["shift_per_doubling"]
            .as_f64()
            .unwrap()
    };
    // SGD: under SP the best rate falls with the width (theory: halves per doubling), under muP it stays.
    assert!(
        shift("standard", "sgd") < -0.5,
        "SP SGD shift {}",
        shift("standard", "sgd")
    );
    assert!(
        shift("mup", "sgd").abs() < 0.35,
        "muP SGD shift {}",
        shift("mup", "sgd")
    );
    // Adam: muP moves the best rate less than SP.
    assert!(
        shift("standard", "adam") < -0.5,
        "SP Adam shift {}",
        shift("standard", "adam")
    );
    assert!(shift("mup", "adam") > shift("standard", "adam") + 0.3);
    // Diverged runs are recorded, not dropped: the largest SGD rate diverges under SP at the largest width.
    let sp = r["sweeps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["parameterization"] == "standard" && s["optimizer"] == "sgd")
        .unwrap();
    let last = sp["widths"].as_array().unwrap().last().unwrap();
    let diverged = last["diverged"].as_array().unwrap();
    let grid = last["log2_lr"].as_array().unwrap();
    // One mark per rate of the grid (the configured one, widened where the
    // best rate fell on its edge), the largest rate among the diverged.
    assert_eq!(diverged.len(), grid.len());
    assert!(grid.len() >= cfg.sgd_log2_lrs.len());
    assert_eq!(diverged.last(), Some(&serde_json::json!(true)), "{last}");
}

#[test]
fn drift_quick_separates_lazy_and_rich_training() {
    use widenet::experiments::drift::{DriftConfig, run};
    let cfg = DriftConfig::quick();
    let out = OutDir::create(Some(&tmp("drift")), "drift").unwrap();
    let dev = device();
    let r = run(dev.as_ref(), &cfg, &out, true, false).unwrap();
    // Resumed, every point comes back from the checkpoint: the same report.
    let again = run(dev.as_ref(), &cfg, &out, true, true).unwrap();
    assert_eq!(again["parameterizations"], r["parameterizations"]);
    assert_eq!(again["alpha_sweep"], r["alpha_sweep"]);
    for f in [
        "report.json",
        "report.md",
        "movement_vs_width.svg",
        "movement_vs_alpha.svg",
    ] {
        assert!(out.file(f).exists(), "{f} missing");
    }
    let slope = |p: &str, k: &str| {
        r["parameterizations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["parameterization"] == p)
            .unwrap()["slopes"][k]["slope"]
            .as_f64()
            .unwrap()
    };
    // ntk: lazy, movement shrinks like width^-1/2.
    assert!(
        (-0.9..=-0.3).contains(&slope("ntk", "feature_movement")),
        "ntk features {}",
        slope("ntk", "feature_movement")
    );
    assert!(
        slope("ntk", "ntk_movement") < -0.3,
        "ntk kernel {}",
        slope("ntk", "ntk_movement")
    );
    // muP: features keep moving at every width.
    assert!(
        slope("mup", "feature_movement").abs() < 0.2,
        "muP features {}",
        slope("mup", "feature_movement")
    );
    assert!(slope("mup", "feature_movement") > slope("ntk", "feature_movement") + 0.2);
    let md = std::fs::read_to_string(out.file("report.md")).unwrap();
    assert!(md.starts_with("# widenet drift\n\n**What was run.**"));
    assert!(md.contains("| ntk | ") && md.contains("| ntk movement | ") && md.contains("| -1 | "));
    assert!(md.trim_end().ends_with("```"));
    // Output scale: movement ~ 1/alpha.
    let fa = r["alpha_sweep"]["feature_slope"].as_f64().unwrap();
    assert!(
        (-1.3..=-0.6).contains(&fa),
        "feature movement against alpha {fa}"
    );
}
