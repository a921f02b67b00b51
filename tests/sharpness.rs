//! `widenet sharpness` on its quick settings: the edge of stability as
//! Cohen et al. (2021) describe it, and how width changes it under ntk and
//! muP; the report's shape; resuming from the checkpoints.

mod common;

use widenet::Parameterization;
use widenet::experiments::OutDir;
use widenet::experiments::sharpness::{Run, SharpnessConfig, data, run};

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("widenet-eos-{}-{name}", std::process::id()))
}

fn runs(report: &serde_json::Value) -> Vec<Run> {
    serde_json::from_value(report["runs"].clone()).unwrap()
}

fn pick(rs: &[Run], p: Parameterization, width: usize) -> Vec<&Run> {
    let mut v: Vec<&Run> = rs
        .iter()
        .filter(|r| r.parameterization == p && r.width == width)
        .collect();
    v.sort_by(|a, b| a.lr.total_cmp(&b.lr));
    v
}

#[test]
fn sharpness_quick_rises_to_two_over_eta_and_stays_unless_lazy() {
    let cfg = SharpnessConfig::quick();
    let d = data(&cfg);
    let dir = tmp("quick");
    let out = OutDir::create(Some(&dir), "sharpness").unwrap();
    let dev = widenet::cpu::CpuBackend;
    let report = run(&dev, &cfg, &d, &out, true, false).unwrap();
    let rs = runs(&report);
    assert_eq!(rs.len(), 2 * 2 * 3 * cfg.seeds);
    for r in &rs {
        let what = (r.parameterization, r.width, r.lr);
        assert_eq!(r.diverged_at, None, "{what:?}");
        assert_eq!(r.steps.len(), cfg.steps / cfg.every + 1);
        assert!(r.sharpness.iter().all(|s| s.is_some_and(|s| s > 0.0)));
        // Gradient descent never leaves the edge: the sharpness stays below
        // 2/eta but for the oscillation around it.
        let late = r.late_ratio.unwrap();
        assert!(late < 1.05, "{what:?}: late ratio {late}");
    }
    // The edge of stability: under muP at every width and under ntk at the
    // smallest, a member that starts below 2/eta sharpens until it reaches
    // it (within `reach`, 0.95) and hovers there for the second half of
    // training, neither falling back nor running away.
    for (p, w) in [
        (Parameterization::Mup, 16),
        (Parameterization::Mup, 64),
        (Parameterization::Ntk, 16),
    ] {
        let edge = pick(&rs, p, w).into_iter().find(|r| {
            let below = r.sharpness[0].unwrap() < cfg.reach * 2.0 / r.lr;
            let late = r.late_ratio.unwrap();
            below && r.reached_step.is_some_and(|t| t > 0) && (cfg.reach..1.05).contains(&late)
        });
        let summary: Vec<_> = pick(&rs, p, w)
            .iter()
            .map(|r| (r.lr, r.sharpness[0], r.reached_step, r.late_ratio))
            .collect();
        assert!(
            edge.is_some(),
            "{p:?} width {w}: no member at the edge: {summary:?}"
        );
    }
    // Lazy training: under ntk the widest network sharpens less for every
    // learning rate and never reaches 2/eta.
    let (narrow, wide) = (
        pick(&rs, Parameterization::Ntk, 16),
        pick(&rs, Parameterization::Ntk, 64),
    );
    for (n, w) in narrow.iter().zip(&wide) {
        assert_eq!(w.reached_step, None, "ntk width 64, lr {}", w.lr);
        assert!(
            w.late_ratio.unwrap() < n.late_ratio.unwrap() - 0.1,
            "ntk: {} at width 64 against {} at 16",
            w.late_ratio.unwrap(),
            n.late_ratio.unwrap()
        );
    }
    // The report and figures.
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| mup | 64 |") && md.contains("Reproduce"));
    for f in [
        "sharpness_ntk",
        "loss_mup",
        "widths_mup",
        "initial_vs_width",
    ] {
        assert!(dir.join(format!("{f}.svg")).exists(), "{f}");
    }
    // Resuming recomputes nothing and reproduces the runs.
    let again = run(&dev, &cfg, &d, &out, true, true).unwrap();
    assert_eq!(
        serde_json::to_string(&again["runs"]).unwrap(),
        serde_json::to_string(&report["runs"]).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}
