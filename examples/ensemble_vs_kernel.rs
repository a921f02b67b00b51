//! Embeds widenet as a library: builds an ensemble of wide networks, trains it
//! by gradient descent on the device, and compares its predictions with the
//! analytic infinite-width prediction at the same training time.
//!
//! Run: `cargo run --release --example ensemble_vs_kernel`

use widenet::backend::{Loss, Rule};
use widenet::kernel::{Architecture, Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::mlp::ensemble::Ensemble;
use widenet::mlp::params::Params;
use widenet::mlp::train::{Schedule, TrainConfig, forward, train};
use widenet::mlp::{MlpSpec, Parameterization};
use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use widenet::{Activation, DeviceChoice};

fn main() -> widenet::Result<()> {
    // A device: the best GPU adapter, else the CPU backend.
    let dev = widenet::open(&DeviceChoice::from_flag_or_env(None)?)?;
    println!("device: {}", dev.describe());

    // A small regression task from the library's synthetic teacher.
    let data = widenet::experiments::data::teacher(4, 32, 8, 1);

    // 32 networks of width 1024, one hidden ReLU layer, ntk parameterization.
    let spec = MlpSpec {
        d_in: 4,
        width: 1024,
        depth: 1,
        d_out: 1,
        activation: Activation::RELU,
        parameterization: Parameterization::Ntk,
        w_std: 1.5,
        b_std: 0.1,
        base_width: 1024,
        ensemble: 32,
    };
    let mut ens = Ensemble::new(dev.as_ref(), &Params::init(&spec, 7)?)?;
    let (lr, steps) = (1.0, 100);
    let cfg = TrainConfig {
        rule: Rule::Sgd,
        lr: vec![lr],
        steps,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: 25,
        seed: 0,
    };
    let log = train(&mut ens, &data.x_train, &data.y_train, &cfg, |_, _| {})?;
    println!(
        "train loss: {:.3e} -> {:.3e} (mean over members)",
        mean(&log.loss[0]),
        mean(&log.final_loss)
    );

    // The infinite-width prediction at the same time t = lr * steps.
    let arch = Architecture {
        depth: 1,
        activation: Activation::RELU,
        w_std: 1.5,
        b_std: 0.1,
        parameterization: widenet::kernel::Parameterization::Ntk,
        width: 1024,
        d_in: 4,
    };
    let (xtr, xte) = (data.x_train.to_f64(), data.x_test.to_f64());
    let dd = kernels_f64(&arch, &xtr, None, Want::BOTH)?;
    let td = kernels_f64(&arch, &xte, Some(&xtr), Want::BOTH)?;
    let tt = kernels_f64(&arch, &xte, None, Want::NNGP)?;
    let missing = || widenet::Error::invalid("kernel missing");
    let k = PredictKernels {
        dd_nngp: dd.nngp.ok_or_else(missing)?,
        dd_ntk: dd.ntk,
        td_nngp: td.nngp.ok_or_else(missing)?,
        td_ntk: td.ntk,
        tt_nngp: tt.nngp,
    };
    let spec_p = PredictSpec {
        get: Get::Ntk,
        t: Some(steps as f64),
        learning_rate: lr,
        diag_reg: 0.0,
    };
    let inf = gradient_descent_mse_ensemble(&k, &data.y_train.to_f64(), &spec_p)?;

    // The ensemble's test predictions against it.
    let out = forward(&ens, &data.x_test)?;
    let n = data.x_test.rows;
    println!(
        "{:>5} {:>12} {:>12} {:>12} {:>12}",
        "point", "ens. mean", "inf. mean", "ens. sd", "inf. sd"
    );
    for i in 0..n {
        let v: Vec<f64> = (0..spec.ensemble).map(|e| out[e * n + i] as f64).collect();
        let m = mean(&v);
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        let cov = inf.cov.as_ref().map_or(f64::NAN, |c: &Matrix| c.at(i, i));
        println!(
            "{i:>5} {m:>12.4} {:>12.4} {sd:>12.4} {:>12.4}",
            inf.mean.at(i, 0),
            cov.sqrt()
        );
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}
