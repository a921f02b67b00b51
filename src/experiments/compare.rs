//! `widenet compare`: finite networks trained by gradient descent against the
//! infinite-width prediction at the same time `t = lr * steps`, across widths.
//!
//! Measured per width (members = seeds):
//! - the empirical NTK and NNGP at initialization against the analytic ones
//!   (relative Frobenius distance; theory: ~ width^-1/2);
//! - each member's deviation from the linearized infinite-width dynamics
//!   started from its own initialization (theory: ~ width^-1/2);
//! - the movement of each member's NTK during training (theory, ntk
//!   parameterization: ~ width^-1/2);
//! - the ensemble mean against the infinite-width mean, and the spread across
//!   members against the predicted covariance;
//! - train and test loss over training against the infinite-width expected loss.

use super::data::Split;
use super::plot::{Series, plot};
use super::{OutDir, Slope, mean, progress, seed_slope, std};
use crate::activation::Activation;
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::kernel::{Architecture, Want, kernels_f64};
use crate::matrix::Matrix;
use crate::mlp::empirical::{empirical_kernels, kernel_distance};
use crate::mlp::ensemble::Ensemble;
use crate::mlp::params::Params;
use crate::mlp::train::{Schedule, TrainConfig, Trainer};
use crate::mlp::{MlpSpec, Parameterization};
use crate::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use faer::Side;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of `widenet compare`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareConfig {
    pub widths: Vec<usize>,
    /// Members (seeds) per width.
    pub seeds: usize,
    pub depth: usize,
    pub activation: String,
    pub w_std: f64,
    pub b_std: f64,
    /// Input dimension of the synthetic task.
    pub d_in: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub steps: usize,
    /// Learning rate; default `n_train / lambda_max` of the analytic train NTK.
    pub lr: Option<f64>,
    /// Points on the loss curves.
    pub curve_points: usize,
    pub seed: u64,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            widths: vec![64, 128, 256, 512, 1024, 2048],
            seeds: 16,
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

    pub fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 || self.widths.contains(&0) {
            return Err(Error::invalid(
                "--widths needs at least two widths, each at least 1",
            ));
        }
        for (name, v) in [
            ("--seeds", self.seeds),
            ("--n-train", self.n_train),
            ("--n-test", self.n_test),
            ("--steps", self.steps),
            ("--curve-points", self.curve_points),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.seeds < 2 {
            return Err(Error::invalid(
                "--seeds must be at least 2 (spread and slope errors come from the seeds)",
            ));
        }
        if let Some(lr) = self.lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::invalid(format!("--lr must be positive, got {lr}")));
            }
        }
        let act = Activation::parse(&self.activation)?;
        if !act.has_kernel() {
            return Err(Error::invalid(format!(
                "activation '{act}' has no closed-form kernel to compare with"
            )));
        }
        Ok(())
    }
}

fn block(k: &Matrix, r0: usize, r1: usize, c0: usize, c1: usize) -> Matrix {
    let mut out = Matrix::zeros(r1 - r0, c1 - c0);
    for i in r0..r1 {
        out.data[(i - r0) * (c1 - c0)..(i - r0 + 1) * (c1 - c0)].copy_from_slice(&k.row(i)[c0..c1]);
    }
    out
}

fn stack(a: &Matrix<f32>, b: &Matrix<f32>) -> Matrix<f32> {
    let mut data = a.data.clone();
    data.extend_from_slice(&b.data);
    Matrix {
        rows: a.rows + b.rows,
        cols: a.cols,
        data,
    }
}

