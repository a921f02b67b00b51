//! `widenet random-labels`: wide networks fit labels of any kind, and labels
//! that carry no signal are fitted later and do not generalize (Zhang, Bengio,
//! Hardt, Recht and Vinyals 2017, "Understanding deep learning requires
//! rethinking generalization", figure 1), against the kernel's account of it.
//!
//! At each corruption level a fraction of the training labels is replaced by
//! random ones (Gaussian, of the labels' mean square; the points corrupted at
//! a level include those of every lower level). Ensembles of each width are
//! trained by full-batch gradient descent until every member's training loss
//! is below `fit_tol` times its starting value `mean(y^2) / 2` ("fitted"),
//! or `max_steps`. The kernel predicts the expected training loss of the
//! infinitely wide ensemble: on the eigenvectors `u_i` of the train NTK
//! (eigenvalues `lambda_i` of `Theta / n`), each mode of the residual decays
//! like `(1 - eta lambda_i)^t` (the gradient-descent form of
//! `exp(-eta lambda_i t)`), and carries the labels' weight `(u_i . y)^2` plus
//! the initial outputs' variance `u_i^T K_nngp u_i`; and it predicts the
//! expected test MSE at the step training stopped (mean and covariance of
//! [`crate::predict::gradient_descent_mse_ensemble`]). Random labels put
//! their weight on small eigenvalues, so they are fitted later, and what is
//! fitted there does not generalize.
//!
//! Under `--shard I/N` a unit is one (corruption level, width) point, keyed
//! `level{i}-w{w}` in level-major order; the kernel theory (which gives the
//! default learning rate) is recomputed by every shard and by the merge
//! (deterministic, and never stored in a point).

mod report;

