//! The kernel's predictions for `random-labels`, and the report.

use super::{RandomLabelsConfig, corrupted, grid};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::experiments::plot::{Series, plot};
use crate::experiments::task::{Source, Task};
use crate::experiments::{OutDir, floats};
use crate::matrix::Matrix;
use crate::predict::{PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use crate::stats::{mean, std};
use serde_json::{Value, json};

/// The infinite-width kernels of the training and test points, and the
/// eigendecomposition of the train NTK.
pub(super) struct Theory {
    kernels: PredictKernels,
    /// Eigenvalues of `Theta / n`.
    lambda: Vec<f64>,
    /// Eigenvectors of the train NTK (columns).
    u: faer::Mat<f64>,
    /// `u_i^T K_nngp u_i`: the initial outputs' variance on each mode.
    init_var: Vec<f64>,
    /// `n / lambda_max(Theta)`.
    pub default_lr: f64,
}

impl Theory {
    pub(super) fn new(cfg: &RandomLabelsConfig, task: &Task) -> Result<Self> {
        let kernels =
            PredictKernels::compute(&cfg.arch, &task.pool_x.to_f64(), &task.test_x.to_f64())?;
        let n = task.pool();
        let dd = kernels
            .dd_ntk
            .as_ref()
            .ok_or_else(|| Error::invalid("internal: the train NTK is missing"))?;
        let eig = dd
            .to_faer()
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|e| Error::Numerical(format!("eigendecomposition of the train NTK: {e:?}")))?;
        let u = eig.U().to_owned();
        let lambda: Vec<f64> = (0..n).map(|i| eig.S()[i] / n as f64).collect();
        let nngp = kernels.dd_nngp.to_faer();
        let proj = u.transpose() * &nngp * &u;
        let init_var: Vec<f64> = (0..n).map(|i| proj[(i, i)]).collect();
        let lmax = lambda.iter().cloned().fold(0.0, f64::max);
        if lmax.is_nan() || lmax <= 0.0 {
            return Err(Error::Numerical("the train NTK vanished".into()));
        }
        Ok(Theory {
            kernels,
            lambda,
            u,
            init_var,
            default_lr: 1.0 / lmax,
        })
    }

    /// Expected training loss `1/(2n) |residual|^2` at each step.
    pub(super) fn train_curve(&self, y: &[f64], lr: f64, steps: &[usize]) -> Vec<f64> {
        let n = y.len();
        let coef: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|r| self.u[(r, i)] * y[r]).sum::<f64>())
            .collect();
        steps
            .iter()
            .map(|&t| {
                (0..n)
                    .map(|i| {
                        (1.0 - lr * self.lambda[i]).powi(2 * t as i32)
                            * (coef[i] * coef[i] + self.init_var[i])
                    })
                    .sum::<f64>()
                    / (2.0 * n as f64)
            })
            .collect()
    }

    /// Fraction of the labels' power on the top tenth of the modes.
    pub(super) fn top_power(&self, y: &[f64]) -> f64 {
        let n = y.len();
        let top = (n / 10).max(1);
        let total: f64 = y.iter().map(|v| v * v).sum();
        // Eigenvalues ascend: the top modes are the last columns.
        let on_top: f64 = (n - top..n)
            .map(|i| (0..n).map(|r| self.u[(r, i)] * y[r]).sum::<f64>().powi(2))
            .sum();
        on_top / total.max(1e-300)
    }

    /// Expected test MSE of the infinitely wide ensemble after `steps` steps.
    pub(super) fn test_mse(&self, y: &[f64], lr: f64, steps: usize, test_y: &[f64]) -> Result<f64> {
        let ym = Matrix::from_vec(y.len(), 1, y.to_vec())?;
        let p = gradient_descent_mse_ensemble(
            &self.kernels,
            &ym,
            &PredictSpec {
                get: crate::predict::Get::Ntk,
                t: Some(steps as f64),
                learning_rate: lr,
                diag_reg: 0.0,
            },
        )?;
        let cov = p
            .cov
            .ok_or_else(|| Error::invalid("internal: no covariance"))?;
        Ok(mean(
            &test_y
                .iter()
                .enumerate()
                .map(|(i, t)| (p.mean.at(i, 0) - t).powi(2) + cov.at(i, i))
                .collect::<Vec<_>>(),
        ))
    }
}

/// The report of an interrupted run.
pub(super) fn partial(
    out: &OutDir,
    cfg: &RandomLabelsConfig,
    dev: &dyn Backend,
    points: &[Value],
) -> Result<Value> {
    out.write_json(&json!({"experiment": "random-labels", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "interrupted": true, "points": points}))?;
    out.write_md(&format!(
        "# widenet random-labels (interrupted)\n\n{} of {} points finished; rerun with `--resume --out {}` to finish.\n",
        points.len(),
        cfg.corrupt.len() * cfg.widths.len(),
        out.path.display()
    ))?;
    Err(Error::Interrupted(out.path.display().to_string()))
}

