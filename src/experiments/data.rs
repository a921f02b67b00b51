//! Synthetic data sets that need no download: a random teacher network on
//! inputs on the sphere of radius sqrt(d), so that `x . x / d = 1`.

use crate::matrix::Matrix;
use crate::rng::Rng;

/// Train and test splits.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training inputs.
    pub x_train: Matrix<f32>,
    /// Training targets.
    pub y_train: Matrix<f32>,
    /// Test inputs.
    pub x_test: Matrix<f32>,
    /// Test targets.
    pub y_test: Matrix<f32>,
}

fn sphere(r: &mut Rng, n: usize, d: usize) -> Matrix<f32> {
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let v: Vec<f64> = (0..d).map(|_| r.normal()).collect();
        let norm = (v.iter().map(|a| a * a).sum::<f64>() / d as f64).sqrt();
        data.extend(v.iter().map(|a| (a / norm) as f32));
    }
    Matrix {
        rows: n,
        cols: d,
        data,
    }
}

/// `y = teacher(x)`: a one-hidden-layer tanh network of width 32 with standard
/// normal weights, its outputs scaled to unit variance over the training set.
pub fn teacher(d: usize, n_train: usize, n_test: usize, seed: u64) -> Split {
    let mut r = Rng::new(seed ^ 0x7ea_c4e2);
    let hidden = 32;
    let w: Vec<f64> = (0..hidden * d).map(|_| r.normal()).collect();
    let a: Vec<f64> = (0..hidden).map(|_| r.normal()).collect();
    let f = |x: &[f32]| -> f64 {
        (0..hidden)
            .map(|j| {
                a[j] * ((0..d).map(|i| w[j * d + i] * x[i] as f64).sum::<f64>() / (d as f64).sqrt())
                    .tanh()
            })
            .sum::<f64>()
    };
    let x_train = sphere(&mut r, n_train, d);
    let x_test = sphere(&mut r, n_test, d);
    let raw_train: Vec<f64> = (0..n_train).map(|i| f(x_train.row(i))).collect();
    let raw_test: Vec<f64> = (0..n_test).map(|i| f(x_test.row(i))).collect();
    let mean = raw_train.iter().sum::<f64>() / n_train as f64;
    let sd = (raw_train.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n_train as f64)
        .sqrt()
        .max(1e-12);
    let scale = |v: &[f64]| -> Vec<f32> { v.iter().map(|x| ((x - mean) / sd) as f32).collect() };
    Split {
        y_train: Matrix {
            rows: n_train,
            cols: 1,
            data: scale(&raw_train),
        },
        y_test: Matrix {
            rows: n_test,
            cols: 1,
            data: scale(&raw_test),
        },
        x_train,
        x_test,
    }
}
