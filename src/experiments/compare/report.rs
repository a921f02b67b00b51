//! The comparison's figures and `report.md`.

use super::CompareConfig;
use super::theory::Theory;
use crate::arch::Arch;
use crate::error::Result;
use crate::experiments::plot::{Series, plot};
use crate::experiments::{OutDir, Slope, floats};
use crate::stats::{mean, std};

/// The per-width points gathered into series.
pub(super) struct Summary {
    /// The widths done.
    pub xs: Vec<f64>,
    /// `[quantity][seed][width]`: NTK at init, member deviation, NTK
    /// movement, NNGP at init.
    pub per_seed: [Vec<Vec<f64>>; 4],
    /// (width, train curve, test curve).
    pub curves: Vec<(usize, Vec<f64>, Vec<f64>)>,
    /// (width, test means, test variances) at the end.
    pub finals: Vec<(usize, Vec<f64>, Vec<f64>)>,
    /// The fitted slopes.
    pub slopes: [(&'static str, Option<Slope>); 4],
}

impl Summary {
    /// Gathers the points (fresh or resumed) of `e` seeds each.
    pub fn of(widths_json: &[serde_json::Value], e: usize) -> Summary {
        let done: Vec<usize> = widths_json
            .iter()
            .filter_map(|w| w["width"].as_u64().map(|v| v as usize))
            .collect();
        let mut per_seed: [Vec<Vec<f64>>; 4] = Default::default();
        for (series, key) in per_seed.iter_mut().zip([
            "ntk_init_distance",
            "member_deviation",
            "ntk_movement",
            "nngp_init_distance",
        ]) {
            *series = (0..e)
                .map(|m| {
                    widths_json
                        .iter()
                        .map(|w| {
                            floats(&w[key]["per_seed"])
                                .get(m)
                                .copied()
                                .unwrap_or(f64::NAN)
                        })
                        .collect()
                })
                .collect();
        }
        let curves = widths_json
            .iter()
            .zip(&done)
            .map(|(w, &wd)| {
                (
                    wd,
                    floats(&w["train_loss_curve"]),
                    floats(&w["test_loss_curve"]),
                )
            })
            .collect();
        let finals = widths_json
            .iter()
            .zip(&done)
            .map(|(w, &wd)| {
                let var = floats(&w["test_std"]).iter().map(|s| s * s).collect();
                (wd, floats(&w["test_mean"]), var)
            })
            .collect();
        let xs: Vec<f64> = done.iter().map(|&w| w as f64).collect();
        let slopes = super::slopes_of(&xs, &per_seed);
        Summary {
            xs,
            per_seed,
            curves,
            finals,
            slopes,
        }
    }
}

fn theory_line(xs: &[f64], ys: &[f64], power: f64) -> Vec<(f64, f64)> {
    // c * x^power through the geometric mean of the measurements.
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(_, y)| **y > 0.0)
        .map(|(x, y)| (*x, *y))
        .collect();
    if pts.is_empty() {
        return Vec::new();
    }
    let lc = pts
        .iter()
        .map(|(x, y)| y.ln() - power * x.ln())
        .sum::<f64>()
        / pts.len() as f64;
    [xs[0], xs[xs.len() - 1]]
        .iter()
        .map(|&x| (x, (lc + power * x.ln()).exp()))
        .collect()
}

/// The four figures.
pub(super) fn write_plots(out: &OutDir, s: &Summary, times: &[f64], th: &Theory) -> Result<()> {
    let (xs, per_seed, slopes) = (&s.xs, &s.per_seed, &s.slopes);
    let (curves, finals) = (&s.curves, &s.finals);
    let (inf_train, inf_test, mu, var) = (&th.inf_train, &th.inf_test, &th.mu_inf, &th.var_inf);
    let stats = |i: usize| -> (Vec<f64>, Vec<f64>) {
        let s = &per_seed[i];
        let m: Vec<f64> = (0..xs.len())
            .map(|w| mean(&s.iter().map(|v| v[w]).collect::<Vec<_>>()))
            .collect();
        let e: Vec<f64> = (0..xs.len())
            .map(|w| std(&s.iter().map(|v| v[w]).collect::<Vec<_>>()) / (s.len() as f64).sqrt())
            .collect();
        (m, e)
    };
    let label = |name: &str, i: usize| match slopes[i].1 {
        Some(s) => format!("{name} (slope {:.2} ± {:.2})", s.slope, s.stderr),
        None => name.to_string(),
    };
    let (k_m, k_e) = stats(0);
    let (g_m, g_e) = stats(3);
    plot(
        &out.file("kernel_at_init.svg"),
        "Empirical kernels at initialization against the infinite-width kernels",
        "width",
        "relative Frobenius distance",
        true,
        true,
        &[
            Series::measured(
                label("NTK", 0),
                xs.iter().cloned().zip(k_m.iter().cloned()).collect(),
            )
            .with_err(k_e),
            Series::measured(
                label("NNGP", 3),
                xs.iter().cloned().zip(g_m.iter().cloned()).collect(),
            )
            .with_err(g_e),
            Series::theory("theory: width^-1/2", theory_line(xs, &k_m, -0.5)),
        ],
    )?;
    let (d_m, d_e) = stats(1);
    let (m_m, m_e) = stats(2);
    plot(
        &out.file("deviation_and_movement.svg"),
        "Finite networks against infinite-width dynamics after training",
        "width",
        "relative distance",
        true,
        true,
        &[
            Series::measured(
                label("member deviation from linearized dynamics", 1),
                xs.iter().cloned().zip(d_m.iter().cloned()).collect(),
            )
            .with_err(d_e),
            Series::measured(
                label("NTK movement during training", 2),
                xs.iter().cloned().zip(m_m.iter().cloned()).collect(),
            )
            .with_err(m_e),
            Series::theory("theory: width^-1/2", theory_line(xs, &d_m, -0.5)),
            Series::theory("theory: width^-1/2 ", theory_line(xs, &m_m, -0.5)),
        ],
    )?;
    let mut series = vec![
        Series::theory(
            "infinite width, train",
            times
                .iter()
                .cloned()
                .zip(inf_train.iter().cloned())
                .collect(),
        ),
        Series::theory(
            "infinite width, test",
            times
                .iter()
                .cloned()
                .zip(inf_test.iter().cloned())
                .collect(),
        ),
    ];
    for (w, tr, te) in curves
        .iter()
        .filter(|c| c.0 == curves[0].0 || c.0 == curves[curves.len() - 1].0)
    {
        series.push(Series::measured(
            format!("width {w}, train"),
            times.iter().cloned().zip(tr.iter().cloned()).collect(),
        ));
        series.push(Series::measured(
            format!("width {w}, test"),
            times.iter().cloned().zip(te.iter().cloned()).collect(),
        ));
    }
    plot(
        &out.file("loss.svg"),
        "Loss over training (mean over members) against the infinite-width expectation",
        "time t = lr * steps",
        "loss",
        false,
        true,
        &series,
    )?;
    let mut order: Vec<usize> = (0..mu.len()).collect();
    order.sort_by(|&a, &b| mu[a].total_cmp(&mu[b]));
    let idx = |f: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        order
            .iter()
            .enumerate()
            .map(|(r, &i)| (r as f64, f(i)))
            .collect()
    };
    let mut series = vec![
        Series::line("infinite-width mean", idx(&|i| mu[i])),
        Series::theory(
            "mean ± 2 sd (infinite width)",
            idx(&|i| mu[i] + 2.0 * var[i].sqrt()),
        )
        .with_color(1),
        Series::theory("", idx(&|i| mu[i] - 2.0 * var[i].sqrt())).with_color(1),
    ];
    for (w, m, v) in finals
        .iter()
        .filter(|f| f.0 == finals[0].0 || f.0 == finals[finals.len() - 1].0)
    {
        let bars: Vec<f64> = order.iter().map(|&i| 2.0 * v[i].sqrt()).collect();
        series.push(
            Series::measured(format!("ensemble mean ± 2 sd, width {w}"), idx(&|i| m[i]))
                .with_err(bars),
        );
    }
    plot(
        &out.file("test_predictions.svg"),
        "Test predictions at the end of training",
        "test point (sorted by infinite-width mean)",
        "f(x)",
        false,
        false,
        &series,
    )
}