/// The command line that reproduces the run.
pub fn command(cfg: &RandomLabelsConfig) -> String {
    let join = |v: Vec<String>| v.join(",");
    let data = match &cfg.source {
        Source::Sphere { d, target } => format!("--data sphere --d {d} --target '{target}'"),
        Source::Files { x, y } => format!("--x {x} --y {y}"),
    };
    format!(
        "widenet random-labels {data} --n-train {} --n-test {} --arch '{}' --corrupt {} --widths {} --members {} --max-steps {}{} --fit-tol {} --curve-points {} --seed {}",
        cfg.n_train,
        cfg.n_test,
        cfg.arch,
        join(cfg.corrupt.iter().map(|c| c.to_string()).collect()),
        join(cfg.widths.iter().map(|c| c.to_string()).collect()),
        cfg.members,
        cfg.max_steps,
        cfg.lr.map_or(String::new(), |l| format!(" --lr {l}")),
        cfg.fit_tol,
        cfg.curve_points,
        cfg.seed
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    out: &OutDir,
    cfg: &RandomLabelsConfig,
    task: &Task,
    dev: &dyn Backend,
    th: &Theory,
    lr: f64,
    points: &[Value],
    started: std::time::Instant,
) -> Result<Value> {
    let steps = grid(cfg.max_steps, cfg.curve_points);
    let widest = cfg.widths.iter().copied().max().unwrap_or(0);
    let label_power = task.label_power();
    let mut levels = Vec::new();
    for (li, &c) in cfg.corrupt.iter().enumerate() {
        let y = corrupted(&task.pool_y, c, cfg.seed);
        let predicted = th.train_curve(&y, lr, &steps);
        let threshold = cfg.fit_tol * 0.5 * mean(&y.iter().map(|v| v * v).collect::<Vec<_>>());
        let predicted_fit = steps
            .iter()
            .zip(&predicted)
            .find(|(_, l)| **l <= threshold)
            .map(|(s, _)| *s);
        let pts: Vec<&Value> = points
            .iter()
            .filter(|p| p["level"] == li)
            .map(|p| &p["point"])
            .collect();
        let by_width: Vec<Value> = pts
            .iter()
            .map(|p| json!({"width": p["width"], "steps": p["steps"], "loss": p["loss"]}))
            .collect();
        let fit_by_width: Vec<Value> = pts
            .iter()
            .map(|p| json!({"width": p["width"], "steps": p["steps_to_fit"]}))
            .collect();
        let test_by_width: Vec<Value> = pts
            .iter()
            .map(|p| {
                let t = floats(&p["test_mse"]);
                json!({"width": p["width"], "mean": mean(&t), "sd": std(&t)})
            })
            .collect();
        let wide = pts.iter().find(|p| p["width"] == widest).copied();
        let stopped = wide
            .and_then(|p| p["stopped_at"].as_u64())
            .unwrap_or(cfg.max_steps as u64) as usize;
        let test_pred = th.test_mse(&y, lr, stopped, &task.test_y)?;
        levels.push(json!({
            "corrupt": c,
            "train_loss": {"steps": steps, "finite": wide.map(|p| p["loss"].clone()), "finite_steps": wide.map(|p| p["steps"].clone()),
                           "predicted": predicted, "by_width": by_width},
            "steps_to_fit": wide.map(|p| p["steps_to_fit"].clone()),
            "steps_to_fit_by_width": fit_by_width,
            "steps_to_fit_predicted": predicted_fit,
            "test_mse": wide.map(|p| mean(&floats(&p["test_mse"]))),
            "test_mse_by_width": test_by_width,
            "test_mse_predicted": test_pred,
            "test_mse_predicted_at_step": stopped,
            "label_power_on_top_tenth_of_modes": th.top_power(&y),
        }));
    }
    let report = json!({
        "experiment": "random-labels", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(),
        "command": command(cfg), "seconds": started.elapsed().as_secs_f64(),
        "lr": lr, "label_power": label_power, "widest": widest,
        "corrupt": cfg.corrupt, "levels": levels,
    });
    figures(out, cfg, &report)?;
    out.write_json(&report)?;
    out.write_md(&markdown(cfg, task, dev, &report))?;
    Ok(report)
}

fn figures(out: &OutDir, cfg: &RandomLabelsConfig, rep: &Value) -> Result<()> {
    let levels = rep["levels"].as_array().cloned().unwrap_or_default();
    let mut s = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let c = l["corrupt"].as_f64().unwrap_or(f64::NAN);
        let tl = &l["train_loss"];
        let fin: Vec<(f64, f64)> = floats(&tl["finite_steps"])
            .into_iter()
            .zip(floats(&tl["finite"]))
            .filter(|p| p.0 > 0.0)
            .collect();
        let pred: Vec<(f64, f64)> = floats(&tl["steps"])
            .into_iter()
            .zip(floats(&tl["predicted"]))
            .filter(|p| p.0 > 0.0)
            .collect();
        s.push(Series::line(format!("corrupt {c}: width {}", rep["widest"]), fin).with_color(i));
        s.push(Series::theory(format!("corrupt {c}: kernel"), pred).with_color(i));
    }
    plot(
        &out.file("train_loss.svg"),
        "Training loss against steps, by label corruption (Zhang et al. fig. 1a)",
        "gradient-descent steps",
        "training loss (MSE / 2)",
        true,
        true,
        &s,
    )?;
    let cs: Vec<f64> = levels
        .iter()
        .map(|l| l["corrupt"].as_f64().unwrap_or(f64::NAN))
        .collect();
    let mut f = Vec::new();
    let mut t = Vec::new();
    for (j, &w) in cfg.widths.iter().enumerate() {
        let mut fitted = Vec::new();
        let mut never = Vec::new();
        let (mut tm, mut tsd) = (Vec::new(), Vec::new());
        for (l, &c) in levels.iter().zip(&cs) {
            let fw = l["steps_to_fit_by_width"]
                .as_array()
                .and_then(|a| a.iter().find(|p| p["width"] == w).cloned());
            match fw.and_then(|p| p["steps"].as_f64()) {
                Some(v) => fitted.push((c, v)),
                None => never.push(c),
            }
            let tw = l["test_mse_by_width"]
                .as_array()
                .and_then(|a| a.iter().find(|p| p["width"] == w).cloned());
            if let Some(p) = tw {
                tm.push((c, p["mean"].as_f64().unwrap_or(f64::NAN)));
                tsd.push(p["sd"].as_f64().unwrap_or(f64::NAN));
            }
        }
        let name = if never.is_empty() {
            format!("width {w}")
        } else {
            format!("width {w} (x: not fitted in {} steps)", cfg.max_steps)
        };
        f.push(
            Series::measured(name, fitted)
                .with_missing(never)
                .with_color(j),
        );
        t.push(
            Series::measured(format!("width {w} (mean ± sd of {} nets)", cfg.members), tm)
                .with_err(tsd)
                .with_color(j),
        );
    }
    let pf: Vec<(f64, f64)> = levels
        .iter()
        .zip(&cs)
        .filter_map(|(l, &c)| l["steps_to_fit_predicted"].as_f64().map(|v| (c, v)))
        .collect();
    f.push(Series::theory("kernel prediction", pf).with_color(cfg.widths.len()));
    plot(
        &out.file("steps_to_fit.svg"),
        "Steps to fit the training labels (Zhang et al. fig. 1b)",
        "fraction of labels corrupted",
        "steps to fit",
        false,
        true,
        &f,
    )?;
    let pt: Vec<(f64, f64)> = levels
        .iter()
        .zip(&cs)
        .map(|(l, &c)| (c, l["test_mse_predicted"].as_f64().unwrap_or(f64::NAN)))
        .collect();
    t.push(Series::theory("kernel prediction (infinite width)", pt).with_color(cfg.widths.len()));
    let lp = rep["label_power"].as_f64().unwrap_or(f64::NAN);
    t.push(
        Series::line(
            "label mean square (predicting 0)",
            vec![(0.0, lp), (1.0, lp)],
        )
        .with_color(7),
    );
    plot(
        &out.file("test_error.svg"),
        "Test MSE against label corruption (Zhang et al. fig. 1c)",
        "fraction of labels corrupted",
        "test MSE",
        false,
        false,
        &t,
    )?;
    Ok(())
}

