//! `widenet chaos`: the edge of chaos (Poole et al. 2016; Schoenholz et al.
//! 2017). The infinite-width theory on a grid of `(sigma_w^2, sigma_b^2)`
//! on the device (q*, c*, chi_1, xi_q, xi_c and the critical line), finite
//! deep networks against the iterated length and correlation maps at
//! several widths, gradient norms against `chi_1^l`, and a trainability map
//! over `sigma_w^2` and depth with the curve `6 xi_c`.
//!
//! Under `--shard I/N` every saved part is a unit, in this order: `theory`
//! (the grid and the critical line), `prop-w{w}` per width, `gradients`, and
//! `train-d{d}` per depth of the trainability map (each depth trains every
//! `sigma_w^2` and seed).

mod figs;
pub mod propagation;
mod report;
pub mod trainability;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::chaos::{Axis, Expectations, critical_line, point, theory_grid};
use crate::error::{Error, Result};
use crate::experiments::{Checkpoint, OutDir, interrupted};
use serde_json::{Value, json};
use trainability::{Task, Training};

/// The settings of a run (the `--quick` preset, the defaults, or a TOML file).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// The activation (any of `widenet kernel --activation`).
    pub activation: String,
    /// The `sigma_w^2` axis of the theory grid.
    pub sw2: Axis,
    /// The `sigma_b^2` axis of the theory grid.
    pub sb2: Axis,
    /// Gauss-Hermite nodes for activations without a closed form.
    pub degree: usize,
    /// Quadrature even where a closed form exists.
    pub quadrature: bool,
    /// `sigma_b^2` of the signal-propagation points.
    pub prop_sb2: f64,
    /// Their `sigma_w^2` (empty: ordered, critical and chaotic, at 0.6, 1 and
    /// 1.8 times the critical value).
    pub prop_sw2: Vec<f64>,
    /// Hidden layers of the signal-propagation networks.
    pub prop_depth: usize,
    /// Their widths.
    pub widths: Vec<usize>,
    /// Networks per point and width.
    pub seeds: usize,
    /// Input length `x . x / d` of the two inputs.
    pub q0: f64,
    /// Their correlation.
    pub c0: f64,
    /// Input features of the signal-propagation networks.
    pub d_in: usize,
    /// The `sigma_w^2` axis of the trainability map.
    pub train_sw2: Axis,
    /// Its `sigma_b^2`.
    pub train_sb2: f64,
    /// Its depths (hidden layers).
    pub depths: Vec<usize>,
    /// Hidden width of the trained networks.
    pub train_width: usize,
    /// SGD steps.
    pub steps: usize,
    /// SGD learning rate.
    pub lr: f64,
    /// Minibatch size.
    pub batch: usize,
    /// Training points of the synthetic task.
    pub n_train: usize,
    /// Input features of the synthetic task.
    pub task_d: usize,
    /// Networks per cell.
    pub train_seeds: usize,
    /// Training accuracy from which a cell counts as trainable.
    pub threshold: f64,
    /// Seed of everything random.
    pub seed: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            activation: "tanh".into(),
            sw2: Axis {
                lo: 0.5,
                hi: 4.0,
                n: 128,
            },
            sb2: Axis {
                lo: 0.0,
                hi: 0.5,
                n: 128,
            },
            degree: crate::quadrature::DEFAULT_DEGREE,
            quadrature: false,
            prop_sb2: 0.05,
            prop_sw2: Vec::new(),
            prop_depth: 100,
            widths: vec![32, 64, 128, 256],
            seeds: 4,
            q0: 1.0,
            c0: 0.6,
            d_in: 32,
            train_sw2: Axis {
                lo: 1.0,
                hi: 4.0,
                n: 13,
            },
            train_sb2: 0.05,
            depths: vec![6, 10, 15, 20, 30, 45, 60, 80, 100, 150, 200, 300],
            train_width: 64,
            steps: 300,
            lr: 0.01,
            batch: 32,
            n_train: 256,
            task_d: 16,
            train_seeds: 1,
            threshold: 0.8,
            seed: 0,
        }
    }
}

