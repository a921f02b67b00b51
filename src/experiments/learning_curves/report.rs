//! The report of `learning-curves`: predictions at every `n`, the fits,
//! `report.json`, `report.md` and the figures.

use super::LearningCurvesConfig;
use super::spectrum::theory_exponent;
use crate::backend::Backend;
use crate::eigenlearning::{Modes, Prediction};
use crate::error::{Error, Result};
use crate::experiments::plot::{Series, plot};
use crate::experiments::sphere::ExactSpectrum;
use crate::experiments::task::{Source, Task};
use crate::experiments::{OutDir, floats, seed_slope};
use crate::stats::{fit_loglog_se, mean, std};
use serde_json::{Value, json};

/// Everything the report is made of.
pub(super) struct Inputs<'a> {
    pub cfg: &'a LearningCurvesConfig,
    pub task: &'a Task,
    pub dev: &'a dyn Backend,
    pub points: &'a [Value],
    pub finite: &'a [Value],
    pub pool: &'a Modes,
    pub exact: Option<&'a (Modes, ExactSpectrum)>,
    pub degrees: &'a [usize],
    pub timing: Value,
}

/// The report of an interrupted run: the points finished so far.
pub(super) fn partial(
    out: &OutDir,
    cfg: &LearningCurvesConfig,
    dev: &dyn Backend,
    points: &[Value],
) -> Result<Value> {
    out.write_json(&json!({"experiment": "learning-curves", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "interrupted": true, "points": points}))?;
    out.write_md(&format!(
        "# widenet learning-curves (interrupted)\n\n{} of {} sizes finished; they are in report.json and `points/`. Rerun with `--resume --out {}` to finish.\n",
        points.len(),
        cfg.n.len(),
        out.path.display()
    ))?;
    Err(Error::Interrupted(out.path.display().to_string()))
}

fn predictions(
    modes: &Modes,
    tail: f64,
    ns: &[f64],
    cfg: &LearningCurvesConfig,
) -> Result<Vec<Prediction>> {
    ns.iter()
        .map(|&n| modes.predict_with_tail(n, cfg.ridge, tail, cfg.noise * cfg.noise))
        .collect()
}

fn column(p: &[Prediction], f: impl Fn(&Prediction) -> f64) -> Vec<f64> {
    p.iter().map(f).collect()
}

/// The command line that reproduces the run.
pub fn command(cfg: &LearningCurvesConfig) -> String {
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let data = match &cfg.source {
        Source::Sphere { d, target } => format!("--data sphere --d {d} --target '{target}'"),
        Source::Files { x, y } => format!("--x {x} --y {y}"),
    };
    format!(
        "widenet learning-curves {data} --pool {} --n-test {} --arch '{}' --get {} --n {} --ridge {} --noise {} --draws {} --widths {} --finite-n {} --members {} --finite-test {} --kmax {} --fit-min-n {} --seed {}",
        cfg.pool,
        cfg.n_test,
        cfg.arch,
        match cfg.get {
            crate::predict::Get::Ntk => "ntk",
            crate::predict::Get::Nngp => "nngp",
        },
        list(&cfg.n),
        cfg.ridge,
        cfg.noise,
        cfg.draws,
        list(&cfg.widths),
        list(&cfg.finite_n),
        cfg.members,
        cfg.finite_test,
        cfg.kmax,
        cfg.fit_min_n,
        cfg.seed
    )
}