/// The widest networks against the kernel: how many times its predicted
/// steps they took to fit, how close their test error came, and why the
/// first can differ while the second agrees.
fn against_kernel(rep: &Value) -> String {
    let levels = rep["levels"].as_array().cloned().unwrap_or_default();
    let ratios = |a: &str, b: &str| -> Vec<f64> {
        levels
            .iter()
            .filter_map(|l| Some(l[a].as_f64()? / l[b].as_f64()?))
            .filter(|r| r.is_finite())
            .collect()
    };
    let (steps, mse) = (
        ratios("steps_to_fit", "steps_to_fit_predicted"),
        ratios("test_mse", "test_mse_predicted"),
    );
    let range = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if format!("{lo:.2}") == format!("{hi:.2}") {
            format!("{lo:.2}")
        } else {
            format!("{lo:.2} to {hi:.2}")
        }
    };
    // Whether the narrowest width fitted later than the widest at every level.
    let narrower_later = levels.iter().all(|l| {
        let by = l["steps_to_fit_by_width"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let width = |b: &&Value| b["width"].as_u64().unwrap_or(0);
        let steps = |b: Option<&Value>| b.and_then(|b| b["steps"].as_f64());
        let (narrow, wide) = (by.iter().min_by_key(width), by.iter().max_by_key(width));
        by.len() > 1 && matches!((steps(narrow), steps(wide)), (Some(a), Some(b)) if a > b)
    });
    if steps.is_empty() || mse.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "\nAt width {}, against the kernel: steps to fit {} times the predicted, test MSE {} times the predicted.",
        rep["widest"],
        range(&steps),
        range(&mse)
    );
    let agrees = mse.iter().all(|&r| (r - 1.0).abs() <= 0.1);
    if steps.iter().all(|&r| r > 1.2) && agrees {
        let later = if narrower_later {
            " (the narrower networks later still)"
        } else {
            ""
        };
        md.push_str(&format!(
            " The networks fit later than the kernel says{} while their test error agrees with it within 10%: \
             the last modes fitted are those of the kernel's smallest eigenvalues, and a finite network's NTK is an average \
             over its neurons that, like a sample covariance, has its smallest eigenvalues below the infinite-width \
             kernel's, the more so the narrower the network, while its large eigenvalues, which carry most of the label \
             power and so most of the test error, agree. `widenet empirical-kernel` against `widenet kernel` on the \
             training points shows it.",
            later
        ));
    }
    md + "\n"
}

