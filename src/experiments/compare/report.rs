//! The comparison's figures and `report.md`.

use super::CompareConfig;
use super::theory::Theory;
use crate::arch::Arch;
use crate::error::Result;
use crate::experiments::plot::{Series, plot, scaling};
use crate::experiments::{OutDir, Slope, floats, framing};
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
    /// Per width: the ensemble mean's relative error against the
    /// infinite-width mean, and its Monte Carlo floor.
    pub mean_err: Vec<(f64, f64)>,
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
        let num = |w: &serde_json::Value, k: &str| w[k].as_f64().unwrap_or(f64::NAN);
        let mean_err = widths_json
            .iter()
            .map(|w| (num(w, "mean_rel_error"), num(w, "mean_error_floor")))
            .collect();
        Summary {
            xs,
            per_seed,
            curves,
            finals,
            slopes,
            mean_err,
        }
    }
}

/// What theory says of each fitted quantity: its power of the width and why.
pub(super) const THEORY: [(&str, f64, &str); 4] = [
    (
        "ntk_init_distance",
        -0.5,
        "the empirical NTK is an average over the width's independent units, so it fluctuates around its limit like width^-1/2 (central limit theorem)",
    ),
    (
        "member_deviation",
        -0.5,
        "each member follows its own empirical NTK, which differs from the analytic one by width^-1/2 at initialization; the kernel's movement adds only 1/width",
    ),
    (
        "ntk_movement",
        -1.0,
        "perturbation theory: the change of the NTK during training is driven by the dNTK, of order 1/width (Dyer and Gur-Ari 2020; Huang and Yau 2020; Roberts, Yaida and Hanin 2022); Lee et al. (2019) bound it by width^-1/2",
    ),
    (
        "nngp_init_distance",
        -0.5,
        "as the NTK: an average over the width's units, fluctuating like width^-1/2",
    ),
];

