//! `widenet mutransfer`: learning-rate sweeps across widths under the
//! standard parameterization and muP, with SGD and Adam, in the style of
//! Tensor Programs V, figure 1 (Yang et al. 2021). Under muP the best
//! learning rate stays put as the width grows; under SP it drifts.
//! Every (width, learning rate, seed) is one member of a batched ensemble.

use super::data::teacher;
use super::plot::{Series, plot};
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

/// Runs the sweeps and writes the report.
pub fn run(
    dev: &dyn Backend,
    cfg: &MuTransferConfig,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let activation = Activation::parse(&cfg.activation)?;
    let data = teacher(cfg.d_in, cfg.n_train, 1, cfg.seed);
    let checkpoint = super::Checkpoint::open(
        out,
        &json!({"experiment": "mutransfer", "config": cfg}),
        resume,
    )?;
    let mut interrupted = false;
    let base = cfg.widths[0];
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
            let diverged: Vec<bool> = loss.iter().map(|l| !l.is_finite()).collect();
            let b = best_log2_lr(grid, &loss);
            best.push(b);
            per_width.push(json!({
                "width": width,
                "log2_lr": grid,
                "final_loss": loss.iter().map(|l| if l.is_finite() { Some(*l) } else { None }).collect::<Vec<_>>(),
                "diverged": diverged,
                "best_log2_lr": b,
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
            let pts: Vec<(f64, f64)> = lrs.iter().map(|l| 2f64.powf(*l)).zip(losses).collect();
            series.push(Series::line(format!("width {}", w["width"]), pts.clone()));
        }
        plot(
            &out.file(&format!("lr_sweep_{name}.svg")),
            &format!(
                "{} + {}: final training loss against learning rate (diverged runs omitted)",
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
    for s in &sweeps {
        let pts: Vec<(f64, f64)> = cfg
            .widths
            .iter()
            .zip(s["best_log2_lr"].as_array().into_iter().flatten())
            .filter_map(|(w, b)| b.as_f64().map(|b| (*w as f64, 2f64.powf(b))))
            .collect();
        series.push(Series::measured(
            format!(
                "{} + {} (shift {:.2} per doubling)",
                s["parameterization"].as_str().unwrap_or(""),
                s["optimizer"].as_str().unwrap_or(""),
                s["shift_per_doubling"].as_f64().unwrap_or(f64::NAN)
            ),
            pts,
        ));
    }
    plot(
        &out.file("best_lr.svg"),
        "Best learning rate against width",
        "width",
        "best learning rate",
        true,
        true,
        &series,
    )?;
    let report = json!({"experiment": "mutransfer", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "sweeps": sweeps, "interrupted": interrupted});
    let mut md = String::from("# widenet mutransfer\n\n");
    md.push_str(&format!(
        "Learning-rate sweeps of depth-{} {} networks at widths {:?} (muP base width {}), {} steps of full-batch training on a teacher task, {} seed(s) per point. The shift is the change of log2(best learning rate) per doubling of the width (0: the best rate transfers). Device: {}.\n\n",
        cfg.depth, cfg.activation, cfg.widths, base, cfg.steps, cfg.seeds, dev.info().name
    ));
    md.push_str("| parameterization | optimizer | best log2 lr by width | shift per doubling |\n|---|---|---|---|\n");
    for s in &sweeps {
        let best: Vec<String> = s["best_log2_lr"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| b.as_f64().map_or("diverged".into(), |v| format!("{v:.2}")))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} |\n",
            s["parameterization"].as_str().unwrap_or(""),
            s["optimizer"].as_str().unwrap_or(""),
            best.join(", "),
            s["shift_per_doubling"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    md.push_str("\n![best learning rate](best_lr.svg)\n\n![SP SGD](lr_sweep_standard_sgd.svg)\n\n![muP SGD](lr_sweep_mup_sgd.svg)\n\n![SP Adam](lr_sweep_standard_adam.svg)\n\n![muP Adam](lr_sweep_mup_adam.svg)\n");
    out.write_json(&report)?;
    out.write_md(&md)?;
    if interrupted {
        return Err(Error::Interrupted(out.path.display().to_string()));
    }
    Ok(report)
}
