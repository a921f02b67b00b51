//! Predictions of the infinite ensemble of infinite-width networks trained by
//! gradient descent on the MSE loss `1/(2N) sum (f - y)^2`, `N = y.size`
//! (neural-tangents `predict.gradient_descent_mse_ensemble`, and
//! `predict.gp_inference` for `t = inf`; Lee et al. 2019,
//! <https://arxiv.org/abs/1902.06720>, equations 15-16).
//!
//! All linear algebra is f64 through faer: an eigendecomposition of the train
//! kernel for finite `t`, a Cholesky factorization for `t = inf`.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

/// Which kernel drives training: the NTK (all layers trained) or the NNGP
/// (only the readout trained, i.e. Bayesian inference with the NNGP prior).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Get {
    /// Only the readout trained: Bayesian inference with the NNGP prior.
    Nngp,
    /// Every layer trained.
    Ntk,
}

impl Get {
    /// Parses `nngp` or `ntk`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nngp" => Ok(Get::Nngp),
            "ntk" => Ok(Get::Ntk),
            _ => Err(Error::invalid(format!(
                "get must be nngp or ntk, got '{s}'"
            ))),
        }
    }
}

/// The kernels a prediction needs (f64). `k_*_ntk` are needed only for `Get::Ntk`.
#[derive(Clone, Debug)]
pub struct PredictKernels {
    /// Train by train NNGP.
    pub dd_nngp: Matrix,
    /// Train by train NTK.
    pub dd_ntk: Option<Matrix>,
    /// Test by train NNGP.
    pub td_nngp: Matrix,
    /// Test by train NTK.
    pub td_ntk: Option<Matrix>,
    /// Test by test NNGP (for the covariance).
    pub tt_nngp: Option<Matrix>,
}

impl PredictKernels {
    /// The f64 kernels of an architecture that a prediction from `x_train` to
    /// `x_test` needs (the test-test NNGP too, for the covariance).
    ///
    /// ```
    /// use widenet::predict::{PredictKernels, PredictSpec};
    /// let arch = widenet::Arch::parse("Dense(512), Erf, Dense(1)")?;
    /// let x_train = widenet::Matrix::from_vec(3, 2, vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8])?;
    /// let y_train = widenet::Matrix::from_vec(3, 1, vec![0.5, -0.5, 0.1])?;
    /// let x_test = widenet::Matrix::from_vec(1, 2, vec![0.8, 0.6])?;
    /// let k = PredictKernels::compute(&arch, &x_train, &x_test)?;
    /// let p = widenet::predict::gradient_descent_mse_ensemble(&k, &y_train, &PredictSpec::ntk(None))?;
    /// assert_eq!(p.mean.rows(), 1);
    /// # Ok::<(), widenet::Error>(())
    /// ```
    pub fn compute(arch: &crate::arch::Arch, x_train: &Matrix, x_test: &Matrix) -> Result<Self> {
        use crate::kernel::{Want, kernels_f64};
        let dd = kernels_f64(arch, x_train, None, Want::BOTH)?;
        let td = kernels_f64(arch, x_test, Some(x_train), Want::BOTH)?;
        let tt = kernels_f64(arch, x_test, None, Want::NNGP)?;
        let missing = || Error::invalid("internal: a kernel asked for is missing");
        Ok(PredictKernels {
            dd_nngp: dd.nngp.ok_or_else(missing)?,
            dd_ntk: dd.ntk,
            td_nngp: td.nngp.ok_or_else(missing)?,
            td_ntk: td.ntk,
            tt_nngp: tt.nngp,
        })
    }
}

/// What to predict.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PredictSpec {
    /// The kernel that drives training.
    pub get: Get,
    /// Training time; `None` is infinity.
    pub t: Option<f64>,
    /// Time is `t * learning_rate`.
    pub learning_rate: f64,
    /// Added to the train kernel's diagonal, relative to the mean of its diagonal.
    pub diag_reg: f64,
}

impl PredictSpec {
    /// NTK dynamics at time `t` (`None`: infinity), learning rate 1, no regularization.
    pub fn ntk(t: Option<f64>) -> Self {
        PredictSpec {
            get: Get::Ntk,
            t,
            learning_rate: 1.0,
            diag_reg: 0.0,
        }
    }
}