use super::task::{Source, Task};
use super::{Checkpoint, OutDir};
use crate::arch::{Arch, Mlp, Parameterization};
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::net::train::{Schedule, TrainConfig, Trainer, forward};
use crate::net::{Ensemble, NetSpec, Params};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet random-labels`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RandomLabelsConfig {
    /// The data: the sphere task or the user's files.
    pub source: Source,
    /// Training points.
    pub n_train: usize,
    /// Test points.
    pub n_test: usize,
    /// The architecture (hidden Dense layers set to each width).
    pub arch: Arch,
    /// Fractions of training labels replaced by random ones.
    pub corrupt: Vec<f64>,
    /// Widths of the ensembles.
    pub widths: Vec<usize>,
    /// Networks per width.
    pub members: usize,
    /// Most gradient-descent steps.
    pub max_steps: usize,
    /// Learning rate; default `n / lambda_max` of the analytic train NTK.
    pub lr: Option<f64>,
    /// Fitted when the training loss is below this fraction of `mean(y^2) / 2`.
    pub fit_tol: f64,
    /// Points on the training-loss curves (log-spaced in steps).
    pub curve_points: usize,
    /// Seed of the data, the corruption and the networks.
    pub seed: u64,
}

impl Default for RandomLabelsConfig {
    fn default() -> Self {
        RandomLabelsConfig {
            source: Source::Sphere {
                d: 8,
                target: "1:0.5,2:0.3,3:0.2".into(),
            },
            n_train: 128,
            n_test: 512,
            arch: Arch::mlp(&Mlp {
                depth: 1,
                width: 512,
                activation: crate::Activation::RELU,
                w_std: 1.4,
                b_std: Some(0.1),
                parameterization: Parameterization::Ntk,
                d_out: 1,
            }),
            corrupt: vec![0.0, 0.2, 0.5, 0.8, 1.0],
            widths: vec![128, 1024],
            members: 4,
            max_steps: 3000,
            lr: None,
            fit_tol: 0.01,
            curve_points: 50,
            seed: 0,
        }
    }
}

impl RandomLabelsConfig {
    /// Seconds: for tests and a first look.
    pub fn quick() -> Self {
        RandomLabelsConfig {
            n_train: 48,
            n_test: 256,
            corrupt: vec![0.0, 0.5, 1.0],
            widths: vec![64, 512],
            members: 3,
            max_steps: 800,
            curve_points: 24,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        RandomLabelsConfig {
            n_train: 512,
            n_test: 2048,
            widths: vec![256, 1024, 4096],
            members: 8,
            max_steps: 20000,
            ..Default::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.corrupt.is_empty() {
            return Err(Error::invalid(
                "corrupt needs at least one corruption level (fractions in [0, 1])",
            ));
        }
        if let Some(c) = self.corrupt.iter().find(|c| !(0.0..=1.0).contains(*c)) {
            return Err(Error::invalid(format!(
                "corrupt must hold fractions in [0, 1], got {c}"
            )));
        }
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(Error::invalid("widths needs widths of at least 1"));
        }
        for (name, v) in [
            ("n-train", self.n_train),
            ("n-test", self.n_test),
            ("members", self.members),
            ("max-steps", self.max_steps),
            ("curve-points", self.curve_points),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if let Some(lr) = self.lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::invalid(format!(
                    "lr must be positive and finite, got {lr}"
                )));
            }
        }
        if !(self.fit_tol.is_finite() && self.fit_tol > 0.0 && self.fit_tol < 1.0) {
            return Err(Error::invalid(format!(
                "fit-tol must be in (0, 1), got {}",
                self.fit_tol
            )));
        }
        if let Source::Sphere { d, target } = &self.source {
            if *d < 2 {
                return Err(Error::invalid(format!("d must be at least 2, got {d}")));
            }
            super::sphere::TargetSpec::parse(target)?;
        }
        Ok(())
    }
}

/// The training labels at corruption `c`: the first `round(c n)` points of a
/// seeded order get their random label.
pub fn corrupted(y: &[f64], c: f64, seed: u64) -> Vec<f64> {
    let n = y.len();
    let power = crate::stats::mean(&y.iter().map(|v| v * v).collect::<Vec<_>>());
    let mut r = Rng::new(seed ^ 0xc0_44u64);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, r.below(i + 1));
    }
    let random: Vec<f64> = (0..n).map(|_| r.normal() * power.sqrt()).collect();
    let k = (c * n as f64).round() as usize;
    let mut out = y.to_vec();
    for &i in &order[..k.min(n)] {
        out[i] = random[i];
    }
    out
}

/// Log-spaced steps from 1 to `max`, with 0 (the start) first.
pub fn grid(max: usize, points: usize) -> Vec<usize> {
    let mut g = vec![0usize];
    for i in 0..points {
        let f = if points == 1 {
            1.0
        } else {
            i as f64 / (points - 1) as f64
        };
        g.push((max as f64).powf(f).round() as usize);
    }
    g.dedup();
    g
}

/// One ensemble trained on labels `y`: the mean loss (and each member's) at
/// the grid's steps until fitted, the step it fitted at, and the test MSE.
fn train_point(
    dev: &dyn Backend,
    cfg: &RandomLabelsConfig,
    task: &Task,
    width: usize,
    y: &[f64],
    lr: f64,
) -> Result<serde_json::Value> {
    let spec = NetSpec {
        arch: cfg.arch.with_width(width),
        d_in: task.d(),
        ensemble: cfg.members,
        parameterization: None,
        base_width: width,
    };
    let mut ens = Ensemble::new(dev, &Params::init(&spec, cfg.seed ^ ((width as u64) << 8))?)?;
    let ym = Matrix::from_vec(y.len(), 1, y.iter().map(|&v| v as f32).collect())?;
    let tcfg = TrainConfig {
        rule: Rule::Sgd,
        lr: vec![lr],
        steps: cfg.max_steps,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: usize::MAX / 2,
        seed: cfg.seed,
    };
    let threshold =
        cfg.fit_tol * 0.5 * crate::stats::mean(&y.iter().map(|v| v * v).collect::<Vec<_>>());
    let steps = grid(cfg.max_steps, cfg.curve_points);
    let mut trainer = Trainer::new(&mut ens, &task.pool_x, &ym, &tcfg)?;
    let (mut at, mut mean_curve, mut members) = (Vec::new(), Vec::new(), Vec::new());
    let mut fitted = None;
    for &s in &steps {
        while trainer.steps_done() < s {
            trainer.step()?;
        }
        let loss = trainer.full_loss()?;
        at.push(s);
        mean_curve.push(crate::stats::mean(&loss));
        let done = loss.iter().all(|l| *l <= threshold);
        members.push(loss);
        if done {
            fitted = Some(s);
            break;
        }
    }
    let stopped = trainer.steps_done();
    let out = forward(trainer.ensemble(), &task.test_x)?;
    let t = task.test_y.len();
    let test: Vec<f64> = (0..cfg.members)
        .map(|m| {
            (0..t)
                .map(|i| (out[m * t + i] as f64 - task.test_y[i]).powi(2))
                .sum::<f64>()
                / t as f64
        })
        .collect();
    Ok(json!({
        "width": width, "steps": at, "loss": mean_curve, "member_loss": members,
        "steps_to_fit": fitted, "stopped_at": stopped, "test_mse": test,
    }))
}

/// Runs every level and width and writes the report.
pub fn run(
    dev: &dyn Backend,
    cfg: &RandomLabelsConfig,
    task: &Task,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let started = std::time::Instant::now();
    let checkpoint = Checkpoint::open(
        out,
        &json!({"experiment": "random-labels", "config": cfg}),
        resume,
    )?;
    let theory = report::Theory::new(cfg, task)?;
    let lr = cfg.lr.unwrap_or(theory.default_lr);
    let bar = super::learning_curves::Progress::new(
        quiet,
        (cfg.corrupt.len() * cfg.widths.len()) as u64,
        "random-labels",
    );
    let mut points = Vec::new();
    for (li, &c) in cfg.corrupt.iter().enumerate() {
        let y = corrupted(&task.pool_y, c, cfg.seed);
        for &w in &cfg.widths {
            let key = format!("level{li}-w{w}");
            if !checkpoint.mine(&key)? {
                bar.step(format!("corruption {c}, width {w}: another shard's"));
                continue;
            }
            let p = match checkpoint.get(&key) {
                Some(v) => v,
                None => {
                    if super::interrupted() {
                        return report::partial(out, cfg, dev, &points);
                    }
                    let v = train_point(dev, cfg, task, w, &y, lr)?;
                    checkpoint.put(&key, &v)?;
                    v
                }
            };
            bar.step(format!(
                "corruption {c}, width {w}: fitted at {}",
                p["steps_to_fit"]
            ));
            points.push(json!({"level": li, "point": p}));
        }
    }
    bar.finish();
    if let Some(shard) = checkpoint.finish_shard()? {
        return Ok(shard);
    }
    report::write(out, cfg, task, dev, &theory, lr, &points, started)
}
