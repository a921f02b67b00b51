//! `widenet deep-linear`: deep linear networks learn the singular modes of
//! their task one by one, in order of singular value (Saxe, McClelland and
//! Ganguli 2014, <https://arxiv.org/abs/1312.6120>).
//!
//! Task: inputs `+-e_i` (so `Sigma_xx = 2 I` and the data are centred, which
//! keeps the zero-initialized biases at zero), targets `y = M x` with
//! `M = U diag(s) V^T`. The network is linear (`identity` activation,
//! `standard` parameterization) with `L` weight layers, initialized balanced
//! and decoupled: each mode starts at strength `u0`. Under gradient descent on
//! `1/(2N) sum |f - y|^2` (`N = 2 d d_out`) each layer's mode strength `a`
//! follows `a <- a + (1/tau) a^(L-1) (s - a^L)` exactly, with
//! `tau = N / (2 lr)` steps; in continuous time the end-to-end strength
//! `u = a^L` solves `tau du/dt = L u^(2 - 2/L) (s - u)`, for `L = 2` the
//! logistic curve `u(t) = s e^(2st/tau) / (e^(2st/tau) - 1 + s/u0)`.
//! The report gives the largest deviation of the measured strengths from both.

use super::plot::{Series, plot};
use super::{OutDir, progress};
use crate::activation::Activation;
use crate::arch::Parameterization;
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::net::MlpSpec;
use crate::net::ensemble::Ensemble;
use crate::net::params::Params;
use crate::net::train::{Schedule, TrainConfig, Trainer, forward};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet deep-linear`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeepLinearConfig {
    /// Numbers of weight layers (2: one hidden layer).
    pub layers: Vec<usize>,
    /// Singular values of the task (input and output dimension = their count).
    pub singular_values: Vec<f64>,
    /// Hidden width.
    pub width: usize,
    /// Members (different random bases of the hidden layers).
    /// Seeds per point.
    pub seeds: usize,
    /// Initial strength of every mode.
    pub u0: f64,
    /// Time constant in steps (sets the learning rate).
    pub tau: f64,
    /// Training steps.
    pub steps: usize,
    /// Read the modes every this many steps.
    pub every: usize,
    /// Seed of the data and initializations.
    pub seed: u64,
}

impl Default for DeepLinearConfig {
    fn default() -> Self {
        DeepLinearConfig {
            layers: vec![2, 3],
            singular_values: vec![3.0, 1.5, 0.75, 0.375],
            width: 16,
            seeds: 4,
            u0: 1e-3,
            tau: 100.0,
            steps: 4000,
            every: 40,
            seed: 0,
        }
    }
}

impl DeepLinearConfig {
    /// A small run for tests and a first look (seconds).
    pub fn quick() -> Self {
        DeepLinearConfig {
            singular_values: vec![3.0, 1.5, 0.75],
            tau: 25.0,
            steps: 700,
            every: 25,
            seeds: 2,
            u0: 1e-2,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        DeepLinearConfig {
            layers: vec![2, 3, 4],
            singular_values: vec![4.0, 2.0, 1.0, 0.5, 0.25, 0.125],
            width: 256,
            seeds: 16,
            u0: 1e-4,
            tau: 400.0,
            steps: 40000,
            every: 200,
            seed: 0,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() || self.layers.iter().any(|&l| !(2..=6).contains(&l)) {
            return Err(Error::invalid(
                "layers takes weight-layer counts between 2 and 6",
            ));
        }
        if self.singular_values.is_empty()
            || self
                .singular_values
                .iter()
                .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::invalid("singular-values must be positive numbers"));
        }
        if self.width < self.singular_values.len() {
            return Err(Error::invalid(format!(
                "width must be at least the number of modes ({})",
                self.singular_values.len()
            )));
        }
        if !(self.u0 > 0.0
            && self.u0
                < self
                    .singular_values
                    .iter()
                    .cloned()
                    .fold(f64::INFINITY, f64::min))
        {
            return Err(Error::invalid(
                "u0 must be positive and below every singular value",
            ));
        }
        if !(self.tau.is_finite() && self.tau >= 1.0)
            || self.steps == 0
            || self.every == 0
            || self.seeds == 0
        {
            return Err(Error::invalid(
                "tau must be at least 1; steps, every and seeds at least 1",
            ));
        }
        Ok(())
    }
}

/// Columns of a random matrix with orthonormal columns, `rows x cols` (rows >= cols).
fn orthonormal(r: &mut Rng, rows: usize, cols: usize) -> Vec<Vec<f64>> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    while q.len() < cols {
        let mut v: Vec<f64> = (0..rows).map(|_| r.normal()).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-8 {
            q.push(v.into_iter().map(|a| a / n).collect());
        }
    }
    q
}

/// Continuous-time strength at time t (steps) of the end-to-end mode, from RK4
/// on `tau du/dt = L u^(2-2/L) (s - u)` (closed form for L = 2).
fn continuous(l: usize, s: f64, u0: f64, tau: f64, t: f64) -> f64 {
    if l == 2 {
        let e = (2.0 * s * t / tau).exp();
        return s * e / (e - 1.0 + s / u0);
    }
    let f = |u: f64| l as f64 * u.max(0.0).powf(2.0 - 2.0 / l as f64) * (s - u) / tau;
    let n = (t * 20.0).ceil().max(1.0) as usize;
    let h = t / n as f64;
    let mut u = u0;
    for _ in 0..n {
        let k1 = f(u);
        let k2 = f(u + 0.5 * h * k1);
        let k3 = f(u + 0.5 * h * k2);
        let k4 = f(u + h * k3);
        u += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    u
}

/// The exact discrete-time strength after `t` steps of the balanced map.
fn discrete(l: usize, s: f64, u0: f64, tau: f64, t: usize) -> f64 {
    let mut a = u0.powf(1.0 / l as f64);
    for _ in 0..t {
        a += a.powi(l as i32 - 1) * (s - a.powi(l as i32)) / tau;
    }
    a.powi(l as i32)
}

/// Runs the experiment and writes the report.
pub fn run(
    dev: &dyn Backend,
    cfg: &DeepLinearConfig,
    out: &OutDir,
    quiet: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let started = std::time::Instant::now();
    let d = cfg.singular_values.len();
    let mut rng = Rng::new(cfg.seed ^ 0xdee9_11ea);
    let uu = orthonormal(&mut rng, d, d);
    let vv = orthonormal(&mut rng, d, d);
    // M = U diag(s) V^T; data +-e_i.
    let m = |o: usize, i: usize| {
        (0..d)
            .map(|a| uu[a][o] * cfg.singular_values[a] * vv[a][i])
            .sum::<f64>()
    };
    let mut x = Matrix::<f32>::zeros(2 * d, d);
    let mut y = Matrix::<f32>::zeros(2 * d, d);
    for i in 0..d {
        for (row, sign) in [(2 * i, 1.0), (2 * i + 1, -1.0)] {
            x.data[row * d + i] = sign as f32;
            for o in 0..d {
                y.data[row * d + o] = (sign * m(o, i)) as f32;
            }
        }
    }
    let big_n = (2 * d * d) as f64;
    let lr = big_n / (2.0 * cfg.tau);
    let basis = Matrix {
        rows: d,
        cols: d,
        data: (0..d * d)
            .map(|k| if k / d == k % d { 1.0 } else { 0.0 })
            .collect(),
    };
    let bar = progress(quiet, (cfg.layers.len() * cfg.steps) as u64, "deep-linear");
    let mut results = Vec::new();
    let mut series_all = Vec::new();
    for &layers in &cfg.layers {
        if super::interrupted() {
            // Finish with the configurations done so far (the report says so).
            break;
        }
        let spec = MlpSpec {
            d_in: d,
            width: cfg.width,
            depth: layers - 1,
            d_out: d,
            activation: Activation::Identity,
            parameterization: Parameterization::Standard,
            w_std: 1.0,
            b_std: 0.0,
            base_width: cfg.width,
            ensemble: cfg.seeds,
        };
        let net = spec.net();
        let mut params = Params::init(&net, cfg.seed)?;
        let a0 = cfg.u0.powf(1.0 / layers as f64);
        for e in 0..cfg.seeds {
            // Hidden bases R_k: width x d with orthonormal columns.
            let rs: Vec<Vec<Vec<f64>>> = (0..layers - 1)
                .map(|_| orthonormal(&mut rng, cfg.width, d))
                .collect();
            for layer in net.dense_layers() {
                let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
                let w = &mut params.weights[l][e * fi * fo..(e + 1) * fi * fo];
                for o in 0..fo {
                    for i in 0..fi {
                        // Layer l maps mode a from basis "in" to basis "out".
                        let val: f64 = (0..d)
                            .map(|a| {
                                let out = if l == layers - 1 {
                                    uu[a][o]
                                } else {
                                    rs[l][a][o]
                                };
                                let inn = if l == 0 { vv[a][i] } else { rs[l - 1][a][i] };
                                a0 * out * inn
                            })
                            .sum();
                        w[o * fi + i] = val as f32;
                    }
                }
            }
            for b in params.biases.iter_mut().flatten() {
                b.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        let mut ens = Ensemble::new(dev, &params)?;
        let tcfg = TrainConfig {
            rule: Rule::Sgd,
            lr: vec![lr],
            steps: cfg.steps,
            batch_size: None,
            loss: Loss::Mse,
            schedule: Schedule::Constant,
            log_every: usize::MAX / 2,
            seed: cfg.seed,
        };
        let mut trainer = Trainer::new(&mut ens, &x, &y, &tcfg)?;
        let mut times = Vec::new();
        let mut strengths: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); d]; cfg.seeds]; // [seed][mode][time]
        for s in 0..=cfg.steps {
            if s % cfg.every == 0 || s == cfg.steps {
                let f = forward(trainer.ensemble(), &basis)?; // [E, d (inputs e_i), d_out]
                times.push(s);
                for (e, per_mode) in strengths.iter_mut().enumerate() {
                    for (a, series) in per_mode.iter_mut().enumerate() {
                        // u_a = U_a^T W V_a with W[o, i] = f(e_i)[o].
                        let u: f64 = (0..d)
                            .map(|i| {
                                (0..d)
                                    .map(|o| uu[a][o] * f[(e * d + i) * d + o] as f64)
                                    .sum::<f64>()
                                    * vv[a][i]
                            })
                            .sum();
                        series.push(u);
                    }
                }
            }
            if s < cfg.steps {
                trainer.step()?;
                bar.inc(1);
            }
        }
        let mut max_cont: f64 = 0.0;
        let mut max_disc: f64 = 0.0;
        let mut half_times = Vec::new();
        let mut modes_json = Vec::new();
        for (a, &sv) in cfg.singular_values.iter().enumerate() {
            let cont: Vec<f64> = times
                .iter()
                .map(|&t| continuous(layers, sv, cfg.u0, cfg.tau, t as f64))
                .collect();
            let disc: Vec<f64> = times
                .iter()
                .map(|&t| discrete(layers, sv, cfg.u0, cfg.tau, t))
                .collect();
            let meas: Vec<f64> = (0..times.len())
                .map(|k| strengths.iter().map(|s| s[a][k]).sum::<f64>() / cfg.seeds as f64)
                .collect();
            for s in &strengths {
                for k in 0..times.len() {
                    max_cont = max_cont.max((s[a][k] - cont[k]).abs() / sv);
                    max_disc = max_disc.max((s[a][k] - disc[k]).abs() / sv);
                }
            }
            let half = times
                .iter()
                .zip(&meas)
                .find(|(_, u)| **u >= sv / 2.0)
                .map(|(t, _)| *t);
            half_times.push(half);
            series_all.push((layers, a, sv, times.clone(), meas.clone(), cont.clone()));
            modes_json.push(json!({"singular_value": sv, "measured": meas, "continuous_exact": cont, "discrete_exact": disc, "half_time": half}));
        }
        let ordered = half_times.windows(2).all(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            _ => false,
        });
        results.push(json!({
            "layers": layers,
            "lr": lr,
            "steps": times,
            "modes": modes_json,
            "max_deviation_from_continuous": max_cont,
            "max_deviation_from_discrete": max_disc,
            "half_times": half_times,
            "learned_in_order": ordered,
        }));
    }
    bar.finish_and_clear();
    for &layers in &cfg.layers {
        let mut series = Vec::new();
        let modes: Vec<_> = series_all.iter().filter(|s| s.0 == layers).collect();
        // The axis ends a quarter past the step by which every mode's
        // continuous-time solution is within 0.5% of its singular value (the
        // rest of the run is flat), and the theory is drawn densely.
        let last = modes
            .iter()
            .filter_map(|m| m.3.last())
            .fold(0f64, |a, &t| a.max(t as f64));
        let settled = modes
            .iter()
            .map(|m| {
                let sv = m.2;
                (0..=400)
                    .map(|i| last * f64::from(i) / 400.0)
                    .find(|&t| continuous(layers, sv, cfg.u0, cfg.tau, t) >= 0.995 * sv)
                    .unwrap_or(last)
            })
            .fold(0f64, f64::max);
        let t_max = (1.25 * settled).min(last);
        for (_, a, sv, times, meas, _) in &modes {
            series.push(
                Series::measured(
                    format!("mode s = {sv}"),
                    times
                        .iter()
                        .map(|&t| t as f64)
                        .zip(meas.iter().map(|u| u / sv))
                        .filter(|p| p.0 <= t_max)
                        .collect(),
                )
                .with_color(*a),
            );
            series.push(
                Series::theory(
                    format!("Saxe et al., s = {sv}"),
                    (0..=300)
                        .map(|i| {
                            let t = t_max * f64::from(i) / 300.0;
                            (t, continuous(layers, *sv, cfg.u0, cfg.tau, t) / sv)
                        })
                        .collect(),
                )
                .with_color(*a),
            );
        }
        plot(
            &out.file(&format!("modes_{layers}_layers.svg")),
            &format!(
                "Singular modes of a {layers}-layer linear network (points) against Saxe et al. (lines)"
            ),
            "gradient-descent step",
            "mode strength / singular value",
            false,
            false,
            &series,
        )?;
    }
    let report = json!({
        "interrupted": super::interrupted(),
        "experiment": "deep-linear",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "device": dev.info(),
        "results": results,
    });
    let mut md = super::framing::opening(&super::framing::Run {
        experiment: "deep-linear",
        data: format!(
            "the {d} points +-e_i mapped through a matrix of singular values {:?}",
            cfg.singular_values
        ),
        arch: format!(
            "linear networks of {:?} weight layers, width {}, {} seed(s)",
            cfg.layers, cfg.width, cfg.seeds
        ),
        device: dev.info().name,
        seconds: started.elapsed().as_secs_f64(),
    });
    let full = DeepLinearConfig::default();
    md.push_str(&super::framing::sizes_noisy(
        "deep-linear",
        &[
            ("seed(s)", cfg.seeds, full.seeds),
            ("steps", cfg.steps, full.steps),
        ],
    ));
    md.push_str(&format!(
        "Every mode initialized at strength {} (balanced, decoupled), trained by full-batch gradient descent with tau = {} steps, against the exact solutions of Saxe, McClelland and Ganguli (2014): the continuous-time solution and the exact map of the discrete steps.\n\n",
        cfg.u0, cfg.tau
    ));
    md.push_str("| weight layers | largest deviation from the continuous-time solution (/ s) | from the exact discrete-time map (/ s) | steps to half strength, by mode | modes learned in order |\n|---|---|---|---|---|\n");
    for r in &results {
        md.push_str(&format!(
            "| {} | {:.4} | {:.2e} | {} | {} |\n",
            r["layers"],
            r["max_deviation_from_continuous"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r["max_deviation_from_discrete"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r["half_times"],
            r["learned_in_order"]
        ));
    }
    md.push('\n');
    for &l in &cfg.layers {
        md.push_str(&format!("![{l} layers](modes_{l}_layers.svg)\n\n"));
    }
    md.push_str(&super::framing::closing("deep-linear", &out.path));
    out.write_json(&report)?;
    out.write_md(&md)?;
    Ok(report)
}
