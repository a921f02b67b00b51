//! `widenet drift`: lazy against rich training. The relative change over
//! training of each member's empirical NTK and of its last hidden features,
//! against width under the `ntk` parameterization (the lazy regime of Jacot
//! et al. 2018; theory: the features move like width^-1/2, the NTK like
//! 1/width by perturbation theory) and under muP (theory: order one at every
//! width, Yang and Hu 2021), and against an output scale alpha in the style of
//! Chizat, Oyallon and Bach (2019): training `alpha f` on targets `y` is
//! training `f` on `y / alpha` with the loss divided by `alpha^2`; centred at
//! initialization, each member learns `y / alpha + f(x; w0)` (theory: movement
//! ~ 1/alpha).

mod report;

use super::data::teacher;
use super::plot::{plot, scaling};
use super::{OutDir, mean, progress, seed_slope};
use crate::activation::Activation;
use crate::arch::Parameterization;
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::net::empirical::{effective_ntk, kernel_distance};
use crate::net::ensemble::Ensemble;
use crate::net::params::Params;
use crate::net::train::{Schedule, TrainConfig, Trainer};
use crate::net::{MlpSpec, NetSpec};
use report::{markdown, power_text, theory};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet drift`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DriftConfig {
    /// Widths of the sweep (the first is muP's base width).
    pub widths: Vec<usize>,
    /// Seeds per point.
    pub seeds: usize,
    /// The architecture (hidden Dense layers set to each width); `None`
    /// builds it from the shorthand (`depth`, `activation`).
    pub arch: Option<crate::arch::Arch>,
    /// Shorthand: hidden layers.
    pub depth: usize,
    /// The nonlinearity (see `Activation::parse`).
    pub activation: String,
    /// Input dimension of the synthetic task.
    pub d_in: usize,
    /// Training points.
    pub n_train: usize,
    /// Training steps.
    pub steps: usize,
    /// Output scales of the lazy-training sweep.
    pub alphas: Vec<f64>,
    /// Width of the output-scale sweep.
    pub alpha_width: usize,
    /// Seed of the data and initializations.
    pub seed: u64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            widths: vec![64, 128, 256, 512, 1024],
            seeds: 4,
            arch: None,
            depth: 2,
            activation: "relu".into(),
            d_in: 8,
            n_train: 32,
            steps: 100,
            alphas: vec![0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
            alpha_width: 256,
            seed: 0,
        }
    }
}

impl DriftConfig {
    /// A small run for tests and a first look (seconds).
    pub fn quick() -> Self {
        DriftConfig {
            widths: vec![32, 128, 512],
            seeds: 4,
            steps: 40,
            n_train: 16,
            alphas: vec![0.5, 2.0, 8.0],
            alpha_width: 128,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs.
    pub fn large() -> Self {
        DriftConfig {
            widths: vec![256, 512, 1024, 2048, 4096, 8192],
            seeds: 16,
            steps: 500,
            n_train: 128,
            alpha_width: 2048,
            ..Default::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 || self.widths.contains(&0) || self.alpha_width == 0 {
            return Err(Error::invalid(
                "widths needs at least two widths, each at least 1",
            ));
        }
        if self.seeds < 2
            || self.steps == 0
            || self.n_train == 0
            || self.depth == 0
            || self.d_in == 0
        {
            return Err(Error::invalid(
                "seeds must be at least 2; steps, n-train, depth and d-in at least 1",
            ));
        }
        if self.alphas.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
            return Err(Error::invalid("alphas must be positive"));
        }
        Activation::parse(&self.activation)?;
        Ok(())
    }
}

fn spec(cfg: &DriftConfig, width: usize, p: Parameterization, e: usize) -> Result<NetSpec> {
    let mlp = MlpSpec {
        d_in: cfg.d_in,
        width,
        depth: cfg.depth,
        d_out: 1,
        activation: Activation::parse(&cfg.activation)?,
        parameterization: p,
        w_std: 1.4,
        b_std: 0.1,
        base_width: cfg.widths[0],
        ensemble: e,
    };
    Ok(match &cfg.arch {
        None => mlp.net(),
        Some(a) => NetSpec {
            arch: a.with_width(width),
            parameterization: Some(p),
            ..mlp.net()
        },
    })
}

/// Half the largest stable gradient-descent rate at the base width: one step
/// moves the outputs by `-(lr / N) Theta_eff (f - y)`, stable below
/// `lr = 2 N / lambda_max(Theta_eff)`; take `N / (2 lambda_max)` over the seeds.
fn pick_lr(
    dev: &dyn Backend,
    cfg: &DriftConfig,
    p: Parameterization,
    x: &Matrix<f32>,
    _y: &Matrix<f32>,
) -> Result<f64> {
    let s = spec(cfg, cfg.widths[0], p, cfg.seeds)?;
    let mut ens = Ensemble::new(dev, &Params::init(&s, cfg.seed)?)?;
    let k = crate::net::empirical::effective_ntk(&mut ens, x)?;
    let n = x.rows;
    let mut lam_max: f64 = 0.0;
    for m in 0..s.ensemble {
        let mat = faer::Mat::from_fn(n, n, |i, j| k.ntk[(m * n + i) * n + j] as f64);
        let ev = mat
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .map_err(|e| Error::Numerical(format!("{e:?}")))?;
        lam_max = ev.iter().cloned().fold(lam_max, f64::max);
    }
    if lam_max.is_nan() || lam_max <= 0.0 {
        return Err(Error::Numerical("the effective NTK vanished".into()));
    }
    Ok(n as f64 / (2.0 * lam_max))
}

/// Relative movement of the effective NTK (the kernel gradient descent
/// follows) and of the last hidden features of every member over a run.
fn movement(
    dev: &dyn Backend,
    params: &Params,
    seed: u64,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    lr: f64,
    steps: usize,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let s = &params.spec;
    let mut ens = Ensemble::new(dev, params)?;
    let (e, n) = (s.ensemble, x.rows);
    let w = s.dense_layers().last().map_or(0, |l| l.fan_in);
    let k0 = effective_ntk(&mut ens, x)?;
    let features = |ens: &Ensemble<'_>| -> Result<Vec<f32>> {
        let xs = dev.upload(&x.data)?;
        let mut act = ens.activations(n)?;
        ens.forward(&xs, &mut act)?;
        let h = ens
            .features(&act)
            .ok_or_else(|| Error::invalid("drift needs a hidden layer before the readout"))?;
        dev.read(h)
    };
    let h0 = features(&ens)?;
    let c = TrainConfig {
        rule: Rule::Sgd,
        lr: vec![lr],
        steps,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: usize::MAX / 2,
        seed,
    };
    let mut t = Trainer::new(&mut ens, x, y, &c)?;
    for _ in 0..steps {
        t.step()?;
    }
    let final_loss = t.full_loss()?;
    let k1 = effective_ntk(t.ensemble(), x)?;
    let h1 = features(t.ensemble())?;
    let n2 = n * n;
    let ntk: Vec<f64> = (0..e)
        .map(|m| kernel_distance(&k1.ntk[m * n2..(m + 1) * n2], &k0.ntk[m * n2..(m + 1) * n2]))
        .collect();
    let per = n * w;
    let feat: Vec<f64> = (0..e)
        .map(|m| kernel_distance(&h1[m * per..(m + 1) * per], &h0[m * per..(m + 1) * per]))
        .collect();
    Ok((ntk, feat, final_loss))
}

/// Runs the measurements and writes the report.
pub fn run(
    dev: &dyn Backend,
    cfg: &DriftConfig,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let started = std::time::Instant::now();
    let checkpoint =
        super::Checkpoint::open(out, &json!({"experiment": "drift", "config": cfg}), resume)?;
    let mut done_points: Vec<serde_json::Value> = Vec::new();
    // On Ctrl-C: a report of the points finished so far.
    let partial = |done: &[serde_json::Value]| -> Result<serde_json::Value> {
        let report = json!({"experiment": "drift", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "interrupted": true, "points": done});
        out.write_json(&report)?;
        out.write_md(&format!(
            "# widenet drift (interrupted)\n\n{} of {} points finished; they are in report.json and `points/`. Rerun with `--resume --out {}` to finish.\n",
            done.len(),
            2 * cfg.widths.len() + cfg.alphas.len(),
            out.path.display()
        ))?;
        Err(Error::Interrupted(out.path.display().to_string()))
    };
    let data = teacher(cfg.d_in, cfg.n_train, 1, cfg.seed);
    let (x, y) = (&data.x_train, &data.y_train);
    let xs: Vec<f64> = cfg.widths.iter().map(|&w| w as f64).collect();
    let bar = progress(
        quiet,
        (2 * cfg.widths.len() + cfg.alphas.len()) as u64,
        "drift",
    );
    let mut by_param = Vec::new();
    let mut plot_series = Vec::new();
    for p in [Parameterization::Ntk, Parameterization::Mup] {
        let lr = pick_lr(dev, cfg, p, x, y)?;
        let mut ntk_seeds = vec![Vec::new(); cfg.seeds];
        let mut feat_seeds = vec![Vec::new(); cfg.seeds];
        let mut rows = Vec::new();
        for &w in &cfg.widths {
            bar.set_message(format!("{} width {w}", p.name()));
            let key = format!("{}-w{w}", p.name());
            if !checkpoint.mine(&key)? {
                bar.inc(1);
                continue;
            }
            let point = match checkpoint.get(&key) {
                Some(v) => v,
                None => {
                    if super::interrupted() {
                        return partial(&done_points);
                    }
                    let params = Params::init(&spec(cfg, w, p, cfg.seeds)?, cfg.seed)?;
                    let (ntk, feat, loss) = movement(dev, &params, cfg.seed, x, y, lr, cfg.steps)?;
                    let v = json!({"key": key, "ntk": ntk, "feat": feat, "loss": loss});
                    checkpoint.put(&key, &v)?;
                    v
                }
            };
            let (ntk, feat, loss) = (
                super::floats(&point["ntk"]),
                super::floats(&point["feat"]),
                super::floats(&point["loss"]),
            );
            done_points.push(point);
            for (s, v) in ntk_seeds.iter_mut().zip(&ntk) {
                s.push(*v);
            }
            for (s, v) in feat_seeds.iter_mut().zip(&feat) {
                s.push(*v);
            }
            rows.push(json!({"width": w, "ntk_movement": {"mean": mean(&ntk), "per_seed": ntk}, "feature_movement": {"mean": mean(&feat), "per_seed": feat}, "final_loss": mean(&loss)}));
            bar.inc(1);
        }
        if rows.len() < cfg.widths.len() {
            continue; // a shard: the summary needs every width
        }
        let sn = seed_slope(&xs, &ntk_seeds);
        let sf = seed_slope(&xs, &feat_seeds);
        let column = |v: &Vec<Vec<f64>>, i: usize| v.iter().map(|s| s[i]).collect::<Vec<_>>();
        let means = |v: &Vec<Vec<f64>>| -> Vec<(f64, f64)> {
            xs.iter()
                .enumerate()
                .map(|(i, &x)| (x, mean(&column(v, i))))
                .collect()
        };
        let errs = |v: &Vec<Vec<f64>>| -> Vec<f64> {
            (0..xs.len())
                .map(|i| crate::stats::std(&column(v, i)) / (v.len() as f64).sqrt())
                .collect()
        };
        let c = if matches!(p, Parameterization::Ntk) {
            0
        } else {
            2
        };
        for (what, seeds, fit, key) in [
            ("NTK movement", &ntk_seeds, sn, "ntk_movement"),
            ("feature movement", &feat_seeds, sf, "feature_movement"),
        ] {
            let power = theory(p, key).0;
            plot_series.extend(scaling(
                &format!("{} {what}", p.name()),
                &means(seeds),
                Some(errs(seeds)),
                fit,
                (
                    power,
                    &format!("theory, {} {what}: {}", p.name(), power_text(power)),
                ),
                c + usize::from(key == "feature_movement"),
            ));
        }
        by_param.push(json!({"parameterization": p.name(), "lr": lr, "widths": rows, "slopes": {"ntk_movement": sn, "feature_movement": sf}}));
    }
    // Output-scale sweep at one width, ntk parameterization.
    let lr = pick_lr(dev, cfg, Parameterization::Ntk, x, y)?;
    let mut alpha_rows = Vec::new();
    let mut a_ntk = Vec::new();
    let mut a_feat = Vec::new();
    let all = Params::init(
        &spec(cfg, cfg.alpha_width, Parameterization::Ntk, cfg.seeds)?,
        cfg.seed,
    )?;
    for &alpha in &cfg.alphas {
        bar.set_message(format!("alpha {alpha}"));
        let key = format!("alpha-{alpha}");
        if !checkpoint.mine(&key)? {
            bar.inc(1);
            continue;
        }
        if let Some(v) = checkpoint.get(&key) {
            a_ntk.push(super::floats(&v["ntk"]));
            a_feat.push(super::floats(&v["feat"]));
            alpha_rows.push(json!({"alpha": alpha, "ntk_movement": mean(&super::floats(&v["ntk"])), "feature_movement": mean(&super::floats(&v["feat"]))}));
            done_points.push(v);
            bar.inc(1);
            continue;
        }
        if super::interrupted() {
            return partial(&done_points);
        }
        // Centred as Chizat and Bach: member m learns y / alpha + f_m(x; w0),
        // so the change it must make is y / alpha.
        let (mut ntk, mut feat) = (Vec::new(), Vec::new());
        for m in 0..cfg.seeds {
            let one = all.member(m)?;
            let f0 = crate::net::train::forward(&Ensemble::new(dev, &one)?, x)?;
            let ys = Matrix {
                rows: y.rows,
                cols: 1,
                data: y
                    .data
                    .iter()
                    .zip(&f0)
                    .map(|(v, f)| (*v as f64 / alpha) as f32 + f)
                    .collect(),
            };
            let (k, f, _) = movement(dev, &one, cfg.seed, x, &ys, lr, cfg.steps)?;
            ntk.extend(k);
            feat.extend(f);
        }
        let v = json!({"key": key, "ntk": ntk, "feat": feat});
        checkpoint.put(&key, &v)?;
        done_points.push(v);
        a_ntk.push(ntk.clone());
        a_feat.push(feat.clone());
        alpha_rows.push(
            json!({"alpha": alpha, "ntk_movement": mean(&ntk), "feature_movement": mean(&feat)}),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(shard) = checkpoint.finish_shard()? {
        return Ok(shard);
    }
    // [seed][alpha], as the width sweep's [seed][width].
    let by_seed = |v: &[Vec<f64>]| -> Vec<Vec<f64>> {
        (0..cfg.seeds)
            .map(|m| {
                v.iter()
                    .map(|a| a.get(m).copied().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect()
    };
    let (an, af) = (by_seed(&a_ntk), by_seed(&a_feat));
    let (alpha_fit, feat_alpha_fit) = (seed_slope(&cfg.alphas, &an), seed_slope(&cfg.alphas, &af));
    let alpha_slope = alpha_fit.map(|f| f.slope);
    let feat_alpha_slope = feat_alpha_fit.map(|f| f.slope);
    plot(
        &out.file("movement_vs_width.svg"),
        "Relative change over training against width: ntk (lazy) and muP (rich)",
        "width (hidden units)",
        "relative change over training",
        true,
        true,
        &plot_series,
    )?;
    let alpha_pts = |v: &[Vec<f64>]| -> (Vec<(f64, f64)>, Vec<f64>) {
        let pts = cfg
            .alphas
            .iter()
            .zip(v)
            .map(|(a, m)| (*a, mean(m)))
            .collect();
        let err = v
            .iter()
            .map(|m| crate::stats::std(m) / (m.len() as f64).sqrt())
            .collect();
        (pts, err)
    };
    let mut alpha_series = Vec::new();
    for (i, (what, v, fit)) in [
        ("NTK movement", &a_ntk, alpha_fit),
        ("feature movement", &a_feat, feat_alpha_fit),
    ]
    .into_iter()
    .enumerate()
    {
        let (pts, err) = alpha_pts(v);
        alpha_series.extend(scaling(
            what,
            &pts,
            Some(err),
            fit,
            (-1.0, &format!("theory, {what}: 1/alpha")),
            i,
        ));
    }
    plot(
        &out.file("movement_vs_alpha.svg"),
        &format!(
            "Relative change over training against output scale alpha (width {}, ntk)",
            cfg.alpha_width
        ),
        "output scale alpha",
        "relative change over training",
        true,
        true,
        &alpha_series,
    )?;
    let report = json!({
        "experiment": "drift", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(),
        "seconds": started.elapsed().as_secs_f64(),
        "parameterizations": by_param,
        "alpha_sweep": {"width": cfg.alpha_width, "lr": lr, "points": alpha_rows, "ntk_slope": alpha_slope, "feature_slope": feat_alpha_slope, "slopes": {"ntk_movement": alpha_fit, "feature_movement": feat_alpha_fit}},
    });
    out.write_json(&report)?;
    out.write_md(&markdown(cfg, &report, &out.path))?;
    Ok(report)
}