/// The five figures.
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
    let pts =
        |m: &[f64]| -> Vec<(f64, f64)> { xs.iter().cloned().zip(m.iter().cloned()).collect() };
    let fig = |i: usize, name: &str, color: usize| -> Vec<Series> {
        let (m, e) = stats(i);
        let p = THEORY[i].1;
        let th = if p == -0.5 { "width^-1/2" } else { "width^-1" };
        scaling(
            name,
            &pts(&m),
            Some(e),
            slopes[i].1,
            (p, &format!("theory for the {name}: {th}")),
            color,
        )
    };
    let mut init = fig(0, "NTK", 0);
    init.extend(fig(3, "NNGP", 1));
    plot(
        &out.file("kernel_at_init.svg"),
        "Empirical kernels at initialization against the infinite-width kernels",
        "width (hidden units)",
        "relative Frobenius distance",
        true,
        true,
        &init,
    )?;
    let mut dm = fig(1, "member deviation from linearized dynamics", 0);
    dm.extend(fig(2, "NTK movement during training", 1));
    plot(
        &out.file("deviation_and_movement.svg"),
        "Finite networks against infinite-width dynamics after training",
        "width (hidden units)",
        "relative distance",
        true,
        true,
        &dm,
    )?;
    let e = curves.first().map_or(0, |_| per_seed[0].len());
    plot(
        &out.file("ensemble_mean.svg"),
        &format!("Ensemble mean of {e} members against the infinite-width mean"),
        "width (hidden units)",
        "relative error of the ensemble mean",
        true,
        true,
        &[
            Series::measured(
                "ensemble-mean error",
                xs.iter()
                    .cloned()
                    .zip(s.mean_err.iter().map(|m| m.0))
                    .collect(),
            )
            .with_color(0),
            Series::theory(
                format!("Monte Carlo floor of {e} seeds: sqrt(member variance / {e})"),
                xs.iter()
                    .cloned()
                    .zip(s.mean_err.iter().map(|m| m.1))
                    .collect(),
            )
            .with_color(0),
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
    s_: &Summary,
    seconds: f64,
    out: &std::path::Path,
) -> String {
    let slopes = &s_.slopes;
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let (lr, t) = (num(&r["lr"]), num(&r["t_final"]));
    let mut s = framing::opening(&framing::Run {
        experiment: "compare",
        data: format!(
            "{} training and {} test points in {} dimensions, one output",
            r["data"]["n_train"], r["data"]["n_test"], r["data"]["d_in"]
        ),
        arch: format!(
            "`{arch}` (ntk parameterization), hidden Dense layers set to each width of {:?}",
            cfg.widths
        ),
        device: r["device"]["name"].as_str().unwrap_or("?").to_string(),
        seconds,
    });
    let full = CompareConfig::default();
    s.push_str(&framing::sweep_noisy(
        "compare",
        [cfg.seeds, cfg.widths.len(), cfg.steps],
        [full.seeds, full.widths.len(), full.steps],
    ));
    s.push_str(&format!(
        "{} seeds per width, trained by full-batch gradient descent on MSE with learning rate {:.4} for {} steps (t = {:.2}), against the infinite-width NTK prediction at the same t.\n\n",
        cfg.seeds, lr, cfg.steps, t
    ));
    s.push_str("| width | NTK distance at init | NNGP distance at init | member deviation | NTK movement | ensemble-mean error | its Monte Carlo floor | spread / predicted variance | final train loss | final test loss |\n|---|---|---|---|---|---|---|---|---|---|\n");
    if let Some(ws) = r["widths"].as_array() {
        for w in ws {
            let last = |k: &str| {
                w[k].as_array()
                    .and_then(|a| a.last())
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN)
            };
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.4e} | {:.4e} |\n",
                w["width"],
                num(&w["ntk_init_distance"]["mean"]),
                num(&w["nngp_init_distance"]["mean"]),
                num(&w["member_deviation"]["mean"]),
                num(&w["ntk_movement"]["mean"]),
                num(&w["mean_rel_error"]),
                num(&w["mean_error_floor"]),
                num(&w["variance_ratio"]),
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
        "| infinite | 0 | 0 | 0 | 0 | 0 | 0 | 1 | {:.4e} | {:.4e} |\n\n",
        last("train_loss_curve"),
        last("test_loss_curve")
    ));
    s.push_str("## Fitted power laws in width against theory\n\nEach slope is fitted to the mean over seeds (log-log least squares over every width); its error is the standard error of the slopes fitted seed by seed. The last column fits only the three widest widths, where the leading power of the width dominates.\n\n| quantity | slope | standard error | theory | against theory | slope over the 3 widest |\n|---|---|---|---|---|---|\n");
    let k = s_.xs.len();
    for ((name, sl), (_, p, _)) in slopes.iter().zip(THEORY) {
        if let Some(sl) = sl {
            let i = slopes.iter().position(|x| x.0 == *name).unwrap_or(0);
            let means: Vec<f64> = (0..k)
                .map(|w| mean(&s_.per_seed[i].iter().map(|v| v[w]).collect::<Vec<_>>()))
                .collect();
            let wide = if k > 3 {
                crate::experiments::fit_loglog(&s_.xs[k - 3..], &means[k - 3..])
                    .map_or("-".into(), |f| format!("{:.3}", f.0))
            } else {
                "-".into()
            };
            s.push_str(&format!(
                "| {name} | {:.3} | {:.3} | {p} | {} | {wide} |\n",
                sl.slope,
                sl.stderr,
                framing::verdict(sl, p)
            ));
        }
    }
    s.push_str("\nWhy these powers:\n\n");
    for (name, p, why) in THEORY {
        s.push_str(&format!("- `{name}` ({p}): {why}.\n"));
    }
    s.push_str("\nWhere a slope differs from its theory, the likely cause is that these widths are not wide enough for the leading power to dominate: terms of higher order in 1/width bend a fit over the whole range (with more than three widths, the last column shows whether the slope approaches the theory as the width grows). ");
    let (errs, floors): (Vec<f64>, Vec<f64>) = s_.mean_err.iter().copied().unzip();
    let ratio = mean(
        &errs
            .iter()
            .zip(&floors)
            .map(|(e, f)| e / f)
            .filter(|r| r.is_finite())
            .collect::<Vec<_>>(),
    );
    s.push_str(&format!(
        "The ensemble-mean error has no power law to fit: with {} members it sits on its Monte Carlo floor, the standard error sqrt(sum of the members' variances / {}) / |infinite-width mean| computed from the measured spread (ratio of error to floor, averaged over widths: {ratio:.2}; about 1 means the mean agrees with the infinite-width mean up to seed noise, and more seeds, not more width, would lower it).\n\n",
        cfg.seeds, cfg.seeds
    ));
    s.push_str("## Plots\n\n![kernel at initialization](kernel_at_init.svg)\n\n![deviation and movement](deviation_and_movement.svg)\n\n![ensemble mean](ensemble_mean.svg)\n\n![loss](loss.svg)\n\n![test predictions](test_predictions.svg)\n\n");
    s.push_str(
        "Every number above is in `report.json`, with the configuration that reproduces it.\n\n",
    );
    s.push_str(&framing::closing("compare", out));
    s
}
