//! report.json, report.md and the figures of `widenet sharpness`.

use super::figures;
use super::{Run, SharpnessConfig};
use crate::arch::Parameterization;
use crate::backend::Backend;
use crate::error::Result;
use crate::experiments::OutDir;
use crate::experiments::data::Split;
use crate::stats::{mean, median};
use serde_json::{Value, json};

/// One row of the summary: the members of one (parameterization, width, lr).
fn summary(runs: &[&Run]) -> Value {
    let reached: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.reached_step.map(|s| s as f64))
        .collect();
    let late: Vec<f64> = runs.iter().filter_map(|r| r.late_ratio).collect();
    let slopes: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.sharpening.map(|l| l.slope))
        .collect();
    let r0 = runs[0];
    json!({
        "parameterization": r0.parameterization.name(),
        "width": r0.width,
        "lr": r0.lr,
        "threshold": 2.0 / r0.lr,
        "members": runs.len(),
        "reached": reached.len(),
        "median_reached_step": (!reached.is_empty()).then(|| median(reached.clone())),
        "late_ratio": (!late.is_empty()).then(|| mean(&late)),
        "late_ratio_min": late.iter().copied().reduce(f64::min),
        "late_ratio_max": late.iter().copied().reduce(f64::max),
        "sharpening_slope": (!slopes.is_empty()).then(|| mean(&slopes)),
        "initial_sharpness": mean(&runs.iter().filter_map(|r| r.sharpness.first().copied().flatten()).collect::<Vec<_>>()),
        "diverged": runs.iter().filter(|r| r.diverged_at.is_some()).count(),
    })
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Writes report.json, report.md and the figures; returns the report.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    dev: &dyn Backend,
    cfg: &SharpnessConfig,
    d: &Split,
    out: &OutDir,
    runs: &[Run],
    lrs_of: &[Value],
    seconds: f64,
    interrupted: bool,
) -> Result<Value> {
    let widths = cfg.widths_sorted();
    let ps: Vec<Parameterization> = cfg.parameterizations.clone();
    let mut rows = Vec::new();
    for &p in &ps {
        for &w in &widths {
            let rs: Vec<&Run> = runs
                .iter()
                .filter(|r| r.parameterization == p && r.width == w)
                .collect();
            for lr in figures::lrs(&rs) {
                let g: Vec<&Run> = rs.iter().copied().filter(|r| r.lr == lr).collect();
                rows.push(summary(&g));
            }
        }
    }
    let mut init_slopes = Vec::new();
    if !runs.is_empty() {
        let largest = widths
            .iter()
            .rev()
            .copied()
            .find(|&w| runs.iter().any(|r| r.width == w))
            .unwrap_or(widths[0]);
        for &p in &ps {
            if runs.iter().any(|r| r.parameterization == p) {
                figures::trajectories(out, runs, p, largest)?;
                let n_lr = cfg.lrs.as_ref().map_or(cfg.lr_fractions.len(), Vec::len);
                figures::across_widths(out, runs, p, &widths, n_lr / 2)?;
            }
        }
        init_slopes = figures::initial_vs_width(out, runs, &ps, &widths)?;
    }
    let arch = match &cfg.arch {
        Some(a) => format!("{a}"),
        None => format!(
            "depth-{} {} MLP (d_in {}, one output)",
            cfg.depth, cfg.activation, cfg.d_in
        ),
    };
    let report = json!({
        "experiment": "sharpness",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "device": dev.info(),
        "seconds": seconds,
        "interrupted": interrupted,
        "data": {"n_train": d.x_train.rows, "d_in": d.x_train.cols},
        "lrs": lrs_of,
        "initial_sharpness_slope_in_width": ps.iter().zip(init_slopes.iter().chain(std::iter::repeat(&None))).map(|(p, s)| json!({"parameterization": p.name(), "slope": s})).collect::<Vec<_>>(),
        "summary": rows,
        "runs": runs,
    });
    let mut md = String::from("# widenet sharpness: the edge of stability\n\n");
    md.push_str(&format!(
        "Full-batch gradient descent for {} steps on {} training points ({}, {} loss), {} at widths {:?} under {}, {} seed(s) per learning rate; the sharpness (top eigenvalue of the preconditioned loss Hessian, Lanczos on exact Hessian-vector products, at most {} steps) of every member every {} steps. Device: {}. Time: {seconds:.1} s.{}\n\n",
        cfg.steps,
        d.x_train.rows,
        cfg.data_name(),
        match cfg.loss { crate::backend::Loss::Mse => "mse", crate::backend::Loss::Xent => "xent" },
        arch,
        widths,
        ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(" and "),
        cfg.seeds,
        cfg.lanczos_iters,
        cfg.every,
        dev.info().name,
        if interrupted { " **Interrupted: the points below are those finished.**" } else { "" },
    ));
    let full = SharpnessConfig::default();
    md.push_str(&crate::experiments::framing::sweep_noisy(
        "sharpness",
        [cfg.seeds, cfg.widths.len(), cfg.steps],
        [full.seeds, full.widths.len(), full.steps],
    ));
    md.push_str("Reached: members whose sharpness came within the `reach` fraction of 2/eta; the late ratio is the median of sharpness/(2/eta) over the last half of training (mean over seeds, min..max); the sharpening slope is the least-squares slope of sharpness against step until 2/eta is reached.\n\n");
    md.push_str("| param | width | eta | 2/eta | sharpness at init | reached | median step reached | late ratio (min..max) | sharpening slope /step | diverged |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}/{} | {} | {} ({}..{}) | {} | {} |\n",
            r["parameterization"].as_str().unwrap_or(""),
            r["width"],
            num(&r["lr"], 4),
            num(&r["threshold"], 2),
            num(&r["initial_sharpness"], 2),
            r["reached"],
            r["members"],
            num(&r["median_reached_step"], 0),
            num(&r["late_ratio"], 3),
            num(&r["late_ratio_min"], 2),
            num(&r["late_ratio_max"], 2),
            num(&r["sharpening_slope"], 4),
            r["diverged"],
        ));
    }
    md.push('\n');
    // Theory (width-independent sharpness at initialization) for ntk and muP;
    // under the standard parameterization it grows with width.
    let flat = |p: &Parameterization| matches!(p, Parameterization::Ntk | Parameterization::Mup);
    for (p, s) in ps.iter().zip(&init_slopes) {
        if !flat(p) {
            md.push_str(&format!(
                "Sharpness at initialization against width under {}: fitted slope {} (log-log).\n\n",
                p.name(),
                s.map_or("-".into(), |s| format!("{s:.3}"))
            ));
            continue;
        }
        let verdict = s.map_or("-".into(), |s| {
            let fit = crate::experiments::Slope {
                slope: s,
                stderr: f64::NAN,
                intercept: 0.0,
            };
            crate::experiments::framing::verdict(&fit, 0.0)
        });
        md.push_str(&format!(
            "Sharpness at initialization against width under {}: fitted slope {} (log-log) against 0 in theory: {verdict}.\n\n",
            p.name(),
            s.map_or("-".into(), |s| format!("{s:.3}"))
        ));
    }
    if ps.iter().any(flat) {
        md.push_str("Theory: under ntk and muP the sharpness at initialization tends to a width-independent limit (the top eigenvalue of the infinite-width kernel's Gauss-Newton term under ntk; under muP the stable learning rate does not depend on width, by construction). The rest of the Hessian shrinks with width, so a negative slope over small widths is the approach to that limit, from above (compare the `sharpness at init` column across widths).\n\n");
    }
    for p in &ps {
        md.push_str(&format!(
            "![sharpness, {0}](sharpness_{0}.svg) ![loss, {0}](loss_{0}.svg)\n\n![across widths, {0}](widths_{0}.svg)\n\n",
            p.name()
        ));
    }
    md.push_str("![sharpness at initialization against width](initial_vs_width.svg)\n\n");
    md.push_str(&format!(
        "Reproduce: `widenet sharpness --config {}/report.json` (or the flags: --widths {} --steps {} --every {} --seeds {}).\n",
        out.path.display(),
        widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(","),
        cfg.steps,
        cfg.every,
        cfg.seeds
    ));
    out.write_json(&report)?;
    out.write_md(&md)?;
    Ok(report)
}
