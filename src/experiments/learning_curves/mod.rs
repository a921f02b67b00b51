//! `widenet learning-curves`: the test error of kernel regression, and of
//! wide networks, against the number of training points, measured and
//! predicted from the kernel's eigenstructure (eigenlearning, see
//! [`crate::eigenlearning`]).
//!
//! - The spectrum: the kernel on a pool of `M` points on the device, its
//!   eigendecomposition in f64 (eigenvalues of `K / M`, the target's weights
//!   on the eigenvectors); on the sphere also the exact population spectrum
//!   (Gegenbauer coefficients, [`crate::experiments::sphere`]).
//! - The prediction at every `n`: kappa, learnabilities, test and train MSE,
//!   from the exact spectrum on the sphere (the pool's otherwise; both are
//!   reported).
//! - The measurement: kernel regression on `draws` random training sets
//!   drawn from the pool at every `n`, tested on separate test points; at a
//!   few `n`, finite networks of each width through the infinite-time limit
//!   of their linearized model (see `measure.rs`).
//! - Power-law fits of the test MSE in `n`, measured and predicted, and
//!   theory's exponent from the fitted decay of the spectrum and of the
//!   target's tail.
//!
//! Under `--shard I/N` the units are, in order: `spectrum` (the pool's
//! eigendecomposition; unit 0, so shard 0 computes it, and only the report
//! needs it), `n{n}` per training-set size, then `w{w}-n{n}` per finite
//! width and size. A shard computes the kernels (every unit's input) only
//! when it owns a unit not yet saved; the merge computes none.

mod measure;
mod report;
mod report_md;
pub mod spectrum;

