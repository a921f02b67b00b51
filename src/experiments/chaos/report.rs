//! The report of `widenet chaos`: summaries of the measured parts against
//! the theory, report.json, report.md and the figures.

use super::ChaosConfig;
use super::propagation;
use super::trainability::Task;
use crate::activation::Activation;
use crate::backend::Backend;
use crate::chaos::{Expectations, critical_sw2, point};
use crate::error::{Error, Result};
use crate::experiments::{OutDir, floats, seed_slope};
use crate::stats::{mean, std};
use serde_json::{Value, json};

/// Least-squares line `y = a x + b`: `(a, b)`.
fn fit_linear(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let n = x.len() as f64;
    if x.len() < 2 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// A signal-propagation point.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PropPoint {
    /// Weight variance.
    pub sw2: f64,
    /// Bias variance.
    pub sb2: f64,
    /// Ordered, critical or chaotic.
    pub phase: String,
}

/// The points of the propagation sweep: as configured, or ordered, critical
/// and chaotic around the critical `sw2` at `prop_sb2`.
pub fn prop_points(cfg: &ChaosConfig, act: Activation) -> Result<Vec<PropPoint>> {
    let e = Expectations::new(act, cfg.degree, cfg.quadrature);
    let sws = if cfg.prop_sw2.is_empty() {
        let wc = critical_sw2(&e, cfg.prop_sb2, 0.01, 100.0).ok_or_else(|| {
            Error::invalid(format!(
                "{act} has no critical sigma_w^2 in [0.01, 100] at sigma_b^2 = {}; give --prop-sw2",
                cfg.prop_sb2
            ))
        })?;
        vec![0.6 * wc, wc, 1.8 * wc]
    } else {
        cfg.prop_sw2.clone()
    };
    Ok(sws
        .iter()
        .map(|&sw2| {
            let chi = crate::chaos::chi1(&e, sw2, cfg.prop_sb2);
            let phase = match chi {
                Some(c) if (c - 1.0).abs() < 1e-6 => "critical",
                Some(c) if c < 1.0 => "ordered",
                _ => "chaotic",
            };
            PropPoint {
                sw2,
                sb2: cfg.prop_sb2,
                phase: phase.into(),
            }
        })
        .collect())
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(floats).collect())
        .unwrap_or_default()
}