impl ChaosConfig {
    /// Seconds to a minute: a first look and the tests.
    pub fn quick() -> Self {
        ChaosConfig {
            prop_depth: 30,
            widths: vec![32, 128],
            seeds: 2,
            train_sw2: Axis {
                lo: 1.0,
                hi: 4.0,
                n: 7,
            },
            depths: vec![4, 8, 15, 25, 40, 60],
            train_width: 32,
            steps: 100,
            n_train: 128,
            ..ChaosConfig::default()
        }
    }

    /// For real GPUs: wider and deeper.
    pub fn large() -> Self {
        ChaosConfig {
            widths: vec![64, 256, 1024],
            seeds: 8,
            train_width: 256,
            train_seeds: 2,
            steps: 1000,
            train_sw2: Axis {
                lo: 1.0,
                hi: 4.0,
                n: 25,
            },
            ..ChaosConfig::default()
        }
    }

    /// The activation, parsed.
    pub fn act(&self) -> Result<Activation> {
        Activation::parse(&self.activation)
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        self.act()?;
        self.sw2.validate()?;
        self.sb2.validate()?;
        self.train_sw2.validate()?;
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(format!("{name} must be positive, got {v}")))
            }
        };
        positive("lr", self.lr)?;
        positive("q0", self.q0)?;
        if !(self.c0.is_finite() && (-1.0..=1.0).contains(&self.c0)) {
            return Err(Error::invalid(format!(
                "c0 must be in [-1, 1], got {}",
                self.c0
            )));
        }
        for (name, v) in [("prop-sb2", self.prop_sb2), ("train-sb2", self.train_sb2)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(format!("{name} must be >= 0, got {v}")));
            }
        }
        if self.prop_sw2.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::invalid("prop-sw2 must be positive numbers"));
        }
        if !(1..=400).contains(&self.degree) {
            return Err(Error::invalid(format!(
                "degree must be 1 to 400, got {}",
                self.degree
            )));
        }
        let counts = [
            ("prop-depth", self.prop_depth),
            ("seeds", self.seeds),
            ("d-in", self.d_in),
            ("train-width", self.train_width),
            ("steps", self.steps),
            ("batch", self.batch),
            ("n-train", self.n_train),
            ("task-d", self.task_d),
            ("train-seeds", self.train_seeds),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(Error::invalid("widths must list positive widths"));
        }
        if self.depths.is_empty() || self.depths.contains(&0) {
            return Err(Error::invalid("depths must list positive depths"));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::invalid("threshold must be in [0, 1]"));
        }
        Ok(())
    }
}

/// One line of progress on stderr, unless `quiet`.
fn say(quiet: bool, t0: std::time::Instant, msg: &str) {
    if !quiet {
        eprintln!("chaos [{:>6.1} s] {msg}", t0.elapsed().as_secs_f64());
    }
}

