//! `widenet compare`: finite networks trained by gradient descent against the
//! infinite-width prediction at the same time `t = lr * steps`, across widths.
//!
//! Measured per width (members = seeds):
//! - the empirical NTK and NNGP at initialization against the analytic ones
//!   (relative Frobenius distance; theory: ~ width^-1/2);
//! - each member's deviation from the linearized infinite-width dynamics
//!   started from its own initialization (theory: ~ width^-1/2);
//! - the movement of each member's NTK during training (theory, ntk
//!   parameterization: ~ 1/width by perturbation theory);
//! - the ensemble mean against the infinite-width mean, with the Monte Carlo
//!   floor of that error from the measured member variance, and the spread
//!   across members against the predicted covariance;
//! - train and test loss over training against the infinite-width expected loss.

mod report;
mod theory;
mod width;

use super::data::Split;
use super::{OutDir, progress, seed_slope};
use crate::activation::Activation;
use crate::arch::{Arch, Mlp, Parameterization};
use crate::backend::Backend;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet compare`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareConfig {
    /// Hidden widths of the finite networks.
    pub widths: Vec<usize>,
    /// Members (seeds) per width.
    pub seeds: usize,
    /// The architecture (every hidden Dense layer set to each width in
    /// turn); `None` builds it from the shorthand below.
    pub arch: Option<Arch>,
    /// Shorthand: hidden layers.
    pub depth: usize,
    /// Shorthand: the nonlinearity.
    pub activation: String,
    /// Shorthand: weight scale.
    pub w_std: f64,
    /// Shorthand: bias scale.
    pub b_std: f64,
    /// Input dimension of the synthetic task.
    pub d_in: usize,
    /// Training points.
    pub n_train: usize,
    /// Test points.
    pub n_test: usize,
    /// Gradient-descent steps.
    pub steps: usize,
    /// Learning rate; default `n_train / lambda_max` of the analytic train NTK.
    pub lr: Option<f64>,
    /// Points on the loss curves.
    pub curve_points: usize,
    /// Seed of the data and of the initializations.
    pub seed: u64,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            widths: vec![64, 128, 256, 512, 1024, 2048],
            seeds: 16,
            arch: None,
            depth: 1,
            activation: "relu".into(),
            w_std: 1.5,
            b_std: 0.1,
            d_in: 8,
            n_train: 64,
            n_test: 32,
            steps: 200,
            lr: None,
            curve_points: 20,
            seed: 0,
        }
    }
}

impl CompareConfig {
    /// A small run for tests and a first look.
    pub fn quick() -> Self {
        CompareConfig {
            widths: vec![32, 128, 512],
            seeds: 8,
            n_train: 32,
            n_test: 16,
            steps: 40,
            curve_points: 8,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        CompareConfig {
            widths: vec![64, 128, 256, 512, 1024, 2048, 4096, 8192],
            seeds: 64,
            depth: 2,
            n_train: 256,
            n_test: 128,
            steps: 1000,
            ..Default::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 || self.widths.contains(&0) {
            return Err(Error::invalid(
                "widths needs at least two widths, each at least 1",
            ));
        }
        for (name, v) in [
            ("seeds", self.seeds),
            ("n-train", self.n_train),
            ("n-test", self.n_test),
            ("steps", self.steps),
            ("curve-points", self.curve_points),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.seeds < 2 {
            return Err(Error::invalid(
                "seeds must be at least 2 (spread and slope errors come from the seeds)",
            ));
        }
        if let Some(lr) = self.lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::invalid(format!("lr must be positive, got {lr}")));
            }
        }
        let arch = self.arch_template()?;
        if arch.output_width(self.d_in)? != 1 {
            return Err(Error::invalid(
                "compare needs an architecture with one output",
            ));
        }
        Ok(())
    }

    /// The architecture at the first width (hidden widths are set per width).
    pub fn arch_template(&self) -> Result<Arch> {
        match &self.arch {
            Some(a) => Ok(a.clone()),
            None => Ok(Arch::mlp(&Mlp {
                depth: self.depth,
                width: self.widths.first().copied().unwrap_or(1),
                activation: Activation::parse(&self.activation)?,
                w_std: self.w_std,
                b_std: Some(self.b_std),
                parameterization: Parameterization::Ntk,
                d_out: 1,
            })),
        }
    }
}

/// Runs the comparison and writes the report; returns `report.json`'s content.
pub fn run(
    dev: &dyn Backend,
    cfg: &CompareConfig,
    data: &Split,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let started = std::time::Instant::now();
    if data.y_train.cols != 1 || data.y_test.cols != 1 {
        return Err(Error::invalid(
            "compare needs one output (y of shape [n] or [n, 1])",
        ));
    }
    let arch = cfg.arch_template()?;
    let th = theory::Theory::compute(cfg, &arch, data)?;
    let bar = progress(quiet, (cfg.widths.len() * cfg.steps) as u64, "compare");
    let fingerprint = json!({"experiment": "compare", "config": cfg, "data": {"x_train": data.x_train.data, "y_train": data.y_train.data, "x_test": data.x_test.data}});
    let checkpoint = super::Checkpoint::open(out, &fingerprint, resume)?;
    let mut widths_json: Vec<serde_json::Value> = Vec::new();
    let mut interrupted = false;
    for &w in &cfg.widths {
        if !checkpoint.mine(&format!("width-{w}"))? {
            bar.inc(cfg.steps as u64);
            continue;
        }
        if let Some(done) = checkpoint.get(&format!("width-{w}")) {
            bar.inc(cfg.steps as u64);
            widths_json.push(done);
            continue;
        }
        if super::interrupted() {
            interrupted = true;
            break;
        }
        bar.set_message(format!("width {w}"));
        match width::measure(dev, cfg, &arch.with_width(w), w, data, &th, &bar)? {
            Some(v) => {
                checkpoint.put(&format!("width-{w}"), &v)?;
                widths_json.push(v);
            }
            None => {
                interrupted = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(shard) = checkpoint.finish_shard()? {
        return Ok(shard);
    }
    let s = report::Summary::of(&widths_json, cfg.seeds);
    let slopes_json: serde_json::Map<String, serde_json::Value> = s
        .slopes
        .iter()
        .map(|(n, s)| (n.to_string(), json!(s)))
        .collect();
    let times: Vec<f64> = th.curve_steps.iter().map(|&s| s as f64 * th.lr).collect();
    let report = json!({
        "experiment": "compare",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "arch": arch,
        "device": dev.info(),
        "data": {"n_train": th.ntr, "n_test": th.nte, "d_in": data.x_train.cols},
        "lr": th.lr,
        "t_final": th.t_final,
        "lambda_max": th.lam_max,
        "curve_steps": th.curve_steps,
        "curve_times": times,
        "infinite": {"train_loss_curve": th.inf_train, "test_loss_curve": th.inf_test, "test_mean": th.mu_inf, "test_variance": th.var_inf},
        "widths": widths_json,
        "slopes": slopes_json,
        "interrupted": interrupted,
    });
    report::write_plots(out, &s, &times, &th)?;
    out.write_json(&report)?;
    out.write_md(&report::markdown(
        cfg,
        &arch,
        &report,
        &s,
        started.elapsed().as_secs_f64(),
        &out.path,
    ))?;
    if interrupted {
        return Err(Error::Interrupted(out.path.display().to_string()));
    }
    Ok(report)
}

/// `(1/2N) sum (f - y)^2`.
fn mse(f: &[f64], y: &[f32]) -> f64 {
    f.iter()
        .zip(y)
        .map(|(a, b)| (a - *b as f64).powi(2))
        .sum::<f64>()
        / (2.0 * y.len() as f64)
}

/// Euclidean norm.
fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The fitted slopes of the per-seed series in width.
fn slopes_of(
    xs: &[f64],
    per_seed: &[Vec<Vec<f64>>; 4],
) -> [(&'static str, Option<super::Slope>); 4] {
    let slope = |i: usize| seed_slope(xs, &per_seed[i]);
    [
        ("ntk_init_distance", slope(0)),
        ("member_deviation", slope(1)),
        ("ntk_movement", slope(2)),
        ("nngp_init_distance", slope(3)),
    ]
}