/// Computes the predictions and fits and writes everything.
pub(super) fn write(out: &OutDir, r: &Inputs<'_>) -> Result<Value> {
    let cfg = r.cfg;
    let ns: Vec<f64> = cfg.n.iter().map(|&n| n as f64).collect();
    let test_draws: Vec<Vec<f64>> = r.points.iter().map(|p| floats(&p["test_mse"])).collect();
    let train_draws: Vec<Vec<f64>> = r.points.iter().map(|p| floats(&p["train_mse"])).collect();
    let test_mean: Vec<f64> = test_draws.iter().map(|v| mean(v)).collect();
    let test_sd: Vec<f64> = test_draws.iter().map(|v| std(v)).collect();
    let train_mean: Vec<f64> = train_draws.iter().map(|v| mean(v)).collect();
    let pool_pred = predictions(r.pool, 0.0, &ns, cfg)?;
    let (main_pred, source) = match r.exact {
        Some((m, s)) => (
            predictions(m, s.tail, &ns, cfg)?,
            "population (exact sphere spectrum)",
        ),
        None => (pool_pred.clone(), "pool"),
    };
    let pred_test = column(&main_pred, |p| p.test_mse);
    // Fits over n >= fit_min_n.
    let keep: Vec<usize> = (0..ns.len())
        .filter(|&i| cfg.n[i] >= cfg.fit_min_n)
        .collect();
    let xs: Vec<f64> = keep.iter().map(|&i| ns[i]).collect();
    let per_draw: Vec<Vec<f64>> = (0..cfg.draws)
        .map(|d| {
            keep.iter()
                .map(|&i| test_draws[i].get(d).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let measured = seed_slope(&xs, &per_draw);
    let sel = |v: &[f64]| -> Vec<f64> { keep.iter().map(|&i| v[i]).collect() };
    let predicted = fit_loglog_se(&xs, &sel(&pred_test));
    let pool_fit = fit_loglog_se(&xs, &sel(&column(&pool_pred, |p| p.test_mse)));
    let (lo, hi) = (
        cfg.fit_min_n as f64,
        cfg.n.iter().copied().max().unwrap_or(1) as f64,
    );
    let theory_modes = r.exact.map(|e| &e.0).unwrap_or(r.pool);
    let theory = theory_exponent(theory_modes, lo, hi);
    let pool_theory = theory_exponent(r.pool, lo, hi);
    // The two spectra compared: pool eigenvalues against the exact ones
    // repeated by multiplicity, over the first M / 8 modes.
    let comparison = r.exact.map(|(m, _)| {
        let (_, lam, _) = super::spectrum::indexed(m);
        let mut rep = Vec::new();
        let mut order: Vec<usize> = (0..m.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| m.eigenvalues[b].total_cmp(&m.eigenvalues[a]));
        for (g, l) in order.iter().zip(&lam) {
            let times = m.multiplicity[*g].min(1e7) as usize;
            rep.extend(std::iter::repeat_n(*l, times));
            if rep.len() > r.pool.eigenvalues.len() {
                break;
            }
        }
        let upto = (r.pool.eigenvalues.len() / 8).max(1).min(rep.len());
        let rel: Vec<f64> = (0..upto)
            .map(|i| (r.pool.eigenvalues[i] - rep[i]).abs() / rep[i])
            .collect();
        let mut sorted = rel.clone();
        sorted.sort_by(f64::total_cmp);
        json!({"modes_compared": upto, "median_relative_difference": sorted[sorted.len() / 2],
               "max_relative_difference": sorted[sorted.len() - 1],
               "trace_pool": r.pool.eigenvalues.iter().sum::<f64>(), "trace_exact": r.exact.map(|e| e.1.trace)})
    });
    let top = 256.min(r.pool.eigenvalues.len());
    let finite: Vec<Value> = cfg
        .widths
        .iter()
        .map(|&w| {
            let pts: Vec<&Value> = r.finite.iter().filter(|p| p["width"] == w).collect();
            json!({
                "width": w,
                "n": pts.iter().map(|p| p["n"].clone()).collect::<Vec<_>>(),
                "test_mse": pts.iter().map(|p| mean(&floats(&p["test_mse"]))).collect::<Vec<_>>(),
                "test_mse_sd": pts.iter().map(|p| std(&floats(&p["test_mse"]))).collect::<Vec<_>>(),
                "per_member": pts.iter().map(|p| p["test_mse"].clone()).collect::<Vec<_>>(),
                "kernel_test_mse": pts.iter().map(|p| p["kernel_test_mse"].clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Learnabilities: theory on a fine grid of n, measured at each n.
    let grid: Vec<f64> = (0..40)
        .map(|i| ns[0] * (ns[ns.len() - 1] / ns[0]).powf(i as f64 / 39.0))
        .collect();
    let learn = learnability(r, &grid, &ns)?;
    let report = json!({
        "experiment": "learning-curves", "version": env!("CARGO_PKG_VERSION"), "config": cfg,
        "device": r.dev.info(), "timing": r.timing, "command": command(cfg),
        "n": cfg.n,
        "measured": {"test_mse": test_mean, "test_mse_sd": test_sd, "train_mse": train_mean,
                     "test_mse_per_draw": test_draws},
        "predicted": {"source": source, "test_mse": pred_test, "train_mse": column(&main_pred, |p| p.train_mse),
                      "kappa": column(&main_pred, |p| p.kappa), "e0": column(&main_pred, |p| p.e0)},
        "predicted_pool": {"test_mse": column(&pool_pred, |p| p.test_mse), "train_mse": column(&pool_pred, |p| p.train_mse),
                           "kappa": column(&pool_pred, |p| p.kappa)},
        "spectrum": {
            "pool_size": r.pool.eigenvalues.len(),
            "eigenvalues": &r.pool.eigenvalues[..top], "target_weights": &r.pool.weights[..top],
            "exact": r.exact.map(|(m, s)| json!({"degree_eigenvalues": m.eigenvalues, "multiplicity": m.multiplicity,
                "degree_weights": m.weights, "trace": s.trace, "tail_beyond_kmax": s.tail})),
            "comparison": comparison,
        },
        "learnability": learn,
        "fit": {
            "n_range": [lo, hi],
            "measured_exponent": measured.map(|s| s.slope), "measured_exponent_se": measured.map(|s| s.stderr),
            "predicted_exponent": predicted.map(|f| f.0), "predicted_exponent_se": predicted.map(|f| f.2),
            "pool_predicted_exponent": pool_fit.map(|f| f.0),
            "theory": theory, "pool_theory": pool_theory,
        },
        "finite": finite,
        "finite_method": "infinite-time limit of each network's linearized model, centred (kernel regression with its empirical kernel at initialization)",
    });
    figures(out, r, &report, &ns, &grid)?;
    out.write_json(&report)?;
    out.write_md(&super::report_md::markdown(&report, r))?;
    Ok(report)
}

fn learnability(r: &Inputs<'_>, grid: &[f64], ns: &[f64]) -> Result<Value> {
    let cfg = r.cfg;
    let curve = |modes: &Modes, tail: f64, g: usize| -> Result<Vec<f64>> {
        grid.iter()
            .map(|&n| {
                let k = modes.kappa(n, cfg.ridge + tail)?;
                Ok(modes.eigenvalues[g] / (modes.eigenvalues[g] + k))
            })
            .collect()
    };
    match r.exact {
        Some((m, s)) => {
            let theory: Vec<Vec<f64>> = r
                .degrees
                .iter()
                .map(|&k| curve(m, s.tail, k))
                .collect::<Result<_>>()?;
            let measured: Vec<Vec<f64>> = r
                .degrees
                .iter()
                .enumerate()
                .map(|(j, _)| {
                    r.points
                        .iter()
                        .map(|p| mean(&floats(&p["learnability"][j])))
                        .collect()
                })
                .collect();
            Ok(
                json!({"by": "degree", "modes": r.degrees, "n_grid": grid, "theory": theory, "n": ns, "measured": measured}),
            )
        }
        None => {
            let modes: Vec<usize> = [0usize, 1, 3, 7, 15, 31, 63, 127]
                .into_iter()
                .filter(|&i| i < r.pool.eigenvalues.len())
                .collect();
            let theory: Vec<Vec<f64>> = modes
                .iter()
                .map(|&i| curve(r.pool, 0.0, i))
                .collect::<Result<_>>()?;
            let one_based: Vec<usize> = modes.iter().map(|i| i + 1).collect();
            Ok(json!({"by": "pool mode", "modes": one_based, "n_grid": grid, "theory": theory}))
        }
    }
}

fn pairs(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter().copied().zip(y.iter().copied()).collect()
}

fn figures(out: &OutDir, r: &Inputs<'_>, rep: &Value, ns: &[f64], grid: &[f64]) -> Result<()> {
    let m = &rep["measured"];
    let (test, sd) = (floats(&m["test_mse"]), floats(&m["test_mse_sd"]));
    let pred = floats(&rep["predicted"]["test_mse"]);
    let fit = &rep["fit"];
    let slope = fit["measured_exponent"].as_f64().unwrap_or(f64::NAN);
    let mut s = vec![
        Series::measured(
            format!(
                "kernel regression, test (mean ± sd of {} draws)",
                r.cfg.draws
            ),
            pairs(ns, &test),
        )
        .with_err(sd)
        .with_color(0),
        Series::theory(
            format!(
                "eigenlearning, {} spectrum",
                if r.exact.is_some() { "exact" } else { "pool" }
            ),
            pairs(ns, &pred),
        )
        .with_color(0),
    ];
    if r.exact.is_some() {
        s.push(
            Series::theory(
                "eigenlearning, pool spectrum",
                pairs(ns, &floats(&rep["predicted_pool"]["test_mse"])),
            )
            .with_color(4),
        );
    }
    if r.cfg.ridge > 0.0 {
        s.push(
            Series::measured(
                "kernel regression, train",
                pairs(ns, &floats(&m["train_mse"])),
            )
            .with_color(1),
        );
        s.push(
            Series::theory(
                "eigenlearning, train",
                pairs(ns, &floats(&rep["predicted"]["train_mse"])),
            )
            .with_color(1),
        );
    }
    // The fitted power law of the measured curve.
    let keep: Vec<usize> = (0..ns.len())
        .filter(|&i| r.cfg.n[i] >= r.cfg.fit_min_n)
        .collect();
    if let (Some(&a), Some(&b)) = (keep.first(), keep.last()) {
        let fx = [ns[a], ns[b]];
        let icpt = crate::stats::fit_loglog(
            &keep.iter().map(|&i| ns[i]).collect::<Vec<_>>(),
            &keep.iter().map(|&i| test[i]).collect::<Vec<_>>(),
        )
        .map_or(f64::NAN, |f| f.1);
        s.push(
            Series::power_fit(
                format!(
                    "fit to the measured mean: slope {slope:.2} ± {:.2}",
                    fit["measured_exponent_se"].as_f64().unwrap_or(f64::NAN)
                ),
                slope,
                icpt,
                fx[0],
                fx[1],
            )
            .with_color(0),
        );
    }
    for (j, f) in rep["finite"].as_array().into_iter().flatten().enumerate() {
        let xs = floats(&f["n"]);
        s.push(
            Series::measured(
                format!("width {} (linearized, {} nets)", f["width"], r.cfg.members),
                pairs(&xs, &floats(&f["test_mse"])),
            )
            .with_err(floats(&f["test_mse_sd"]))
            .with_color(2 + j % 2 + 3 * (j / 2)),
        );
    }
    plot(
        &out.file("learning_curves.svg"),
        "Test MSE against training points: measured and predicted",
        "training points n",
        "test MSE",
        true,
        true,
        &s,
    )?;
    // The spectrum and the target's weights.
    let idx: Vec<f64> = (1..=r.pool.eigenvalues.len()).map(|i| i as f64).collect();
    let mut sp = vec![
        Series::measured(
            format!("pool of {}: eigenvalues of K/M", idx.len()),
            pairs(&idx, &r.pool.eigenvalues),
        )
        .with_color(0),
    ];
    let mut sw = vec![
        Series::measured("pool: target weight v_i^2", pairs(&idx, &r.pool.weights)).with_color(1),
    ];
    if let Some((m, _)) = r.exact {
        let (ix, lam, _) = super::spectrum::indexed(m);
        let per: Vec<f64> = m
            .weights
            .iter()
            .zip(&m.multiplicity)
            .map(|(w, n)| w / n)
            .collect();
        let mut order: Vec<usize> = (0..m.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| m.eigenvalues[b].total_cmp(&m.eigenvalues[a]));
        let cut = |v: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
            v.into_iter()
                .filter(|p| p.0 <= 4.0 * idx.len() as f64)
                .collect()
        };
        sp.push(
            Series::theory("exact: Gegenbauer coefficients", cut(pairs(&ix, &lam))).with_color(0),
        );
        sw.push(
            Series::theory(
                "exact: power per mode of each degree",
                cut(order.iter().zip(&ix).map(|(&g, &i)| (i, per[g])).collect()),
            )
            .with_color(1),
        );
    }
    let th = &fit["theory"];
    if let (Some(a), Some(c)) = (
        th["spectrum_decay"]["exponent"].as_f64(),
        th["spectrum_decay"]["intercept"].as_f64(),
    ) {
        let (lo, hi) = (
            fit["n_range"][0].as_f64().unwrap_or(1.0),
            fit["n_range"][1].as_f64().unwrap_or(1.0),
        );
        sp.push(Series::power_fit(format!("fit: decay i^-{a:.2}"), -a, c, lo, hi).with_color(7));
    }
    plot(
        &out.file("spectrum.svg"),
        "Kernel spectrum: the pool against the exact population spectrum",
        "mode index i",
        "eigenvalue",
        true,
        true,
        &sp,
    )?;
    plot(
        &out.file("target_weights.svg"),
        "The target's weight on each eigenmode",
        "mode index i",
        "target weight v_i^2",
        true,
        true,
        &sw,
    )?;
    // Learnability of each tracked mode against n.
    let l = &rep["learnability"];
    let mut sl = Vec::new();
    let by = l["by"].as_str().unwrap_or("");
    for (j, mode) in l["modes"].as_array().into_iter().flatten().enumerate() {
        let theory = floats(&l["theory"][j]);
        sl.push(Series::theory(format!("{by} {mode}: theory"), pairs(grid, &theory)).with_color(j));
        if l.get("measured").is_some() {
            sl.push(
                Series::measured(
                    format!("{by} {mode}: measured"),
                    pairs(ns, &floats(&l["measured"][j])),
                )
                .with_color(j),
            );
        }
    }
    plot(
        &out.file("learnability.svg"),
        "Learnability of each mode against training points",
        "training points n",
        "learnability L",
        true,
        false,
        &sl,
    )?;
    Ok(())
}
