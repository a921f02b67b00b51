//! Computes the infinite-width NNGP and NTK of a composed architecture and the
//! prediction of infinitely wide networks trained on a small task, as an
//! application embedding widenet would.
//!
//! Run: `cargo run --release --example kernel_and_prediction`

use widenet::predict::{PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use widenet::prelude::*;

fn main() -> widenet::Result<()> {
    // A residual network with LayerNorm, written as neural-tangents' stax layers.
    let arch = Arch::parse(
        "Dense(512, W_std=1.5, b_std=0.1), Residual(Relu, Dense(512, W_std=1.2)), LayerNorm, Relu, Dense(1)",
    )?;
    println!("architecture: {arch}");

    // Eight training points on a circle, their labels, and four test points.
    let angle = |i: usize, n: usize| 2.0 * std::f64::consts::PI * i as f64 / n as f64;
    let circle = |n: usize, shift: f64| -> Vec<f64> {
        (0..n)
            .flat_map(|i| [(angle(i, n) + shift).cos(), (angle(i, n) + shift).sin()])
            .collect()
    };
    let x_train = Matrix::from_vec(8, 2, circle(8, 0.0))?;
    let y_train = Matrix::from_vec(8, 1, (0..8).map(|i| (2.0 * angle(i, 8)).sin()).collect())?;
    let x_test = Matrix::from_vec(4, 2, circle(4, 0.3))?;

    // The exact (f64) kernels, and the same NTK in f32 on the best device.
    let k = kernels_f64(&arch, &x_train, None, Want::BOTH)?;
    let dev = widenet::open(&DeviceChoice::Auto)?;
    let k32 = kernels_device(
        dev.as_ref(),
        &arch,
        &x_train.to_f32(),
        None,
        Want::NTK,
        |_, _| {},
    )?;
    let (ntk, ntk32) = (k.ntk.expect("asked for"), k32.ntk.expect("asked for"));
    println!(
        "NTK(x0, x0) = {:.6} (f64), {:.6} (f32 on {})",
        ntk.at(0, 0),
        ntk32.at(0, 0),
        dev.describe()
    );

    // Mean and variance of the trained infinite ensemble at t = 10 and t = infinity.
    let kernels = PredictKernels::compute(&arch, &x_train, &x_test)?;
    for t in [Some(10.0), None] {
        let p = gradient_descent_mse_ensemble(&kernels, &y_train, &PredictSpec::ntk(t))?;
        let cov = p.cov.expect("test-test NNGP given");
        let label = t.map_or("inf".to_string(), |t| t.to_string());
        for i in 0..x_test.rows() {
            println!(
                "t = {label:>3}: test point {i}: mean {:+.4}, sd {:.4}",
                p.mean.at(i, 0),
                cov.at(i, i).max(0.0).sqrt()
            );
        }
    }
    Ok(())
}