/// Mean `[n_test, outputs]` and, when the test-test NNGP was given, covariance `[n_test, n_test]`.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// The mean.
    pub mean: Matrix,
    /// The covariance.
    pub cov: Option<Matrix>,
}

fn mat(m: &Matrix) -> Mat<f64> {
    m.to_faer()
}

fn regularized(k: &Matrix, diag_reg: f64) -> Mat<f64> {
    let n = k.rows;
    let trace: f64 = (0..n).map(|i| k.at(i, i)).sum();
    let eps = diag_reg * trace / n as f64;
    Mat::from_fn(n, n, |i, j| k.at(i, j) + if i == j { eps } else { 0.0 })
}

fn check(spec: &PredictSpec, k: &PredictKernels, y: &Matrix) -> Result<()> {
    let n = k.dd_nngp.rows;
    if y.rows != n || y.cols == 0 {
        return Err(Error::shape(
            "predict",
            format!("y_train has {} rows but x_train has {n} points", y.rows),
        ));
    }
    y.check_finite("y_train")?;
    if !(spec.learning_rate.is_finite() && spec.learning_rate > 0.0) {
        return Err(Error::invalid(format!(
            "learning_rate must be positive and finite, got {}",
            spec.learning_rate
        )));
    }
    if !(spec.diag_reg.is_finite() && spec.diag_reg >= 0.0) {
        return Err(Error::invalid(format!(
            "diag_reg must be non-negative and finite, got {}",
            spec.diag_reg
        )));
    }
    if let Some(t) = spec.t {
        if t.is_nan() || t < 0.0 {
            return Err(Error::invalid(format!(
                "t must be non-negative (or inf), got {t}"
            )));
        }
    }
    if spec.get == Get::Ntk && (k.dd_ntk.is_none() || k.td_ntk.is_none()) {
        return Err(Error::invalid("predict with get=ntk needs the NTK kernels"));
    }
    Ok(())
}

fn ill_conditioned(what: &str, spec: &PredictSpec) -> Error {
    Error::Numerical(format!(
        "the train-train {what} kernel is not positive definite at diag_reg {} (ill-conditioned, e.g. repeated training points); \
         increase --diag-reg (for example to 1e-4 or 1e-2)",
        spec.diag_reg
    ))
}

fn finite_or_error(m: Mat<f64>, what: &str, spec: &PredictSpec) -> Result<Matrix> {
    let out = Matrix::from_faer(m.as_ref());
    if out.data.iter().any(|v| !v.is_finite()) {
        return Err(ill_conditioned(what, spec));
    }
    Ok(out)
}

/// Mean and covariance on the test points at time `spec.t`.
pub fn gradient_descent_mse_ensemble(
    k: &PredictKernels,
    y_train: &Matrix,
    spec: &PredictSpec,
) -> Result<Prediction> {
    check(spec, k, y_train)?;
    match spec.t {
        None => gp_inference(k, y_train, spec),
        Some(t) if t.is_infinite() => gp_inference(k, y_train, spec),
        Some(t) => finite_time(k, y_train, spec, t * spec.learning_rate),
    }
}

