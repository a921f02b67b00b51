//! The measurements: kernel regression on random training sets drawn from the
//! pool, and finite networks through the infinite-time limit of their
//! linearized model (kernel regression with each network's own empirical
//! kernel at initialization, centred: the network's initial function is
//! subtracted, so that it learns `y` from zero as the kernel does).

use super::LearningCurvesConfig;
use crate::error::{Error, Result};
use crate::experiments::task::{Task, draw, rows};
use crate::matrix::Matrix;
use crate::net::empirical::empirical_kernels;
use crate::net::{Ensemble, NetSpec, Params};
use crate::predict::Get;
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

/// The pool's kernel and the test-by-pool kernel (f32, from the device),
/// with noisy labels.
pub(super) struct Kernels {
    /// `[M, M]`.
    pub pool: Matrix<f32>,
    /// `[T, M]`.
    pub test: Matrix<f32>,
    /// Pool labels with their noise.
    pub pool_y: Vec<f64>,
    /// Test labels with their noise.
    pub test_y: Vec<f64>,
}

/// `alpha = (K + ridge I)^-1 y` by Cholesky in f64.
pub(super) fn solve(k: Mat<f64>, ridge: f64, y: &[f64]) -> Result<Vec<f64>> {
    let n = k.nrows();
    let kr = Mat::from_fn(n, n, |i, j| k[(i, j)] + if i == j { ridge } else { 0.0 });
    let llt = kr.llt(Side::Lower).map_err(|_| {
        Error::Numerical(format!(
            "the kernel of {n} training points is not positive definite at --ridge {ridge} (repeated points?); use a positive --ridge"
        ))
    })?;
    let rhs = Mat::from_fn(n, 1, |i, _| y[i]);
    let a = llt.solve(rhs);
    let out: Vec<f64> = (0..n).map(|i| a[(i, 0)]).collect();
    if out.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "kernel regression on {n} points gave non-finite weights; use a positive --ridge"
        )));
    }
    Ok(out)
}

/// One training set's regression: test and train MSE and the test predictions.
pub(super) struct Fit {
    pub test_mse: f64,
    pub train_mse: f64,
    pub pred: Vec<f64>,
}

/// Kernel regression on pool rows `idx`, evaluated on the first `t` test points.
pub(super) fn regress(k: &Kernels, idx: &[usize], ridge: f64, t: usize) -> Result<Fit> {
    let n = idx.len();
    let knn = Mat::from_fn(n, n, |i, j| k.pool.at(idx[i], idx[j]) as f64);
    let y: Vec<f64> = idx.iter().map(|&i| k.pool_y[i]).collect();
    let alpha = solve(knn, ridge, &y)?;
    let pred: Vec<f64> = (0..t)
        .map(|r| {
            idx.iter()
                .zip(&alpha)
                .map(|(&j, a)| k.test.at(r, j) as f64 * a)
                .sum()
        })
        .collect();
    let test_mse = crate::stats::mean(
        &pred
            .iter()
            .zip(&k.test_y)
            .map(|(p, y)| (p - y).powi(2))
            .collect::<Vec<_>>(),
    );
    // Train residual: y - K alpha = ridge alpha.
    let train_mse = crate::stats::mean(
        &alpha
            .iter()
            .map(|a| (ridge * a).powi(2))
            .collect::<Vec<_>>(),
    );
    Ok(Fit {
        test_mse,
        train_mse,
        pred,
    })
}

/// The training rows of draw `r` at `n` points.
pub(super) fn train_rows(
    cfg: &LearningCurvesConfig,
    pool: usize,
    n: usize,
    r: usize,
) -> Vec<usize> {
    draw(pool, n, cfg.seed, 1_000_003 * n as u64 + r as u64)
}

/// The measured point at `n`: every draw's test and train MSE, and the
/// measured learnability of each tracked degree (sphere only).
pub(super) fn point(
    cfg: &LearningCurvesConfig,
    task: &Task,
    k: &Kernels,
    n: usize,
    degrees: &[usize],
) -> Result<serde_json::Value> {
    let t = k.test_y.len();
    let (mut test, mut train) = (Vec::new(), Vec::new());
    let mut learn = vec![Vec::new(); degrees.len()];
    for r in 0..cfg.draws {
        let idx = train_rows(cfg, task.pool(), n, r);
        let fit = regress(k, &idx, cfg.ridge, t)?;
        test.push(fit.test_mse);
        train.push(fit.train_mse);
        // L_k = <f, f_k> / <f_k, f_k>, estimated over the test points as
        // 1 + <f - y, f_k> / <f_k, f_k> with the clean target y: the
        // residual is small, so its sampling noise is too.
        for (j, &deg) in degrees.iter().enumerate() {
            let (mut num, mut den) = (0.0, 0.0);
            for ((p, parts), y) in fit.pred.iter().zip(&task.test_parts).zip(&task.test_y) {
                if let Some(c) = parts.iter().find(|c| c.0 == deg) {
                    num += (p - y) * c.1;
                    den += c.1 * c.1;
                }
            }
            if den > 0.0 {
                learn[j].push(1.0 + num / den);
            }
        }
    }
    Ok(serde_json::json!({"n": n, "test_mse": test, "train_mse": train, "learnability": learn}))
}

/// Finite networks of one width at `n` points (draw 0's training set):
/// each member's centred infinite-time linearized model on the first
/// `finite_test` test points, and kernel regression with the
/// infinite-width kernel on the same points.
pub(super) fn finite_point(
    dev: &dyn crate::backend::Backend,
    cfg: &LearningCurvesConfig,
    task: &Task,
    k: &Kernels,
    width: usize,
    n: usize,
) -> Result<serde_json::Value> {
    let t = cfg.finite_test.min(k.test_y.len());
    let idx = train_rows(cfg, task.pool(), n, 0);
    let kernel = regress(k, &idx, cfg.ridge, t)?;
    let mut z = rows(&task.pool_x, &idx);
    z.data.extend_from_slice(&task.test_x.data[..t * task.d()]);
    z.rows += t;
    let spec = NetSpec {
        arch: cfg.arch.with_width(width),
        d_in: task.d(),
        ensemble: cfg.members,
        parameterization: None,
        base_width: width,
    };
    let mut ens = Ensemble::new(dev, &Params::init(&spec, cfg.seed ^ width as u64)?)?;
    let ek = empirical_kernels(&mut ens, &z)?;
    let all = match cfg.get {
        Get::Ntk => ek.ntk,
        Get::Nngp => ek.nngp.ok_or_else(|| {
            Error::invalid("get must be ntk: the NNGP of the finite networks needs a network that ends with a Dense layer")
        })?,
    };
    let nz = z.rows;
    let y: Vec<f64> = idx.iter().map(|&i| k.pool_y[i]).collect();
    let mut test = Vec::new();
    for m in 0..cfg.members {
        let km = &all[m * nz * nz..(m + 1) * nz * nz];
        let knn = Mat::from_fn(n, n, |i, j| km[i * nz + j] as f64);
        let alpha = solve(knn, cfg.ridge, &y)?;
        let mse = (0..t)
            .map(|r| {
                let p: f64 = (0..n).map(|j| km[(n + r) * nz + j] as f64 * alpha[j]).sum();
                (p - k.test_y[r]).powi(2)
            })
            .sum::<f64>()
            / t as f64;
        test.push(mse);
    }
    Ok(serde_json::json!({
        "width": width, "n": n, "test_mse": test, "kernel_test_mse": kernel.test_mse,
    }))
}