use super::task::{Source, Task};
use super::{Checkpoint, OutDir};
use crate::arch::{Arch, Mlp, Parameterization};
use crate::backend::Backend;
use crate::eigenlearning::Modes;
use crate::error::{Error, Result};
use crate::kernel::{Want, kernels_device};
use crate::predict::Get;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet learning-curves`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LearningCurvesConfig {
    /// The data: the sphere task or the user's files.
    pub source: Source,
    /// Pool points (training sets are drawn from them; the spectrum is theirs).
    pub pool: usize,
    /// Test points.
    pub n_test: usize,
    /// The architecture (its kernel; hidden Dense layers set to each finite width).
    pub arch: Arch,
    /// The kernel: NTK (every layer trained) or NNGP (the readout only).
    pub get: Get,
    /// Training-set sizes.
    pub n: Vec<usize>,
    /// Ridge added to the raw train kernel's diagonal.
    pub ridge: f64,
    /// Standard deviation of the label noise (train and test labels).
    pub noise: f64,
    /// Random training sets per `n`.
    pub draws: usize,
    /// Widths of the finite networks.
    pub widths: Vec<usize>,
    /// The `n` at which finite networks are measured.
    pub finite_n: Vec<usize>,
    /// Networks per width.
    pub members: usize,
    /// Test points for the finite networks (the first of the test set).
    pub finite_test: usize,
    /// Highest degree of the sphere's exact spectrum.
    pub kmax: usize,
    /// Smallest `n` in the exponent fits.
    pub fit_min_n: usize,
    /// Seed of the data, the draws and the networks.
    pub seed: u64,
}

/// The architecture the learning curves use unless told otherwise.
pub fn default_arch() -> Arch {
    Arch::mlp(&Mlp {
        depth: 2,
        width: 512,
        activation: crate::Activation::RELU,
        w_std: 1.4,
        b_std: Some(0.1),
        parameterization: Parameterization::Ntk,
        d_out: 1,
    })
}

/// `LO:HI:K` (K sizes spaced evenly in log from LO to HI) or a list.
pub fn parse_sizes(s: &str) -> Result<Vec<usize>> {
    let bad = || {
        Error::invalid(format!(
            "n must be a comma-separated list or LO:HI:K (K sizes from LO to HI, log-spaced), got '{s}'"
        ))
    };
    let v: Vec<usize> = if s.contains(':') {
        let p: Vec<&str> = s.split(':').collect();
        if p.len() != 3 {
            return Err(bad());
        }
        let lo: usize = p[0].trim().parse().map_err(|_| bad())?;
        let hi: usize = p[1].trim().parse().map_err(|_| bad())?;
        let k: usize = p[2].trim().parse().map_err(|_| bad())?;
        if lo == 0 || hi < lo || k == 0 {
            return Err(bad());
        }
        let mut v: Vec<usize> = (0..k)
            .map(|i| {
                let f = if k == 1 {
                    0.0
                } else {
                    i as f64 / (k - 1) as f64
                };
                (lo as f64 * (hi as f64 / lo as f64).powf(f)).round() as usize
            })
            .collect();
        v.dedup();
        v
    } else {
        s.split(',')
            .map(|t| t.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad())?
    };
    if v.is_empty() || v.contains(&0) {
        return Err(bad());
    }
    Ok(v)
}

impl Default for LearningCurvesConfig {
    fn default() -> Self {
        LearningCurvesConfig {
            source: Source::Sphere {
                d: 3,
                target: "power:3".into(),
            },
            pool: 4096,
            n_test: 2048,
            arch: default_arch(),
            get: Get::Ntk,
            n: parse_sizes("16:2048:12").unwrap_or_default(),
            ridge: 0.0,
            noise: 0.0,
            draws: 10,
            widths: vec![128, 512],
            finite_n: vec![64, 256],
            members: 3,
            finite_test: 256,
            kmax: 300,
            fit_min_n: 64,
            seed: 0,
        }
    }
}

impl LearningCurvesConfig {
    /// Seconds: for tests and a first look.
    pub fn quick() -> Self {
        LearningCurvesConfig {
            pool: 1024,
            n_test: 512,
            n: parse_sizes("16:512:6").unwrap_or_default(),
            draws: 4,
            widths: vec![64, 512],
            finite_n: vec![64],
            members: 3,
            finite_test: 256,
            kmax: 150,
            fit_min_n: 32,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        LearningCurvesConfig {
            pool: 16384,
            n_test: 4096,
            n: parse_sizes("16:8192:16").unwrap_or_default(),
            draws: 16,
            widths: vec![256, 1024, 4096],
            finite_n: vec![64, 256, 1024],
            members: 8,
            finite_test: 1024,
            ..Default::default()
        }
    }

    /// Checks the settings that do not need the data.
    pub fn validate(&self) -> Result<()> {
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            return Err(Error::invalid(format!(
                "ridge must be finite and non-negative, got {}",
                self.ridge
            )));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::invalid(format!(
                "noise must be finite and non-negative, got {}",
                self.noise
            )));
        }
        for (name, v) in [
            ("pool", self.pool),
            ("n-test", self.n_test),
            ("draws", self.draws),
            ("members", self.members),
            ("finite-test", self.finite_test),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.n.is_empty() || self.n.contains(&0) {
            return Err(Error::invalid("n needs sizes of at least 1"));
        }
        if self.widths.contains(&0) {
            return Err(Error::invalid("widths must be at least 1"));
        }
        if let Source::Sphere { d, target } = &self.source {
            if *d < 2 {
                return Err(Error::invalid(format!("d must be at least 2, got {d}")));
            }
            super::sphere::TargetSpec::parse(target)?;
        }
        Ok(())
    }

    /// Checks the sizes against the pool the data gives.
    pub fn check_sizes(&self, pool: usize) -> Result<()> {
        for &n in self.n.iter().chain(&self.finite_n) {
            if n > pool {
                return Err(Error::invalid(format!(
                    "n must not exceed the pool: {n} training points is more than the pool of {pool} (raise the pool or give more rows)"
                )));
            }
        }
        Ok(())
    }
}

/// Degrees whose measured learnability is tracked: up to six of the
/// target's, spread in log.
fn tracked_degrees(task: &Task) -> Vec<usize> {
    let Some(t) = &task.target else {
        return Vec::new();
    };
    [1usize, 2, 3, 5, 8, 13, 21, 34]
        .into_iter()
        .filter(|&k| t.powers.get(k).is_some_and(|p| *p > 0.0))
        .take(6)
        .collect()
}

/// Progress on stderr: a bar on a terminal, else one line per update.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    lines: bool,
    what: &'static str,
    start: std::time::Instant,
}

impl Progress {
    pub(crate) fn new(quiet: bool, total: u64, what: &'static str) -> Self {
        use std::io::IsTerminal;
        let lines = !quiet && !std::io::stderr().is_terminal();
        Progress {
            bar: super::progress(quiet || lines, total, what),
            lines,
            what,
            start: std::time::Instant::now(),
        }
    }
    pub(crate) fn step(&self, msg: String) {
        self.bar.set_message(msg.clone());
        self.bar.inc(1);
        if self.lines {
            eprintln!(
                "{}: {msg} ({:.1} s)",
                self.what,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The pool's kernel and the test-by-pool kernel on the device, with the
/// labels' noise (drawn in a fixed order from the seed).
fn pool_kernels(
    dev: &dyn Backend,
    cfg: &LearningCurvesConfig,
    task: &Task,
) -> Result<measure::Kernels> {
    let want = match cfg.get {
        Get::Ntk => Want::NTK,
        Get::Nngp => Want::NNGP,
    };
    let pick = |k: crate::kernel::Kernels<f32>| {
        k.ntk
            .or(k.nngp)
            .ok_or_else(|| Error::invalid("internal: the kernel asked for is missing"))
    };
    let mut r = Rng::new(cfg.seed ^ 0x0153_0153);
    let mut noisy =
        |v: &[f64]| -> Vec<f64> { v.iter().map(|y| y + cfg.noise * r.normal()).collect() };
    let (pool_y, test_y) = (noisy(&task.pool_y), noisy(&task.test_y));
    let pool = pick(kernels_device(
        dev,
        &cfg.arch,
        &task.pool_x,
        None,
        want,
        |_, _| {},
    )?)?;
    let test = pick(kernels_device(
        dev,
        &cfg.arch,
        &task.test_x,
        Some(&task.pool_x),
        want,
        |_, _| {},
    )?)?;
    Ok(measure::Kernels {
        pool,
        test,
        pool_y,
        test_y,
    })
}

/// The value in `slot`, built by `build` the first time.
fn ensure<T>(slot: &mut Option<T>, build: impl FnOnce() -> Result<T>) -> Result<&T> {
    if slot.is_none() {
        *slot = Some(build()?);
    }
    slot.as_ref()
        .ok_or_else(|| Error::invalid("internal: a value just built is missing"))
}

/// Runs the experiment on `task` and writes the report in `out`.
pub fn run(
    dev: &dyn Backend,
    cfg: &LearningCurvesConfig,
    task: &Task,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    cfg.check_sizes(task.pool())?;
    let started = std::time::Instant::now();
    let checkpoint = Checkpoint::open(
        out,
        &json!({"experiment": "learning-curves", "config": cfg}),
        resume,
    )?;
    let total = 2 + cfg.n.len() + cfg.widths.len() * cfg.finite_n.len();
    let bar = Progress::new(quiet, total as u64, "learning-curves");
    // The kernels, computed when a unit needs them (a merge needs none).
    let mut kernels: Option<measure::Kernels> = None;
    let mut kernel_s = 0.0;
    let mut kernels_of = |bar: &Progress| -> Result<measure::Kernels> {
        let t0 = std::time::Instant::now();
        let k = pool_kernels(dev, cfg, task)?;
        kernel_s = t0.elapsed().as_secs_f64();
        bar.step(format!(
            "kernels of {} + {} points",
            task.pool(),
            task.test_y.len()
        ));
        Ok(k)
    };
    // The pool's spectrum (checkpointed: the eigendecomposition is the slow
    // part); unit 0, needed only by the report.
    let spec_point = if checkpoint.mine("spectrum")? {
        match checkpoint.get("spectrum") {
            Some(v) => v,
            None => {
                let k = ensure(&mut kernels, || kernels_of(&bar))?;
                let t1 = std::time::Instant::now();
                let (ev, w) = spectrum::pool_spectrum(&k.pool, &task.pool_y)?;
                let v =
                    json!({"eigenvalues": ev, "weights": w, "seconds": t1.elapsed().as_secs_f64()});
                checkpoint.put("spectrum", &v)?;
                v
            }
        }
    } else {
        serde_json::Value::Null
    };
    let eigen_s = spec_point["seconds"].as_f64().unwrap_or(f64::NAN);
    bar.step(format!("spectrum of the pool ({eigen_s:.1} s)"));
    // Measurements at every n, then the finite networks.
    let degrees = tracked_degrees(task);
    let mut points = Vec::new();
    let t2 = std::time::Instant::now();
    for &n in &cfg.n {
        let key = format!("n{n}");
        if !checkpoint.mine(&key)? {
            bar.step(format!("n = {n}: another shard's"));
            continue;
        }
        let p = match checkpoint.get(&key) {
            Some(v) => v,
            None => {
                if super::interrupted() {
                    return report::partial(out, cfg, dev, &points);
                }
                let k = ensure(&mut kernels, || kernels_of(&bar))?;
                let v = measure::point(cfg, task, k, n, &degrees)?;
                checkpoint.put(&key, &v)?;
                v
            }
        };
        let m = crate::stats::mean(&super::floats(&p["test_mse"]));
        bar.step(format!("n = {n}: test MSE {m:.3e}"));
        points.push(p);
    }
    let measure_s = t2.elapsed().as_secs_f64();
    let mut finite = Vec::new();
    let t3 = std::time::Instant::now();
    for &w in &cfg.widths {
        for &n in &cfg.finite_n {
            let key = format!("w{w}-n{n}");
            if !checkpoint.mine(&key)? {
                bar.step(format!("width {w}, n = {n}: another shard's"));
                continue;
            }
            let p = match checkpoint.get(&key) {
                Some(v) => v,
                None => {
                    if super::interrupted() {
                        return report::partial(out, cfg, dev, &points);
                    }
                    let k = ensure(&mut kernels, || kernels_of(&bar))?;
                    let v = measure::finite_point(dev, cfg, task, k, w, n)?;
                    checkpoint.put(&key, &v)?;
                    v
                }
            };
            bar.step(format!("width {w}, n = {n}"));
            finite.push(p);
        }
    }
    let finite_s = t3.elapsed().as_secs_f64();
    bar.finish();
    if let Some(shard) = checkpoint.finish_shard()? {
        return Ok(shard);
    }
    let pool_modes = Modes::single(
        &super::floats(&spec_point["eigenvalues"]),
        &super::floats(&spec_point["weights"]),
    )?;
    let exact = match &task.target {
        Some(t) => {
            let d = task.d();
            let kmax = cfg.kmax.max(t.powers.len());
            let program = cfg.arch.kernel_program(d)?;
            let s = super::sphere::exact_spectrum(&program, cfg.get, d, kmax)?;
            let mut w = t.powers.clone();
            w.resize(kmax + 1, 0.0);
            Some((
                Modes::new(s.eigenvalues.clone(), s.multiplicity.clone(), w)?,
                s,
            ))
        }
        None => None,
    };
    let timing = json!({
        "kernel_s": kernel_s, "eigen_s": eigen_s, "kernel_regression_s": measure_s,
        "finite_s": finite_s, "total_s": started.elapsed().as_secs_f64(),
    });
    let r = report::Inputs {
        cfg,
        task,
        dev,
        points: &points,
        finite: &finite,
        pool: &pool_modes,
        exact: exact.as_ref(),
        degrees: &degrees,
        timing,
    };
    report::write(out, &r)
}