fn mse(f: &[f64], y: &[f32]) -> f64 {
    f.iter()
        .zip(y)
        .map(|(a, b)| (a - *b as f64).powi(2))
        .sum::<f64>()
        / (2.0 * y.len() as f64)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
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
    let activation = Activation::parse(&cfg.activation)?;
    let (ntr, nte) = (data.x_train.rows, data.x_test.rows);
    let d_in = data.x_train.cols;
    if data.y_train.cols != 1 || data.y_test.cols != 1 {
        return Err(Error::invalid(
            "compare needs one output (y of shape [n] or [n, 1])",
        ));
    }
    let arch = Architecture {
        depth: cfg.depth,
        activation,
        w_std: cfg.w_std,
        b_std: cfg.b_std,
        parameterization: crate::kernel::Parameterization::Ntk,
        width: 1,
        d_in,
    };
    let z = stack(&data.x_train, &data.x_test);
    let ntot = z.rows;
    let k = kernels_f64(&arch, &z.to_f64(), None, Want::BOTH)?;
    let (knngp, kntk) = (
        k.nngp.ok_or_else(|| Error::invalid("nngp missing"))?,
        k.ntk.ok_or_else(|| Error::invalid("ntk missing"))?,
    );
    let analytic_ntk: Vec<f32> = kntk.data.iter().map(|&v| v as f32).collect();
    let analytic_nngp: Vec<f32> = knngp.data.iter().map(|&v| v as f32).collect();
    let pk_test = PredictKernels {
        dd_nngp: block(&knngp, 0, ntr, 0, ntr),
        dd_ntk: Some(block(&kntk, 0, ntr, 0, ntr)),
        td_nngp: block(&knngp, ntr, ntot, 0, ntr),
        td_ntk: Some(block(&kntk, ntr, ntot, 0, ntr)),
        tt_nngp: Some(block(&knngp, ntr, ntot, ntr, ntot)),
    };
    let pk_train = PredictKernels {
        td_nngp: pk_test.dd_nngp.clone(),
        td_ntk: pk_test.dd_ntk.clone(),
        tt_nngp: Some(pk_test.dd_nngp.clone()),
        ..pk_test.clone()
    };
    // Eigen-decomposition of the train NTK: the step size and the linearized dynamics.
    let dd_ntk = block(&kntk, 0, ntr, 0, ntr).to_faer();
    let eig = dd_ntk
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Numerical(format!("eigendecomposition of the train NTK: {e:?}")))?;
    let lam: Vec<f64> = (0..ntr).map(|i| eig.S()[i]).collect();
    let v = eig.U().to_owned();
    let lam_max = lam.iter().cloned().fold(0.0, f64::max);
    let big_n = ntr as f64;
    let lr = cfg.lr.unwrap_or(big_n / lam_max);
    let t_final = lr * cfg.steps as f64;
    let mut curve_steps: Vec<usize> = (0..=cfg.curve_points)
        .map(|i| i * cfg.steps / cfg.curve_points)
        .collect();
    curve_steps.dedup();
    // Infinite-width expected losses along the way.
    let y_train64 = data.y_train.to_f64();
    let expected = |pk: &PredictKernels, y: &Matrix<f32>, s: usize| -> Result<f64> {
        let spec = PredictSpec {
            get: Get::Ntk,
            t: Some(s as f64),
            learning_rate: lr,
            diag_reg: 0.0,
        };
        let p = gradient_descent_mse_ensemble(pk, &y_train64, &spec)?;
        let cov = p.cov.ok_or_else(|| Error::invalid("covariance missing"))?;
        let tr: f64 = (0..cov.rows).map(|i| cov.at(i, i)).sum();
        Ok(mse(&p.mean.data, &y.data) + tr / (2.0 * y.rows as f64))
    };
    let inf_train: Vec<f64> = curve_steps
        .iter()
        .map(|&s| expected(&pk_train, &data.y_train, s))
        .collect::<Result<_>>()?;
    let inf_test: Vec<f64> = curve_steps
        .iter()
        .map(|&s| expected(&pk_test, &data.y_test, s))
        .collect::<Result<_>>()?;
    let final_pred = gradient_descent_mse_ensemble(
        &pk_test,
        &data.y_train.to_f64(),
        &PredictSpec {
            get: Get::Ntk,
            t: Some(cfg.steps as f64),
            learning_rate: lr,
            diag_reg: 0.0,
        },
    )?;
    let mu_inf = final_pred.mean.data.clone();
    let cov_inf = final_pred
        .cov
        .ok_or_else(|| Error::invalid("covariance missing"))?;
    let var_inf: Vec<f64> = (0..nte).map(|i| cov_inf.at(i, i)).collect();
    // g_i = (1 - exp(-lambda_i t / N)) / lambda_i, the linearized dynamics' gains.
    let gains: Vec<f64> = lam
        .iter()
        .map(|&l| {
            if l > 1e-12 * lam_max {
                -(-l * t_final / big_n).exp_m1() / l
            } else {
                t_final / big_n
            }
        })
        .collect();
    let td_ntk = block(&kntk, ntr, ntot, 0, ntr).to_faer();
    let lin_op =
        &td_ntk * (faer::Mat::from_fn(ntr, ntr, |i, j| v[(i, j)] * gains[j]) * v.transpose());

    let bar = progress(quiet, (cfg.widths.len() * cfg.steps) as u64, "compare");
    let e = cfg.seeds;
    let fingerprint = json!({"experiment": "compare", "config": cfg, "data": {"x_train": data.x_train.data, "y_train": data.y_train.data, "x_test": data.x_test.data}});
    let checkpoint = super::Checkpoint::open(out, &fingerprint, resume)?;
    let mut widths_json: Vec<serde_json::Value> = Vec::new();
    let mut interrupted = false;
    for &width in &cfg.widths {
        if let Some(done) = checkpoint.get(&format!("width-{width}")) {
            bar.inc(cfg.steps as u64);
            widths_json.push(done);
            continue;
        }
        if super::interrupted() {
            interrupted = true;
            break;
        }
        bar.set_message(format!("width {width}"));
        let measure = || -> Result<Option<serde_json::Value>> {
            let spec = MlpSpec {
                d_in,
                width,
                depth: cfg.depth,
                d_out: 1,
                activation,
                parameterization: Parameterization::Ntk,
                w_std: cfg.w_std,
                b_std: cfg.b_std,
                base_width: width,
                ensemble: e,
            };
            let mut ens = Ensemble::new(dev, &Params::init(&spec, cfg.seed)?)?;
            let k0 = empirical_kernels(&mut ens, &z)?;
            let n2 = ntot * ntot;
            let ntk0: Vec<&[f32]> = (0..e).map(|m| &k0.ntk[m * n2..(m + 1) * n2]).collect();
            let ntk_init: Vec<f64> = ntk0
                .iter()
                .map(|k| kernel_distance(k, &analytic_ntk))
                .collect();
            let nngp_init: Vec<f64> = (0..e)
                .map(|m| kernel_distance(&k0.nngp[m * n2..(m + 1) * n2], &analytic_nngp))
                .collect();
            // The points' buffers, uploaded and allocated once per width and
            // reused at every point of the curves.
            let zs = dev.upload(&z.data)?;
            let mut zact = ens.activations(ntot)?;
            let outputs = |ens: &Ensemble<'_>,
                           act: &mut crate::mlp::ensemble::Activations|
             -> Result<Vec<f64>> {
                ens.forward(&zs, act)?;
                Ok(dev
                    .read(&act.z[cfg.depth])?
                    .into_iter()
                    .map(f64::from)
                    .collect())
            };
            let f0 = outputs(&ens, &mut zact)?;
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
            let mut trainer = Trainer::new(&mut ens, &data.x_train, &data.y_train, &tcfg)?;
            let mut train_curve = Vec::new();
            let mut test_curve = Vec::new();
            let mut f_now = f0.clone();
            for s in 0..=cfg.steps {
                if curve_steps.contains(&s) {
                    f_now = outputs(trainer.ensemble(), &mut zact)?;
                    let member = |m: usize| &f_now[m * ntot..(m + 1) * ntot];
                    train_curve.push(mean(
                        &(0..e)
                            .map(|m| mse(&member(m)[..ntr], &data.y_train.data))
                            .collect::<Vec<_>>(),
                    ));
                    test_curve.push(mean(
                        &(0..e)
                            .map(|m| mse(&member(m)[ntr..], &data.y_test.data))
                            .collect::<Vec<_>>(),
                    ));
                }
                if s < cfg.steps {
                    if super::interrupted() {
                        return Ok(None);
                    }
                    trainer.step()?;
                    bar.inc(1);
                }
            }
            let diverged = trainer.diverged_at()?;
            let k1 = empirical_kernels(trainer.ensemble(), &z)?;
            let movement: Vec<f64> = (0..e)
                .map(|m| kernel_distance(&k1.ntk[m * n2..(m + 1) * n2], ntk0[m]))
                .collect();
            // Member deviation from its own linearized infinite-width trajectory.
            let mut deviation = Vec::with_capacity(e);
            for m in 0..e {
                let f0m = &f0[m * ntot..(m + 1) * ntot];
                let resid = faer::Mat::from_fn(ntr, 1, |i, _| data.y_train.data[i] as f64 - f0m[i]);
                let delta = &lin_op * resid;
                let flin: Vec<f64> = (0..nte).map(|i| f0m[ntr + i] + delta[(i, 0)]).collect();
                let ft = &f_now[m * ntot + ntr..(m + 1) * ntot];
                let diff: Vec<f64> = ft.iter().zip(&flin).map(|(a, b)| a - b).collect();
                deviation.push(norm(&diff) / norm(&flin));
            }
            let test_of = |m: usize| &f_now[m * ntot + ntr..(m + 1) * ntot];
            let ens_mean: Vec<f64> = (0..nte)
                .map(|i| mean(&(0..e).map(|m| test_of(m)[i]).collect::<Vec<_>>()))
                .collect();
            let ens_var: Vec<f64> = (0..nte)
                .map(|i| std(&(0..e).map(|m| test_of(m)[i]).collect::<Vec<_>>()).powi(2))
                .collect();
            let mean_err: Vec<f64> = ens_mean.iter().zip(&mu_inf).map(|(a, b)| a - b).collect();
            let mean_rel_error = norm(&mean_err) / norm(&mu_inf);
            let var_ratio = mean(&ens_var) / mean(&var_inf);
            Ok(Some(json!({
                "width": width,
                "ntk_init_distance": {"mean": mean(&ntk_init), "per_seed": ntk_init},
                "nngp_init_distance": {"mean": mean(&nngp_init), "per_seed": nngp_init},
                "member_deviation": {"mean": mean(&deviation), "per_seed": deviation},
                "ntk_movement": {"mean": mean(&movement), "per_seed": movement},
                "mean_rel_error": mean_rel_error,
                "spread_variance": mean(&ens_var),
                "predicted_variance": mean(&var_inf),
                "variance_ratio": var_ratio,
                "train_loss_curve": train_curve,
                "test_loss_curve": test_curve,
                "diverged": diverged.iter().filter(|d| d.is_some()).count(),
                "test_mean": ens_mean,
                "test_std": ens_var.iter().map(|v| v.sqrt()).collect::<Vec<_>>(),
            })))
        };
        match measure()? {
            Some(v) => {
                checkpoint.put(&format!("width-{width}"), &v)?;
                widths_json.push(v);
            }
            None => {
                interrupted = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    // Everything below is derived from the per-width points (fresh or resumed).
    let done_widths: Vec<usize> = widths_json
        .iter()
        .filter_map(|w| w["width"].as_u64().map(|v| v as usize))
        .collect();
    let mut per_seed: [Vec<Vec<f64>>; 4] = Default::default(); // ntk_init, member_dev, movement, nngp_init: [seed][width]
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
                        super::floats(&w[key]["per_seed"])
                            .get(m)
                            .copied()
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect();
    }
    let curves: Vec<(usize, Vec<f64>, Vec<f64>)> = widths_json
        .iter()
        .zip(&done_widths)
        .map(|(w, &wd)| {
            (
                wd,
                super::floats(&w["train_loss_curve"]),
                super::floats(&w["test_loss_curve"]),
            )
        })
        .collect();
    let final_means: Vec<(usize, Vec<f64>, Vec<f64>)> = widths_json
        .iter()
        .zip(&done_widths)
        .map(|(w, &wd)| {
            (
                wd,
                super::floats(&w["test_mean"]),
                super::floats(&w["test_std"])
                    .iter()
                    .map(|s| s * s)
                    .collect(),
            )
        })
        .collect();
    let xs: Vec<f64> = done_widths.iter().map(|&w| w as f64).collect();
    let slope = |i: usize| seed_slope(&xs, &per_seed[i]);
    let slopes = [
        ("ntk_init_distance", slope(0)),
        ("member_deviation", slope(1)),
        ("ntk_movement", slope(2)),
        ("nngp_init_distance", slope(3)),
    ];
    let slopes_json: serde_json::Map<String, serde_json::Value> = slopes
        .iter()
        .map(|(n, s)| (n.to_string(), json!(s)))
        .collect();
    let times: Vec<f64> = curve_steps.iter().map(|&s| s as f64 * lr).collect();
    let report = json!({
        "experiment": "compare",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "device": dev.info(),
        "data": {"n_train": ntr, "n_test": nte, "d_in": d_in},
        "lr": lr,
        "t_final": t_final,
        "lambda_max": lam_max,
        "curve_steps": curve_steps,
        "curve_times": times,
        "infinite": {"train_loss_curve": inf_train, "test_loss_curve": inf_test, "test_mean": mu_inf, "test_variance": var_inf},
        "widths": widths_json,
        "slopes": slopes_json,
        "interrupted": interrupted,
    });
    write_plots(
        out,
        &xs,
        &per_seed,
        &slopes,
        &times,
        &curves,
        &inf_train,
        &inf_test,
        &mu_inf,
        &var_inf,
        &final_means,
    )?;
    out.write_json(&report)?;
    out.write_md(&markdown(cfg, &report, &slopes, lr, t_final))?;
    if interrupted {
        return Err(Error::Interrupted(out.path.display().to_string()));
    }
    Ok(report)
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

#[allow(clippy::too_many_arguments)]
fn write_plots(
    out: &OutDir,
    xs: &[f64],
    per_seed: &[Vec<Vec<f64>>; 4],
    slopes: &[(&str, Option<Slope>); 4],
    times: &[f64],
    curves: &[(usize, Vec<f64>, Vec<f64>)],
    inf_train: &[f64],
    inf_test: &[f64],
    mu: &[f64],
    var: &[f64],
    finals: &[(usize, Vec<f64>, Vec<f64>)],
) -> Result<()> {
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

fn markdown(
    cfg: &CompareConfig,
    r: &serde_json::Value,
    slopes: &[(&str, Option<Slope>); 4],
    lr: f64,
    t: f64,
) -> String {
    let mut s = String::new();
    s.push_str("# widenet compare\n\n");
    s.push_str(&format!(
        "Networks of depth {} ({} activation, ntk parameterization, W_std {}, b_std {}), {} seeds per width, trained by full-batch gradient descent on MSE with learning rate {:.4} for {} steps (t = {:.2}), against the infinite-width NTK prediction at the same t. Device: {}.\n\n",
        cfg.depth, cfg.activation, cfg.w_std, cfg.b_std, cfg.seeds, lr, cfg.steps, t, r["device"]["name"].as_str().unwrap_or("?")
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
