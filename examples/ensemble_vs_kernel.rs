//! Trains an ensemble of wide networks by gradient descent on the device and
//! compares its predictions with the analytic infinite-width prediction of
//! the same architecture at the same training time.
//!
//! Run: `cargo run --release --example ensemble_vs_kernel`

use widenet::net::train::forward;
use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use widenet::prelude::*;

fn main() -> widenet::Result<()> {
    let dev = widenet::open(&DeviceChoice::Auto)?;
    println!("device: {}", dev.describe());

    // A small regression task: 32 points in 4 dimensions, 8 test points.
    let mut rng = widenet::rng::Rng::new(1);
    let x_train = Matrix::from_vec(32, 4, rng.normals_f32(32 * 4))?;
    let y_train = Matrix::from_vec(
        32,
        1,
        x_train
            .data()
            .chunks(4)
            .map(|r| (r[0] * r[1]).sin())
            .collect(),
    )?;
    let x_test = Matrix::from_vec(8, 4, rng.normals_f32(8 * 4))?;

    // 32 networks of width 1024, one hidden ReLU layer, ntk parameterization.
    let arch = Arch::mlp(&Mlp {
        depth: 1,
        width: 1024,
        w_std: 1.5,
        b_std: Some(0.1),
        ..Mlp::default()
    });
    let spec = NetSpec {
        arch: arch.clone(),
        d_in: 4,
        ensemble: 32,
        parameterization: None,
        base_width: 1024,
    };
    let mut ens = Ensemble::new(dev.as_ref(), &Params::init(&spec, 7)?)?;
    let (lr, steps) = (1.0, 100);
    let log = train(
        &mut ens,
        &x_train,
        &y_train,
        &TrainConfig::gd(lr, steps),
        |_, _| {},
    )?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "train loss: {:.3e} -> {:.3e} (mean over members)",
        mean(&log.loss[0]),
        mean(&log.final_loss)
    );

    // The infinite-width prediction at the same time t = lr * steps.
    let kernels = PredictKernels::compute(&arch, &x_train.to_f64(), &x_test.to_f64())?;
    let predict = PredictSpec {
        get: Get::Ntk,
        t: Some(steps as f64),
        learning_rate: lr,
        diag_reg: 0.0,
    };
    let inf = gradient_descent_mse_ensemble(&kernels, &y_train.to_f64(), &predict)?;

    // The ensemble's test predictions against it.
    let out = forward(&ens, &x_test)?;
    let n = x_test.rows();
    println!(
        "{:>5} {:>12} {:>12} {:>12} {:>12}",
        "point", "ens. mean", "inf. mean", "ens. sd", "inf. sd"
    );
    for i in 0..n {
        let v: Vec<f64> = (0..spec.ensemble).map(|e| out[e * n + i] as f64).collect();
        let m = mean(&v);
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        let cov = inf.cov.as_ref().map_or(f64::NAN, |c| c.at(i, i));
        println!(
            "{i:>5} {m:>12.4} {:>12.4} {sd:>12.4} {:>12.4}",
            inf.mean.at(i, 0),
            cov.sqrt()
        );
    }
    Ok(())
}