/// `report.md`.
pub(super) fn markdown(
    cfg: &CompareConfig,
    arch: &Arch,
    r: &serde_json::Value,
    slopes: &[(&str, Option<Slope>); 4],
    lr: f64,
    t: f64,
) -> String {
    let mut s = String::new();
    s.push_str("# widenet compare\n\n");
    s.push_str(&format!(
        "Networks `{arch}` (hidden Dense layers set to each width), {} seeds per width, trained by full-batch gradient descent on MSE with learning rate {:.4} for {} steps (t = {:.2}), against the infinite-width NTK prediction at the same t. Device: {}.\n\n",
        cfg.seeds, lr, cfg.steps, t, r["device"]["name"].as_str().unwrap_or("?")
    ));
    s.push_str("| width | NTK distance at init | NNGP distance at init | member deviation | NTK movement | ensemble-mean error | spread / predicted variance | final train loss | final test loss |\n|---|---|---|---|---|---|---|---|---|\n");
    if let Some(ws) = r["widths"].as_array() {
        for w in ws {
            let last = |k: &str| {
                w[k].as_array()
                    .and_then(|a| a.last())
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN)
            };
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.4e} | {:.4e} |\n",
                w["width"],
                w["ntk_init_distance"]["mean"].as_f64().unwrap_or(f64::NAN),
                w["nngp_init_distance"]["mean"].as_f64().unwrap_or(f64::NAN),
                w["member_deviation"]["mean"].as_f64().unwrap_or(f64::NAN),
                w["ntk_movement"]["mean"].as_f64().unwrap_or(f64::NAN),
                w["mean_rel_error"].as_f64().unwrap_or(f64::NAN),
                w["variance_ratio"].as_f64().unwrap_or(f64::NAN),
                last("train_loss_curve"),
                last("test_loss_curve"),
            ));
        }
    }
    let inf = &r["infinite"];
    let last = |k: &str| {
        inf[k]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    s.push_str(&format!(
        "| infinite | 0 | 0 | 0 | 0 | 0 | 1 | {:.4e} | {:.4e} |\n\n",
        last("train_loss_curve"),
        last("test_loss_curve")
    ));
    s.push_str("## Fitted power laws in width (theory: -1/2)\n\n| quantity | slope | standard error over seeds |\n|---|---|---|\n");
    for (name, sl) in slopes {
        if let Some(sl) = sl {
            s.push_str(&format!(
                "| {name} | {:.3} | {:.3} |\n",
                sl.slope, sl.stderr
            ));
        }
    }
    s.push_str("\n## Plots\n\n![kernel at initialization](kernel_at_init.svg)\n\n![deviation and movement](deviation_and_movement.svg)\n\n![loss](loss.svg)\n\n![test predictions](test_predictions.svg)\n\n");
    s.push_str("Every number above is in `report.json`, with the configuration that reproduces it (`widenet compare --config` accepts that `config` object as TOML).\n");
    s
}
