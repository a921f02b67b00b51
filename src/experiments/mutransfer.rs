//! `widenet mutransfer`: learning-rate sweeps across widths under the
//! standard parameterization and muP, with SGD and Adam, in the style of
//! Tensor Programs V, figure 1 (Yang et al. 2021). Under muP the best
//! learning rate stays put as the width grows; under SP it drifts.
//! Every (width, learning rate, seed) is one member of a batched ensemble.

use super::data::teacher;
use super::plot::{Series, plot, scaling};
use super::{OutDir, progress};
use crate::activation::Activation;
use crate::arch::Parameterization;
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::net::MlpSpec;
use crate::net::ensemble::Ensemble;
use crate::net::params::Params;
use crate::net::train::{Schedule, TrainConfig, train};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet mutransfer`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MuTransferConfig {
    /// Widths of the sweep.
    pub widths: Vec<usize>,
    /// log2 of the SGD learning rates swept.
    pub sgd_log2_lrs: Vec<f64>,
    /// log2 of the Adam learning rates swept.
    pub adam_log2_lrs: Vec<f64>,
    /// Seeds per point.
    pub seeds: usize,
    /// The architecture (hidden Dense layers set to each width); `None`
    /// builds it from the shorthand (`depth`, `activation`).
    pub arch: Option<crate::arch::Arch>,
    /// Hidden layers.
    pub depth: usize,
    /// The nonlinearity (see `Activation::parse`).
    pub activation: String,
    /// Input dimension of the synthetic task.
    pub d_in: usize,
    /// Training points.
    pub n_train: usize,
    /// Training steps.
    pub steps: usize,
    /// Seed of the data and initializations.
    pub seed: u64,
    /// Times a width's learning-rate grid is widened (by two grid steps on
    /// that side) when its best rate lies on the grid's edge.
    pub widen: usize,
}

impl Default for MuTransferConfig {
    fn default() -> Self {
        MuTransferConfig {
            widths: vec![64, 128, 256, 512],
            sgd_log2_lrs: (-5..=3).map(f64::from).collect(),
            adam_log2_lrs: (-11..=-3).map(f64::from).collect(),
            seeds: 2,
            arch: None,
            depth: 2,
            activation: "relu".into(),
            d_in: 8,
            n_train: 64,
            steps: 50,
            seed: 0,
            widen: 2,
        }
    }
}

impl MuTransferConfig {
    /// A small run for tests and a first look (seconds).
    pub fn quick() -> Self {
        MuTransferConfig {
            widths: vec![32, 64, 128, 256],
            sgd_log2_lrs: (-5..=3).map(f64::from).collect(),
            adam_log2_lrs: (-11..=-3).map(f64::from).collect(),
            seeds: 1,
            n_train: 32,
            steps: 30,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        MuTransferConfig {
            widths: vec![256, 512, 1024, 2048, 4096],
            sgd_log2_lrs: (-12..=4).map(f64::from).collect(),
            adam_log2_lrs: (-16..=-2).map(f64::from).collect(),
            seeds: 4,
            n_train: 256,
            steps: 500,
            ..Default::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 || self.widths.contains(&0) {
            return Err(Error::invalid("widths needs at least two widths"));
        }
        if self.sgd_log2_lrs.len() < 3 || self.adam_log2_lrs.len() < 3 {
            return Err(Error::invalid(
                "each learning-rate grid needs at least 3 points",
            ));
        }
        if self.seeds == 0
            || self.steps == 0
            || self.n_train == 0
            || self.d_in == 0
            || self.depth == 0
        {
            return Err(Error::invalid(
                "seeds, steps, n-train, d-in and depth must be at least 1",
            ));
        }
        Activation::parse(&self.activation)?;
        Ok(())
    }
}

/// The log2 learning rate of least loss, refined by a parabola through the
/// best grid point and its neighbours; `None` when every run diverged.
pub fn best_log2_lr(log2_lrs: &[f64], loss: &[f64]) -> Option<f64> {
    let (i, _) = loss
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    if i == 0 || i + 1 == loss.len() || !loss[i - 1].is_finite() || !loss[i + 1].is_finite() {
        return Some(log2_lrs[i]);
    }
    let (y0, y1, y2) = (loss[i - 1].ln(), loss[i].ln(), loss[i + 1].ln());
    let h = log2_lrs[i + 1] - log2_lrs[i];
    let denom = y0 - 2.0 * y1 + y2;
    if denom <= 0.0 {
        return Some(log2_lrs[i]);
    }
    Some(log2_lrs[i] + 0.5 * h * (y0 - y2) / denom)
}

/// Which edge of the grid the least finite loss lies on (`"low"` or
/// `"high"`), if it does: the best rate may then lie beyond the grid.
pub fn edge(loss: &[f64]) -> Option<&'static str> {
    let (i, _) = loss
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    if i == 0 {
        Some("low")
    } else if i + 1 == loss.len() {
        Some("high")
    } else {
        None
    }
}

/// Runs the sweeps and writes the report.
pub fn run(
    dev: &dyn Backend,
    cfg: &MuTransferConfig,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let started = std::time::Instant::now();
    let activation = Activation::parse(&cfg.activation)?;
    let data = teacher(cfg.d_in, cfg.n_train, 1, cfg.seed);
    let checkpoint = super::Checkpoint::open(
        out,
        &json!({"experiment": "mutransfer", "config": cfg}),
        resume,
    )?;
    let mut interrupted = false;
    // muP's base width: the smallest of the sweep.
    let base = cfg.widths.iter().copied().min().unwrap_or(1);
    let combos = [
        (Parameterization::Standard, "sgd"),
        (Parameterization::Mup, "sgd"),
        (Parameterization::Standard, "adam"),
        (Parameterization::Mup, "adam"),
    ];
    let bar = progress(
        quiet,
        (combos.len() * cfg.widths.len()) as u64,
        "mutransfer",
    );
    let mut sweeps = Vec::new();
    for (param, opt) in combos {
        let grid = if opt == "sgd" {
            &cfg.sgd_log2_lrs
        } else {
            &cfg.adam_log2_lrs
        };
        let rule = if opt == "sgd" {
            Rule::Sgd
        } else {
            Rule::Adam {
                b1: 0.9,
                b2: 0.999,
                eps: 1e-8,
            }
        };
        let mut per_width = Vec::new();
        let mut best = Vec::new();
        for &width in &cfg.widths {
            let key = format!("{}-{opt}-w{width}", param.name());
            if !checkpoint.mine(&key)? {
                bar.inc(1);
                continue;
            }
            if let Some(done) = checkpoint.get(&key) {
                best.push(done["best_log2_lr"].as_f64());
                per_width.push(done);
                bar.inc(1);
                continue;
            }
            if interrupted || super::interrupted() {
                interrupted = true;
                break;
            }
            bar.set_message(format!("{} {opt} width {width}", param.name()));
            let mut grid = grid.clone();
            let mut widened = 0;
            let loss = loop {
                let e = grid.len() * cfg.seeds;
                let mlp = MlpSpec {
                    d_in: cfg.d_in,
                    width,
                    depth: cfg.depth,
                    d_out: 1,
                    activation,
                    parameterization: param,
                    w_std: 1.0,
                    b_std: 0.0,
                    base_width: base,
                    ensemble: e,
                };
                let spec = match &cfg.arch {
                    None => mlp.net(),
                    Some(a) => crate::net::NetSpec {
                        arch: a.with_width(width),
                        parameterization: Some(param),
                        ..mlp.net()
                    },
                };
                let mut ens = Ensemble::new(dev, &Params::init(&spec, cfg.seed)?)?;
                // Member (g, s): learning rate g, seed s.
                let lrs: Vec<f64> = (0..e).map(|m| 2f64.powf(grid[m / cfg.seeds])).collect();
                let tcfg = TrainConfig {
                    rule,
                    lr: lrs,
                    steps: cfg.steps,
                    batch_size: None,
                    loss: Loss::Mse,
                    schedule: Schedule::Constant,
                    log_every: cfg.steps,
                    seed: cfg.seed,
                };
                let log = train(&mut ens, &data.x_train, &data.y_train, &tcfg, |_, _| {})?;
                let loss: Vec<f64> = (0..grid.len())
                    .map(|g| {
                        let v: Vec<f64> = (0..cfg.seeds)
                            .map(|s| log.final_loss[g * cfg.seeds + s])
                            .collect();
                        if v.iter().any(|x| !x.is_finite()) {
                            f64::INFINITY
                        } else {
                            v.iter().sum::<f64>() / v.len() as f64
                        }
                    })
                    .collect();
                match edge(&loss) {
                    Some(side) if widened < cfg.widen => {
                        let h = grid[1] - grid[0];
                        if side == "low" {
                            let g0 = grid[0];
                            grid.splice(0..0, [g0 - 2.0 * h, g0 - h]);
                        } else {
                            let top = grid[grid.len() - 1];
                            grid.extend([top + h, top + 2.0 * h]);
                        }
                        widened += 1;
                    }
                    _ => break loss,
                }
            };
            let diverged: Vec<bool> = loss.iter().map(|l| !l.is_finite()).collect();
            let b = best_log2_lr(&grid, &loss);
            best.push(b);
            per_width.push(json!({
                "width": width,
                "log2_lr": grid,
                "final_loss": loss.iter().map(|l| if l.is_finite() { Some(*l) } else { None }).collect::<Vec<_>>(),
                "diverged": diverged,
                "best_log2_lr": b,
                "widened": widened,
                "best_on_edge": edge(&loss),
            }));
            if let Some(last) = per_width.last() {
                checkpoint.put(&key, last)?;
            }
            bar.inc(1);
        }
        // Shift of the best log2 learning rate per doubling of the width.
        let pts: Vec<(f64, f64)> = cfg
            .widths
            .iter()
            .zip(&best)
            .filter_map(|(w, b)| b.map(|b| ((*w as f64).log2(), b)))
            .collect();
        let shift = if pts.len() >= 2 {
            let n = pts.len() as f64;
            let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
            let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
            let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
            Some(pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx)
        } else {
            None
        };
        sweeps.push(json!({"parameterization": param.name(), "optimizer": opt, "widths": per_width, "best_log2_lr": best, "shift_per_doubling": shift}));
    }
    bar.finish_and_clear();
    if let Some(shard) = checkpoint.finish_shard()? {
        return Ok(shard);
    }
    for s in &sweeps {
        let name = format!(
            "{}_{}",
            s["parameterization"].as_str().unwrap_or("?"),
            s["optimizer"].as_str().unwrap_or("?")
        );
        let mut series = Vec::new();
        for w in s["widths"].as_array().into_iter().flatten() {
            let lrs: Vec<f64> = w["log2_lr"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_f64())
                .collect();
            let losses: Vec<f64> = w["final_loss"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            let missing: Vec<f64> = lrs
                .iter()
                .zip(&losses)
                .filter(|(_, l)| !l.is_finite())
                .map(|(r, _)| 2f64.powf(*r))
                .collect();
            let pts: Vec<(f64, f64)> = lrs
                .iter()
                .map(|l| 2f64.powf(*l))
                .zip(losses)
                .filter(|(_, l)| l.is_finite())
                .collect();
            series.push(Series::line(format!("width {}", w["width"]), pts).with_missing(missing));
        }
        plot(
            &out.file(&format!("lr_sweep_{name}.svg")),
            &format!(
                "{} + {}: final training loss against learning rate (diverged runs marked at the bottom)",
                s["parameterization"].as_str().unwrap_or(""),
                s["optimizer"].as_str().unwrap_or("")
            ),
            "learning rate",
            "training loss",
            true,
            true,
            &series,
        )?;
    }
    let mut series = Vec::new();
    for (i, s) in sweeps.iter().enumerate() {
        let pts: Vec<(f64, f64)> = cfg
            .widths
            .iter()
            .zip(s["best_log2_lr"].as_array().into_iter().flatten())
            .filter_map(|(w, b)| b.as_f64().map(|b| (*w as f64, 2f64.powf(b))))
            .collect();
        let (x, y): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let fit = super::fit_loglog(&x, &y).map(|(slope, intercept)| super::Slope {
            slope,
            stderr: f64::NAN,
            intercept,
        });
        let (p, o) = (
            s["parameterization"].as_str().unwrap_or(""),
            s["optimizer"].as_str().unwrap_or(""),
        );
        let power = theory_shift(p);
        series.extend(scaling(
            &format!("{p} + {o}"),
            &pts,
            None,
            fit,
            (
                power,
                &format!(
                    "theory, {p} + {o}: {}",
                    if power == 0.0 { "constant" } else { "1/width" }
                ),
            ),
            i,
        ));
    }
    plot(
        &out.file("best_lr.svg"),
        "Best learning rate against width",
        "width (hidden units)",
        "best learning rate",
        true,
        true,
        &series,
    )?;
    let report = json!({"experiment": "mutransfer", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "seconds": started.elapsed().as_secs_f64(), "base_width": base, "sweeps": sweeps, "interrupted": interrupted});
    let md = markdown(cfg, &report, &out.path);
    out.write_json(&report)?;
    out.write_md(&md)?;
    if interrupted {
        return Err(Error::Interrupted(out.path.display().to_string()));
    }
    Ok(report)
}

/// The shift per doubling theory predicts: about -1 under SP (the largest
/// stable rate, near which the best one sits, falls like 1/width: the NTK
/// with SGD, the preactivations' response to Adam's updates with Adam,
/// grow like the width), 0 under muP.
fn theory_shift(parameterization: &str) -> f64 {
    if parameterization == "mup" { 0.0 } else { -1.0 }
}

fn markdown(cfg: &MuTransferConfig, r: &serde_json::Value, out: &std::path::Path) -> String {
    use super::framing;
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let arch = framing::sweep_arch(
        cfg.arch.as_ref().map(ToString::to_string).as_deref(),
        cfg.depth,
        &cfg.activation,
        &cfg.widths,
    );
    let mut md = framing::teacher_opening("mutransfer", arch, cfg.n_train, cfg.d_in, r);
    let full = MuTransferConfig::default();
    md.push_str(&framing::sizes_noisy(
        "mutransfer",
        &[
            ("seed(s)", cfg.seeds, full.seeds),
            ("widths", cfg.widths.len(), full.widths.len()),
            ("steps", cfg.steps, full.steps),
            ("training points", cfg.n_train, full.n_train),
        ],
    ));
    md.push_str(&format!(
        "Learning-rate sweeps under the standard parameterization (SP) and muP (base width {}: the smallest width), with SGD and Adam, {} steps of full-batch training, {} seed(s) per point. The shift is the change of log2(best learning rate) per doubling of the width, fitted over the widths (0: the best rate transfers). A grid whose best rate fell on its edge was widened by two grid steps on that side, up to {} times.\n\n",
        r["base_width"], cfg.steps, cfg.seeds, cfg.widen
    ));
    md.push_str("| parameterization | optimizer | best log2 lr by width | shift per doubling | theory | against theory |\n|---|---|---|---|---|---|\n");
    let mut edges = Vec::new();
    for s in r["sweeps"].as_array().into_iter().flatten() {
        let (p, o) = (
            s["parameterization"].as_str().unwrap_or(""),
            s["optimizer"].as_str().unwrap_or(""),
        );
        let best: Vec<String> = s["widths"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let b = w["best_log2_lr"]
                    .as_f64()
                    .map_or("diverged".into(), |v| format!("{v:.2}"));
                match w["best_on_edge"].as_str() {
                    Some(side) => {
                        edges.push(format!("{p} + {o} at width {}: {side} edge", w["width"]));
                        format!("{b} (on the {side} edge)")
                    }
                    None => b,
                }
            })
            .collect();
        let (shift, th) = (num(&s["shift_per_doubling"]), theory_shift(p));
        let v = if (shift - th).abs() <= 0.3 {
            "agrees (within 0.3)".to_string()
        } else {
            format!("differs by {:+.2}", shift - th)
        };
        md.push_str(&format!(
            "| {p} | {o} | {} | {shift:.2} | {th} | {v} |\n",
            best.join(", ")
        ));
    }
    md.push_str("\nTheory: under muP the best rate stays put as the width grows (Yang et al. 2021, Tensor Programs V); under SP it falls like 1/width (shift -1), because the largest stable rate does and the best rate of a short run sits near it: with SGD the NTK's top eigenvalue grows like the width, with Adam each step's change of the preactivations does. The grid's spacing (a factor 2) bounds the precision of each best rate, refined by a parabola through the best point and its neighbours.\n\n");
    if edges.is_empty() {
        md.push_str("No best rate lies on the edge of its grid.\n\n");
    } else {
        md.push_str(&format!("**Best rates on the edge of their grid** (the best rate may lie beyond; widen the grid with `--sgd-log2-lrs`/`--adam-log2-lrs` or `--widen`): {}.\n\n", edges.join("; ")));
    }
    md.push_str("![best learning rate](best_lr.svg)\n\n![SP SGD](lr_sweep_standard_sgd.svg)\n\n![muP SGD](lr_sweep_mup_sgd.svg)\n\n![SP Adam](lr_sweep_standard_adam.svg)\n\n![muP Adam](lr_sweep_mup_adam.svg)\n\n");
    md.push_str(&framing::closing("mutransfer", out));
    md
}