fn opt(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Mean and standard error over `seeds` rows of `m` starting at `first`, per column.
fn mean_err(m: &[Vec<f64>], first: usize, seeds: usize) -> (Vec<f64>, Vec<f64>) {
    let cols = m[first].len();
    (0..cols)
        .map(|l| {
            let v: Vec<f64> = (first..first + seeds).map(|s| m[s][l]).collect();
            let se = if seeds > 1 {
                std(&v) / (seeds as f64).sqrt()
            } else {
                f64::NAN
            };
            (mean(&v), se)
        })
        .unzip()
}

/// Writes report.json, report.md and the figures; returns the report.
#[allow(clippy::too_many_arguments)]
pub fn write(
    out: &OutDir,
    cfg: &ChaosConfig,
    act: Activation,
    e: &Expectations,
    dev: &dyn Backend,
    task: &Task,
    points: &[PropPoint],
    theory: &Value,
    widths: &[Value],
    grads: &Value,
    train: &[Value],
    seconds: f64,
) -> Result<Value> {
    let grid = &theory["grid"];
    let depth = cfg.prop_depth;
    let layers: Vec<f64> = (1..=depth).map(|l| l as f64).collect();
    let th: Vec<(Vec<f64>, Vec<f64>)> = points
        .iter()
        .map(|p| propagation::theory(act, p.sw2, p.sb2, cfg.q0, cfg.c0, depth))
        .collect();
    let pinfo: Vec<_> = points.iter().map(|p| point(e, p.sw2, p.sb2)).collect();

    // Signal propagation: per width, the mean over seeds and the gap to theory.
    let mut prop = Vec::new();
    let mut gap_q_seed = vec![vec![0.0; widths.len()]; cfg.seeds];
    let mut gap_c_seed = vec![vec![0.0; widths.len()]; cfg.seeds];
    for (wi, wv) in widths.iter().enumerate() {
        let (q, c) = (rows(&wv["q"]), rows(&wv["c"]));
        let mut per_point = Vec::new();
        for (pi, (tq, tc)) in th.iter().enumerate() {
            let first = pi * cfg.seeds;
            let (qm, qe) = mean_err(&q, first, cfg.seeds);
            let (cm, ce) = mean_err(&c, first, cfg.seeds);
            for s in 0..cfg.seeds {
                let rq = (0..depth)
                    .map(|l| (q[first + s][l] / tq[l] - 1.0).powi(2))
                    .sum::<f64>();
                let rc = (0..depth)
                    .map(|l| (c[first + s][l] - tc[l]).powi(2))
                    .sum::<f64>();
                gap_q_seed[s][wi] += (rq / depth as f64).sqrt() / points.len() as f64;
                gap_c_seed[s][wi] += (rc / depth as f64).sqrt() / points.len() as f64;
            }
            per_point.push(json!({"q_mean": qm, "q_err": qe, "c_mean": cm, "c_err": ce}));
        }
        prop.push(json!({"width": wv["width"], "points": per_point}));
    }
    let wx: Vec<f64> = cfg.widths.iter().map(|&w| w as f64).collect();
    let gap_q: Vec<f64> = (0..wx.len())
        .map(|i| mean(&gap_q_seed.iter().map(|s| s[i]).collect::<Vec<_>>()))
        .collect();
    let gap_c: Vec<f64> = (0..wx.len())
        .map(|i| mean(&gap_c_seed.iter().map(|s| s[i]).collect::<Vec<_>>()))
        .collect();
    let se = |v: &[Vec<f64>], i: usize| {
        let x: Vec<f64> = v.iter().map(|s| s[i]).collect();
        if x.len() > 1 {
            std(&x) / (x.len() as f64).sqrt()
        } else {
            f64::NAN
        }
    };
    let slope_q = (wx.len() > 1)
        .then(|| seed_slope(&wx, &gap_q_seed))
        .flatten();
    let slope_c = (wx.len() > 1)
        .then(|| seed_slope(&wx, &gap_c_seed))
        .flatten();

    // Gradients: geometric mean over seeds of |dL/dz_l|^2 / |dL/dz_L|^2.
    let norms = rows(&grads["norms"]);
    let mut grad_points = Vec::new();
    for (pi, p) in pinfo.iter().enumerate() {
        let first = pi * cfg.seeds;
        let logs: Vec<Vec<f64>> = (first..first + cfg.seeds)
            .map(|m| norms[m].iter().map(|v| v.ln()).collect())
            .collect();
        let (lm, le) = mean_err(&logs, 0, cfg.seeds);
        let ratio: Vec<f64> = lm.iter().map(|v| v.exp()).collect();
        // ln ratio_l = (L - l) ln chi: the fitted slope against l is -ln chi.
        let xs: Vec<f64> = (0..depth).map(|l| l as f64).collect();
        let fit = fit_linear(&xs, &lm);
        let at_fp = grads["at_fixed_point"][pi].as_bool().unwrap_or(false);
        let chi = if at_fp { p.chi1 } else { None };
        grad_points.push(json!({
            "ratio": ratio.iter().map(|v| opt(*v)).collect::<Vec<_>>(),
            "log_err": le.iter().map(|v| opt(*v)).collect::<Vec<_>>(),
            "chi1_theory": chi,
            "chi1_fit": fit.map(|(s, _)| (-s).exp()),
        }));
    }

    // Trainability.
    let tsw2 = cfg.train_sw2.values();
    let six: Vec<Option<f64>> = tsw2
        .iter()
        .map(|&w| point(e, w, cfg.train_sb2).xi_c.map(|x| 6.0 * x))
        .collect();
    let s = cfg.train_seeds;
    let mut acc_rows = Vec::new();
    let mut crosses = Vec::new();
    let (mut beyond, mut beyond_ok, mut within, mut within_ok) = (0, 0, 0, 0);
    for (di, tv) in train.iter().enumerate() {
        let d = cfg.depths[di] as f64;
        let a = tv["accuracy"].as_array().cloned().unwrap_or_default();
        let mut row = Vec::new();
        for (j, six_j) in six.iter().enumerate() {
            let vals: Vec<f64> = (0..s)
                .filter_map(|k| a.get(j * s + k).and_then(Value::as_f64))
                .collect();
            if vals.len() < s {
                crosses.push((di, j));
            }
            // A diverged network counts as untrainable (chance accuracy).
            let chance = 1.0 / task.classes as f64;
            let cell = if vals.is_empty() {
                None
            } else {
                Some((vals.iter().sum::<f64>() + chance * (s - vals.len()) as f64) / s as f64)
            };
            let ok = cell.is_some_and(|v| v >= cfg.threshold);
            if six_j.is_none_or(|x| d <= x) {
                within += 1;
                within_ok += usize::from(ok);
            } else {
                beyond += 1;
                beyond_ok += usize::from(ok);
            }
            row.push(cell);
        }
        acc_rows.push(row);
    }
    let share = |a: usize, b: usize| {
        if b > 0 {
            json!(a as f64 / b as f64)
        } else {
            Value::Null
        }
    };

    let report = json!({
        "experiment": "chaos",
        "config": cfg,
        "activation": act.to_string(),
        "device": dev.describe(),
        "seconds": seconds,
        "theory_seconds": {"grid": theory["grid_s"], "critical": theory["critical_s"]},
        "grid": grid,
        "critical": grid["critical"],
        "data": {"n": task.x.rows, "d": task.x.cols, "classes": task.classes},
        "propagation": {
            "points": points.iter().zip(&pinfo).map(|(p, i)| json!({"sw2": p.sw2, "sb2": p.sb2, "phase": p.phase, "theory": i})).collect::<Vec<_>>(),
            "depth": depth,
            "theory": th.iter().map(|(q, c)| json!({"q": q, "c": c})).collect::<Vec<_>>(),
            "widths": prop,
            "gap_q": gap_q, "gap_q_err": (0..wx.len()).map(|i| opt(se(&gap_q_seed, i))).collect::<Vec<_>>(),
            "gap_c": gap_c, "gap_c_err": (0..wx.len()).map(|i| opt(se(&gap_c_seed, i))).collect::<Vec<_>>(),
            "gap_q_slope": slope_q, "gap_c_slope": slope_c,
        },
        "gradients": {"width": grads["width"], "points": grad_points},
        "trainability": {
            "sw2": tsw2, "sb2": cfg.train_sb2, "depths": cfg.depths,
            "accuracy": acc_rows, "six_xi_c": six, "threshold": cfg.threshold,
            "diverged_cells": crosses,
            "beyond_6xi_c": {"cells": beyond, "trainable": beyond_ok, "share_trainable": share(beyond_ok, beyond)},
            "within_6xi_c": {"cells": within, "trainable": within_ok, "share_trainable": share(within_ok, within)},
        },
    });
    out.write_json(&report)?;
    super::figs::all(out, cfg, act, &report, &th, &layers, &crosses)?;
    out.write_md(&super::figs::markdown(out, cfg, act, &report))?;
    Ok(report)
}
