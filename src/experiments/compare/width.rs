//! One width of the comparison: an ensemble (one member per seed) measured
//! at initialization, trained by full-batch gradient descent while its loss
//! curves are sampled, and measured again against the theory.

use super::theory::Theory;
use super::{CompareConfig, mse, norm};
use crate::arch::Arch;
use crate::backend::{Backend, Loss, Rule};
use crate::error::{Error, Result};
use crate::experiments::data::Split;
use crate::net::empirical::{empirical_kernels, kernel_distance};
use crate::net::ensemble::{Activations, Ensemble};
use crate::net::train::{Schedule, TrainConfig, Trainer};
use crate::net::{NetSpec, Params};
use crate::stats::{mean, std};
use serde_json::json;

/// Every member's outputs on the training and test points.
fn outputs(
    dev: &dyn Backend,
    ens: &Ensemble<'_>,
    zs: &crate::backend::Buffer,
    act: &mut Activations,
) -> Result<Vec<f64>> {
    ens.forward(zs, act)?;
    Ok(dev.read(act.output())?.into_iter().map(f64::from).collect())
}

/// Measures one width; `None` when interrupted.
pub(super) fn measure(
    dev: &dyn Backend,
    cfg: &CompareConfig,
    arch: &Arch,
    width: usize,
    data: &Split,
    th: &Theory,
    bar: &indicatif::ProgressBar,
) -> Result<Option<serde_json::Value>> {
    let (e, ntr, nte) = (cfg.seeds, th.ntr, th.nte);
    let ntot = ntr + nte;
    let spec = NetSpec {
        arch: arch.clone(),
        d_in: data.x_train.cols,
        ensemble: e,
        parameterization: None,
        base_width: width,
    };
    let mut ens = Ensemble::new(dev, &Params::init(&spec, cfg.seed)?)?;
    // At initialization: the empirical kernels against the analytic ones.
    let k0 = empirical_kernels(&mut ens, &th.z)?;
    let n2 = ntot * ntot;
    let ntk0: Vec<&[f32]> = (0..e).map(|m| &k0.ntk[m * n2..(m + 1) * n2]).collect();
    let ntk_init: Vec<f64> = ntk0
        .iter()
        .map(|k| kernel_distance(k, &th.analytic_ntk))
        .collect();
    let nngp0 = k0
        .nngp
        .as_ref()
        .ok_or_else(|| Error::invalid("compare needs a network that ends with a Dense layer"))?;
    let nngp_init: Vec<f64> = (0..e)
        .map(|m| kernel_distance(&nngp0[m * n2..(m + 1) * n2], &th.analytic_nngp))
        .collect();
    // The points' buffers, uploaded and allocated once per width and
    // reused at every point of the curves.
    let zs = dev.upload(&th.z.data)?;
    let mut zact = ens.activations(ntot)?;
    let f0 = outputs(dev, &ens, &zs, &mut zact)?;
    let tcfg = TrainConfig {
        rule: Rule::Sgd,
        lr: vec![th.lr],
        steps: cfg.steps,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: usize::MAX / 2,
        seed: cfg.seed,
    };
    // Training, with the loss curves sampled on the way.
    let mut trainer = Trainer::new(&mut ens, &data.x_train, &data.y_train, &tcfg)?;
    let mut train_curve = Vec::new();
    let mut test_curve = Vec::new();
    let mut f_now = f0.clone();
    for s in 0..=cfg.steps {
        if th.curve_steps.contains(&s) {
            f_now = outputs(dev, trainer.ensemble(), &zs, &mut zact)?;
            let member = |m: usize| &f_now[m * ntot..(m + 1) * ntot];
            let losses = |r: std::ops::Range<usize>, y: &[f32]| -> f64 {
                mean(
                    &(0..e)
                        .map(|m| mse(&member(m)[r.clone()], y))
                        .collect::<Vec<_>>(),
                )
            };
            train_curve.push(losses(0..ntr, &data.y_train.data));
            test_curve.push(losses(ntr..ntot, &data.y_test.data));
        }
        if s < cfg.steps {
            if crate::experiments::interrupted() {
                return Ok(None);
            }
            trainer.step()?;
            bar.inc(1);
        }
    }
    // After training: kernel movement, deviation from the linearized
    // dynamics, the ensemble's mean and spread.
    let diverged = trainer.diverged_at()?;
    let k1 = empirical_kernels(trainer.ensemble(), &th.z)?;
    let movement: Vec<f64> = (0..e)
        .map(|m| kernel_distance(&k1.ntk[m * n2..(m + 1) * n2], ntk0[m]))
        .collect();
    let mut deviation = Vec::with_capacity(e);
    for m in 0..e {
        let f0m = &f0[m * ntot..(m + 1) * ntot];
        let resid = faer::Mat::from_fn(ntr, 1, |i, _| data.y_train.data[i] as f64 - f0m[i]);
        let delta = &th.lin_op * resid;
        let flin: Vec<f64> = (0..nte).map(|i| f0m[ntr + i] + delta[(i, 0)]).collect();
        let ft = &f_now[m * ntot + ntr..(m + 1) * ntot];
        let diff: Vec<f64> = ft.iter().zip(&flin).map(|(a, b)| a - b).collect();
        deviation.push(norm(&diff) / norm(&flin));
    }
    let test_of = |m: usize| &f_now[m * ntot + ntr..(m + 1) * ntot];
    let across = |i: usize| (0..e).map(|m| test_of(m)[i]).collect::<Vec<_>>();
    let ens_mean: Vec<f64> = (0..nte).map(|i| mean(&across(i))).collect();
    let ens_var: Vec<f64> = (0..nte).map(|i| std(&across(i)).powi(2)).collect();
    let mean_err: Vec<f64> = ens_mean
        .iter()
        .zip(&th.mu_inf)
        .map(|(a, b)| a - b)
        .collect();
    Ok(Some(json!({
        "width": width,
        "ntk_init_distance": {"mean": mean(&ntk_init), "per_seed": ntk_init},
        "nngp_init_distance": {"mean": mean(&nngp_init), "per_seed": nngp_init},
        "member_deviation": {"mean": mean(&deviation), "per_seed": deviation},
        "ntk_movement": {"mean": mean(&movement), "per_seed": movement},
        "mean_rel_error": norm(&mean_err) / norm(&th.mu_inf),
        // The Monte Carlo floor of that error: the standard error of a mean
        // of e members around its expectation, from the measured variance.
        "mean_error_floor": (ens_var.iter().sum::<f64>() / e as f64).sqrt() / norm(&th.mu_inf),
        "spread_variance": mean(&ens_var),
        "predicted_variance": mean(&th.var_inf),
        "variance_ratio": mean(&ens_var) / mean(&th.var_inf),
        "train_loss_curve": train_curve,
        "test_loss_curve": test_curve,
        "diverged": diverged.iter().filter(|d| d.is_some()).count(),
        "test_mean": ens_mean,
        "test_std": ens_var.iter().map(|v| v.sqrt()).collect::<Vec<_>>(),
    })))
}
