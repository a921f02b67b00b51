//! The infinite-width side of the comparison: the analytic kernels of the
//! training and test points, the step size from the train NTK's spectrum,
//! the expected loss curves, the predicted mean and variance at the end, and
//! the linearized dynamics each finite member is held against.

use super::{CompareConfig, mse};
use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::experiments::data::Split;
use crate::kernel::{Want, kernels_f64};
use crate::matrix::Matrix;
use crate::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use faer::Side;

/// What the infinite-width limit predicts for the run.
pub(super) struct Theory {
    pub ntr: usize,
    pub nte: usize,
    /// Training then test points.
    pub z: Matrix<f32>,
    pub analytic_ntk: Vec<f32>,
    pub analytic_nngp: Vec<f32>,
    pub lr: f64,
    pub t_final: f64,
    pub lam_max: f64,
    pub curve_steps: Vec<usize>,
    pub inf_train: Vec<f64>,
    pub inf_test: Vec<f64>,
    pub mu_inf: Vec<f64>,
    pub var_inf: Vec<f64>,
    /// Maps train residuals at initialization to the linearized change of
    /// the test outputs at `t_final`.
    pub lin_op: faer::Mat<f64>,
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

impl Theory {
    /// Everything the infinite-width limit predicts for this configuration.
    pub fn compute(cfg: &CompareConfig, arch: &Arch, data: &Split) -> Result<Theory> {
        let (ntr, nte) = (data.x_train.rows, data.x_test.rows);
        let z = stack(&data.x_train, &data.x_test);
        let ntot = z.rows;
        let k = kernels_f64(arch, &z.to_f64(), None, Want::BOTH)?;
        let (knngp, kntk) = (
            k.nngp.ok_or_else(|| Error::invalid("nngp missing"))?,
            k.ntk.ok_or_else(|| Error::invalid("ntk missing"))?,
        );
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
        let eig = block(&kntk, 0, ntr, 0, ntr)
            .to_faer()
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
        let predict = |pk: &PredictKernels, s: usize| {
            let spec = PredictSpec {
                get: Get::Ntk,
                t: Some(s as f64),
                learning_rate: lr,
                diag_reg: 0.0,
            };
            gradient_descent_mse_ensemble(pk, &y_train64, &spec)
        };
        let expected = |pk: &PredictKernels, y: &Matrix<f32>, s: usize| -> Result<f64> {
            let p = predict(pk, s)?;
            let cov = p.cov.ok_or_else(|| Error::invalid("covariance missing"))?;
            let tr: f64 = (0..cov.rows).map(|i| cov.at(i, i)).sum();
            Ok(mse(&p.mean.data, &y.data) + tr / (2.0 * y.rows as f64))
        };
        let curve = |pk: &PredictKernels, y: &Matrix<f32>| -> Result<Vec<f64>> {
            curve_steps.iter().map(|&s| expected(pk, y, s)).collect()
        };
        let inf_train = curve(&pk_train, &data.y_train)?;
        let inf_test = curve(&pk_test, &data.y_test)?;
        let final_pred = predict(&pk_test, cfg.steps)?;
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
        Ok(Theory {
            ntr,
            nte,
            analytic_ntk: kntk.data.iter().map(|&v| v as f32).collect(),
            analytic_nngp: knngp.data.iter().map(|&v| v as f32).collect(),
            z,
            lr,
            t_final,
            lam_max,
            curve_steps,
            inf_train,
            inf_test,
            mu_inf: final_pred.mean.data,
            var_inf,
            lin_op,
        })
    }
}