fn finite_time(k: &PredictKernels, y: &Matrix, spec: &PredictSpec, t: f64) -> Result<Prediction> {
    let big_n = (y.rows * y.cols) as f64;
    let (dd, td) = match spec.get {
        Get::Nngp => (&k.dd_nngp, &k.td_nngp),
        Get::Ntk => (
            k.dd_ntk.as_ref().unwrap_or(&k.dd_nngp),
            k.td_ntk.as_ref().unwrap_or(&k.td_nngp),
        ),
    };
    let name = if spec.get == Get::Nngp { "NNGP" } else { "NTK" };
    let eig = regularized(dd, spec.diag_reg)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| {
            Error::Numerical(format!(
                "eigendecomposition of the train {name} kernel failed: {e:?}"
            ))
        })?;
    let v = eig.U().to_owned();
    let lam: Vec<f64> = (0..v.ncols()).map(|i| eig.S()[i]).collect();
    // -(exp(-max(l, 0) s / N) - 1) / |l|, zero for l == 0 as for l < 0.
    let neg_inv_expm1 = |s: f64| -> Vec<f64> {
        lam.iter()
            .map(|&l| {
                if l == 0.0 {
                    0.0
                } else {
                    -(-(l.max(0.0)) * s / big_n).exp_m1() / l.abs()
                }
            })
            .collect()
    };
    let scaled =
        |d: &[f64]| -> Mat<f64> { Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[(i, j)] * d[j]) };
    let ktd = mat(td);
    let m1 = neg_inv_expm1(t);
    // V diag(m1) V^T
    let op = &scaled(&m1) * v.transpose();
    let mean = &ktd * (&op * mat(y));
    let cov = match &k.tt_nngp {
        None => None,
        Some(tt) => {
            let tt = mat(tt);
            Some(match spec.get {
                Get::Nngp => {
                    let m2 = neg_inv_expm1(2.0 * t);
                    let op2 = &scaled(&m2) * v.transpose();
                    &tt - &ktd * (&op2 * ktd.transpose())
                }
                Get::Ntk => {
                    let nngp_dd = mat(&k.dd_nngp);
                    let td_nngp = mat(&k.td_nngp);
                    let term1 = &op * ktd.transpose();
                    let t2 = &ktd * (&op * td_nngp.transpose());
                    let term2 = &t2 + t2.transpose();
                    &(term1.transpose() * (&nngp_dd * &term1)) - &term2 + &tt
                }
            })
        }
    };
    Ok(Prediction {
        mean: finite_or_error(mean, name, spec)?,
        cov: cov.map(|c| finite_or_error(c, name, spec)).transpose()?,
    })
}

/// Exact posterior (`t = inf`), neural-tangents `predict.gp_inference`.
pub fn gp_inference(k: &PredictKernels, y: &Matrix, spec: &PredictSpec) -> Result<Prediction> {
    check(spec, k, y)?;
    let (dd, td, name) = match spec.get {
        Get::Nngp => (&k.dd_nngp, &k.td_nngp, "NNGP"),
        Get::Ntk => (
            k.dd_ntk.as_ref().unwrap_or(&k.dd_nngp),
            k.td_ntk.as_ref().unwrap_or(&k.td_nngp),
            "NTK",
        ),
    };
    let kreg = regularized(dd, spec.diag_reg);
    let llt = kreg
        .llt(Side::Lower)
        .map_err(|_| ill_conditioned(name, spec))?;
    // A pivot that lost all but rounding noise means a singular kernel to
    // working precision: its solution would be noise, so refuse it.
    let kmax = (0..kreg.nrows())
        .map(|i| kreg[(i, i)])
        .fold(0.0f64, f64::max);
    let pivot_min = (0..kreg.nrows())
        .map(|i| llt.L()[(i, i)].powi(2))
        .fold(f64::INFINITY, f64::min);
    if pivot_min.is_nan() || pivot_min <= 1e-13 * kmax {
        return Err(ill_conditioned(name, spec));
    }
    let ktd = mat(td);
    let mean = &ktd * llt.solve(mat(y));
    let cov = match &k.tt_nngp {
        None => None,
        Some(tt) => {
            let tt = mat(tt);
            let td_nngp = mat(&k.td_nngp);
            let inv_nngp_t = llt.solve(td_nngp.transpose().to_owned());
            Some(match spec.get {
                Get::Nngp => &tt - &ktd * &inv_nngp_t,
                Get::Ntk => {
                    let nngp_dd = mat(&k.dd_nngp);
                    let term1 = llt.solve(ktd.transpose().to_owned());
                    let t2 = &ktd * &inv_nngp_t;
                    let term2 = &t2 + t2.transpose();
                    &(term1.transpose() * (&nngp_dd * &term1)) - &term2 + &tt
                }
            })
        }
    };
    Ok(Prediction {
        mean: finite_or_error(mean, name, spec)?,
        cov: cov.map(|c| finite_or_error(c, name, spec)).transpose()?,
    })
}