fn markdown(cfg: &RandomLabelsConfig, task: &Task, dev: &dyn Backend, rep: &Value) -> String {
    let data = match &cfg.source {
        Source::Sphere { d, target } => format!(
            "{} points uniform on the sphere in R^{d}, target `{target}`",
            task.pool()
        ),
        Source::Files { x, y } => format!("{} rows of `{x}` and `{y}`", task.pool()),
    };
    let mut md = String::from("# widenet random-labels\n\n");
    md.push_str(&format!(
        "Data: {data}; {} test points. Networks: `{}` at widths {:?}, {} per width, full-batch gradient descent at learning rate {:.4} for at most {} steps; fitted when every member's training loss is below {} of mean(y^2)/2. Device: {}. Time: {:.1} s.\n\n",
        task.test_y.len(), cfg.arch, cfg.widths, cfg.members, rep["lr"].as_f64().unwrap_or(f64::NAN), cfg.max_steps, cfg.fit_tol,
        dev.info().name, rep["seconds"].as_f64().unwrap_or(f64::NAN)
    ));
    let full = RandomLabelsConfig::default();
    md.push_str(&crate::experiments::framing::sizes_noisy(
        "random-labels",
        &[
            ("members per width", cfg.members, full.members),
            ("corruption levels", cfg.corrupt.len(), full.corrupt.len()),
        ],
    ));
    md.push_str(&format!("Labels' mean square {:.4} (the test MSE of predicting 0). The kernel's predictions are those of the infinitely wide ensemble (NTK dynamics from a random initialization). Steps to fit are read on the curves' grid of {} log-spaced steps: the first grid step at which the loss is below the threshold (for the networks, every member's).\n\n", rep["label_power"].as_f64().unwrap_or(f64::NAN), cfg.curve_points));
    md.push_str(&format!("| corrupt | steps to fit (width {}) | predicted | test MSE (width {}) | predicted | label power on the top tenth of modes |\n|---|---|---|---|---|---|\n", rep["widest"], rep["widest"]));
    for l in rep["levels"].as_array().into_iter().flatten() {
        let o = |v: &Value| {
            v.as_f64()
                .map_or("not fitted".to_string(), |x| format!("{x}"))
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.4} | {:.3} |\n",
            l["corrupt"],
            o(&l["steps_to_fit"]),
            o(&l["steps_to_fit_predicted"]),
            l["test_mse"].as_f64().unwrap_or(f64::NAN),
            l["test_mse_predicted"].as_f64().unwrap_or(f64::NAN),
            l["label_power_on_top_tenth_of_modes"]
                .as_f64()
                .unwrap_or(f64::NAN)
        ));
    }
    md.push_str(&against_kernel(rep));
    md.push_str("\n![training loss](train_loss.png)\n\n![steps to fit](steps_to_fit.png)\n\n![test error](test_error.png)\n\n");
    md.push_str(&format!(
        "Reproduce:\n\n```sh\n{}\n```\n",
        rep["command"].as_str().unwrap_or("")
    ));
    md
}