/// Runs the experiment on `dev` and writes `out`; `task` replaces the
/// synthetic classification task. Finished parts are saved in `OUT/points`
/// and reused with `resume`.
pub fn run(
    dev: &dyn Backend,
    cfg: &ChaosConfig,
    task: Option<&Task>,
    out: &OutDir,
    resume: bool,
    quiet: bool,
) -> Result<Value> {
    cfg.validate()?;
    let t0 = std::time::Instant::now();
    let act = cfg.act()?;
    let task = match task {
        Some(t) => {
            t.validate()?;
            t.clone()
        }
        None => {
            let s = crate::experiments::data::teacher(cfg.task_d, cfg.n_train, 1, cfg.seed);
            Task::from_signs(s.x_train, &s.y_train)
        }
    };
    let fingerprint = json!({
        "experiment": "chaos",
        "config": cfg,
        "data": {"n": task.x.rows, "d": task.x.cols, "classes": task.classes,
                  "checksum": task.x.data.iter().chain(&task.y.data).map(|v| *v as f64).sum::<f64>()},
    });
    let ck = Checkpoint::open(out, &fingerprint, resume)?;
    // Every saved part is a unit of `--shard` (another shard's is null here).
    let cached = |key: &str, f: &mut dyn FnMut() -> Result<Value>| -> Result<Value> {
        if !ck.mine(key)? {
            return Ok(Value::Null);
        }
        if let Some(v) = ck.get(key) {
            return Ok(v);
        }
        if interrupted() {
            return Err(Error::Interrupted(format!(
                "stopped before {key}; rerun with --resume to continue"
            )));
        }
        let v = f()?;
        ck.put(key, &v)?;
        Ok(v)
    };

    // The theory on the grid and the critical line, on the device.
    say(
        quiet,
        t0,
        &format!("theory on a {} x {} grid", cfg.sb2.n, cfg.sw2.n),
    );
    let theory = cached("theory", &mut || {
        let t = std::time::Instant::now();
        let g = theory_grid(dev, act, cfg.quadrature, cfg.degree, &cfg.sw2, &cfg.sb2)?;
        let grid_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let line = critical_line(
            dev,
            act,
            cfg.quadrature,
            cfg.degree,
            &g.sb2,
            g.sw2[0],
            g.sw2[g.sw2.len() - 1],
        )?;
        let mut v = serde_json::to_value(&g).map_err(|e| Error::invalid(e.to_string()))?;
        v["critical"] = json!({"sb2": g.sb2, "sw2": line});
        Ok(json!({"grid": v, "grid_s": grid_s, "critical_s": t.elapsed().as_secs_f64()}))
    })?;

    let e = Expectations::new(act, cfg.degree, cfg.quadrature);
    let points = report::prop_points(cfg, act)?;
    let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.sw2, p.sb2)).collect();
    let x = propagation::input_pair(cfg.d_in, cfg.q0, cfg.c0, cfg.seed);
    let mut widths = Vec::new();
    for &w in &cfg.widths {
        say(
            quiet,
            t0,
            &format!("signal propagation at width {w}, depth {}", cfg.prop_depth),
        );
        widths.push(cached(&format!("prop-w{w}"), &mut || {
            let p = propagation::members(
                act,
                w,
                cfg.prop_depth,
                cfg.d_in,
                1,
                &pts,
                None,
                cfg.seeds,
                cfg.seed ^ w as u64,
            )?;
            let (q, c) = propagation::measure(dev, &p, &x)?;
            Ok(json!({"width": w, "q": q, "c": c}))
        })?);
    }

    // Gradients at the widest width, the input layer set so that q_1 = q*.
    let wmax = cfg.widths.iter().copied().max().unwrap_or(1);
    say(quiet, t0, &format!("gradient norms at width {wmax}"));
    let grads = cached("gradients", &mut || {
        let stars: Vec<Option<f64>> = points
            .iter()
            .map(|p| point(&e, p.sw2, p.sb2).q_star)
            .collect();
        let first: Vec<f64> = stars
            .iter()
            .zip(&points)
            .map(|(q, p)| q.map_or(p.sw2, |q| (q - p.sb2).max(0.0) / cfg.q0))
            .collect();
        let p = propagation::members(
            act,
            wmax,
            cfg.prop_depth,
            cfg.d_in,
            1,
            &pts,
            Some(&first),
            cfg.seeds,
            cfg.seed ^ 0x6ad,
        )?;
        let norms = propagation::gradient_norms(dev, &p, &x, cfg.seed)?;
        Ok(
            json!({"width": wmax, "norms": norms, "at_fixed_point": stars.iter().map(Option::is_some).collect::<Vec<_>>()}),
        )
    })?;

    // Trainability.
    let train_sw2 = cfg.train_sw2.values();
    let t = Training {
        width: cfg.train_width,
        steps: cfg.steps,
        lr: cfg.lr,
        batch: cfg.batch,
        seeds: cfg.train_seeds,
        seed: cfg.seed,
    };
    let mut train = Vec::new();
    for &d in &cfg.depths {
        say(
            quiet,
            t0,
            &format!(
                "training {} networks of depth {d}, {} SGD steps",
                train_sw2.len() * cfg.train_seeds,
                cfg.steps
            ),
        );
        train.push(cached(&format!("train-d{d}"), &mut || {
            let acc = trainability::accuracies(dev, act, &train_sw2, cfg.train_sb2, d, &task, &t)?;
            Ok(json!({"depth": d, "accuracy": acc}))
        })?);
    }
    if let Some(shard) = ck.finish_shard()? {
        return Ok(shard);
    }
    say(quiet, t0, "report and figures");
    let report = report::write(
        out,
        cfg,
        act,
        &e,
        dev,
        &task,
        &points,
        &theory,
        &widths,
        &grads,
        &train,
        t0.elapsed().as_secs_f64(),
    )?;
    say(quiet, t0, &format!("done: {}", out.path.display()));
    Ok(report)
}
