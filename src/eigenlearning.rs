//! Eigenlearning: the test and train error of kernel (ridge) regression from
//! the kernel's eigenvalues on the data distribution and the target's weights
//! on its eigenfunctions (Simon, Dickens, Karkada and DeWeese, "The
//! Eigenlearning Framework", <https://arxiv.org/abs/2110.03922>, eqs. 5-9;
//! equivalently Bordelon, Canatar and Pehlevan 2020,
//! <https://arxiv.org/abs/2002.02561>, and Canatar, Bordelon and Pehlevan
//! 2021).
//!
//! Conventions. Kernel regression on `n` points drawn independently from the
//! data distribution predicts `f(x) = K(x, X) (K(X, X) + ridge I)^-1 y`, with
//! the raw kernel matrix (not divided by `n`). `lambda_i` are the eigenvalues
//! of the kernel's integral operator under the data distribution (on a pool of
//! `M` points: the eigenvalues of `K / M`), `v_i` the target's coefficients on
//! the eigenfunctions normalized to `E[phi_i^2] = 1`, and `noise` the variance
//! of the label noise, on training and test labels alike. Then
//!
//! - `kappa > 0` solves `sum_i lambda_i / (lambda_i + kappa) + ridge / kappa = n`,
//! - mode `i` is learned with learnability `L_i = lambda_i / (lambda_i + kappa)`,
//! - `E0 = n / (n - sum_i L_i^2)`,
//! - test MSE `= E0 (sum_i (1 - L_i)^2 v_i^2 + noise)`,
//! - train MSE `= (ridge / (n kappa))^2` times the test MSE.
//!
//! Modes come in groups of equal eigenvalue (the spherical harmonics of one
//! degree share theirs): a group has a multiplicity and the target's total
//! weight on it.

use crate::error::{Error, Result};

/// The spectrum of a kernel with the target's weights on it, in groups of
/// equal eigenvalue.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Modes {
    /// Eigenvalue of each group.
    pub eigenvalues: Vec<f64>,
    /// Number of modes in each group.
    pub multiplicity: Vec<f64>,
    /// The target's total weight (sum of `v_i^2`) on each group.
    pub weights: Vec<f64>,
}

/// The prediction at one number of training points.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Training points.
    pub n: f64,
    /// The solution of the kappa equation.
    pub kappa: f64,
    /// `n / (n - sum_i L_i^2)`.
    pub e0: f64,
    /// Expected test MSE (against noisy test labels).
    pub test_mse: f64,
    /// Expected train MSE.
    pub train_mse: f64,
}

impl Modes {
    /// Groups of equal eigenvalue, checked: the same length, eigenvalues and
    /// weights finite and non-negative, multiplicities at least 1.
    pub fn new(eigenvalues: Vec<f64>, multiplicity: Vec<f64>, weights: Vec<f64>) -> Result<Self> {
        if eigenvalues.len() != multiplicity.len() || eigenvalues.len() != weights.len() {
            return Err(Error::shape(
                "eigenlearning",
                format!(
                    "{} eigenvalues, {} multiplicities and {} weights",
                    eigenvalues.len(),
                    multiplicity.len(),
                    weights.len()
                ),
            ));
        }
        if eigenvalues.is_empty() {
            return Err(Error::invalid("eigenlearning needs at least one mode"));
        }
        let bad = |v: &[f64], lo: f64| v.iter().any(|x| !(x.is_finite() && *x >= lo));
        if bad(&eigenvalues, 0.0) || bad(&weights, 0.0) || bad(&multiplicity, 1.0) {
            return Err(Error::invalid(
                "eigenlearning: eigenvalues and weights must be finite and non-negative, multiplicities at least 1",
            ));
        }
        Ok(Modes {
            eigenvalues,
            multiplicity,
            weights,
        })
    }

    /// Single modes (every multiplicity 1), e.g. the eigenvalues of a pool's
    /// kernel; negative eigenvalues (rounding) count as zero.
    pub fn single(eigenvalues: &[f64], weights: &[f64]) -> Result<Self> {
        Modes::new(
            eigenvalues.iter().map(|v| v.max(0.0)).collect(),
            vec![1.0; eigenvalues.len()],
            weights.to_vec(),
        )
    }

    /// `sum_i lambda_i / (lambda_i + kappa) + ridge / kappa`.
    pub fn effective_n(&self, kappa: f64, ridge: f64) -> f64 {
        self.eigenvalues
            .iter()
            .zip(&self.multiplicity)
            .map(|(l, m)| m * l / (l + kappa))
            .sum::<f64>()
            + ridge / kappa
    }

    /// The number of modes with a positive eigenvalue.
    pub fn rank(&self) -> f64 {
        self.eigenvalues
            .iter()
            .zip(&self.multiplicity)
            .filter(|(l, _)| **l > 0.0)
            .map(|(_, m)| m)
            .sum()
    }

    /// kappa for `n` training points: the root of the decreasing function
    /// `effective_n(kappa) - n`, bracketed then bisected in `log kappa` to
    /// the last bit (the residual is then about `1e-15 n`).
    pub fn kappa(&self, n: f64, ridge: f64) -> Result<f64> {
        if !(n.is_finite() && n > 0.0) {
            return Err(Error::invalid(format!(
                "eigenlearning: n must be positive, got {n}"
            )));
        }
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::invalid(format!(
                "ridge must be finite and non-negative, got {ridge}"
            )));
        }
        if ridge == 0.0 && n >= self.rank() {
            return Err(Error::invalid(format!(
                "ridgeless regression on {n} points needs more than {n} modes of positive eigenvalue; the spectrum has {}: add a ridge or use fewer points",
                self.rank()
            )));
        }
        let trace: f64 = self
            .eigenvalues
            .iter()
            .zip(&self.multiplicity)
            .map(|(l, m)| l * m)
            .sum();
        // effective_n(kappa) <= (trace + ridge) / kappa, so this is above the root.
        let mut hi = 2.0 * (trace + ridge) / n;
        if !(hi > 0.0 && hi.is_finite()) {
            return Err(Error::invalid(
                "eigenlearning: the spectrum and the ridge are all zero",
            ));
        }
        let mut lo = hi;
        let mut tries = 0;
        while self.effective_n(lo, ridge) <= n {
            lo *= 0.5;
            tries += 1;
            if tries > 4000 || lo == 0.0 {
                return Err(Error::Numerical(format!(
                    "eigenlearning: no kappa found for n = {n} (the spectrum is too flat)"
                )));
            }
        }
        while self.effective_n(hi, ridge) > n {
            hi *= 2.0;
        }
        // Bisection in log kappa until the bracket cannot shrink.
        for _ in 0..400 {
            let mid = (lo * hi).sqrt();
            if mid <= lo || mid >= hi {
                break;
            }
            if self.effective_n(mid, ridge) > n {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (rl, rh) = (
            (self.effective_n(lo, ridge) - n).abs(),
            (self.effective_n(hi, ridge) - n).abs(),
        );
        Ok(if rl <= rh { lo } else { hi })
    }

    /// The learnability of each group at `kappa`.
    pub fn learnabilities(&self, kappa: f64) -> Vec<f64> {
        self.eigenvalues.iter().map(|l| l / (l + kappa)).collect()
    }

    /// Test and train MSE for `n` points, a ridge and label-noise variance `noise`.
    pub fn predict(&self, n: f64, ridge: f64, noise: f64) -> Result<Prediction> {
        if !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::invalid(format!(
                "the noise variance must be finite and non-negative, got {noise}"
            )));
        }
        let kappa = self.kappa(n, ridge)?;
        let l = self.learnabilities(kappa);
        let sum_l2: f64 = l
            .iter()
            .zip(&self.multiplicity)
            .map(|(l, m)| m * l * l)
            .sum();
        let e0 = n / (n - sum_l2);
        let bias: f64 = l
            .iter()
            .zip(&self.weights)
            .map(|(l, w)| (1.0 - l).powi(2) * w)
            .sum();
        let test_mse = e0 * (bias + noise);
        let train_mse = (ridge / (n * kappa)).powi(2) * test_mse;
        Ok(Prediction {
            n,
            kappa,
            e0,
            test_mse,
            train_mse,
        })
    }

    /// [`Modes::predict`] for a spectrum cut short: the modes beyond those
    /// listed, of total eigenvalue `tail` and each far below kappa, add
    /// `tail / kappa` to the effective `n` as a ridge would (and, unlike a
    /// ridge, leave the training points interpolated: the train MSE uses
    /// `ridge` alone). Their target weight must be among the listed ones.
    pub fn predict_with_tail(
        &self,
        n: f64,
        ridge: f64,
        tail: f64,
        noise: f64,
    ) -> Result<Prediction> {
        let mut p = self.predict(n, ridge + tail.max(0.0), noise)?;
        p.train_mse = (ridge / (n * p.kappa)).powi(2) * p.test_mse;
        Ok(p)
    }

    /// The large-ridge limit (first order in `1 / ridge`): kappa `~ (ridge +
    /// sum lambda) / n`, test MSE `~ sum v^2 + noise - 2 (n / ridge) sum
    /// lambda_i v_i^2`.
    pub fn large_ridge_limit(&self, n: f64, ridge: f64, noise: f64) -> (f64, f64) {
        let trace: f64 = self
            .eigenvalues
            .iter()
            .zip(&self.multiplicity)
            .map(|(l, m)| l * m)
            .sum();
        let power: f64 = self.weights.iter().sum();
        let lv: f64 = self
            .eigenvalues
            .iter()
            .zip(&self.weights)
            .map(|(l, w)| l * w)
            .sum();
        ((ridge + trace) / n, power + noise - 2.0 * n / ridge * lv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power_law(p: usize) -> Modes {
        let lam: Vec<f64> = (1..=p).map(|i| (i as f64).powf(-1.5)).collect();
        let w: Vec<f64> = (1..=p).map(|i| (i as f64).powf(-2.0)).collect();
        Modes::single(&lam, &w).unwrap()
    }

    #[test]
    fn kappa_solves_its_equation_to_1e_10() {
        let m = power_law(4096);
        for &ridge in &[0.0, 1e-6, 1e-2, 1.0, 100.0] {
            for &n in &[1.0, 7.0, 64.0, 1000.0, 4000.0] {
                let k = m.kappa(n, ridge).unwrap();
                let r = (m.effective_n(k, ridge) - n).abs() / n;
                assert!(r <= 1e-10, "ridge {ridge} n {n}: relative residual {r}");
            }
        }
    }

    #[test]
    fn ridgeless_needs_more_modes_than_points() {
        let m = power_law(10);
        assert!(m.kappa(10.0, 0.0).is_err());
        assert!(m.kappa(10.0, 1e-3).is_ok());
        assert!(m.kappa(9.0, 0.0).is_ok());
    }

    #[test]
    fn a_large_ridge_goes_to_the_closed_form_limit() {
        let m = power_law(2000);
        let (n, noise) = (100.0, 0.1);
        let power: f64 = m.weights.iter().sum();
        for &ridge in &[1e4, 1e6] {
            let p = m.predict(n, ridge, noise).unwrap();
            let (kappa, test) = m.large_ridge_limit(n, ridge, noise);
            // First-order limits: errors of second order in 1/ridge.
            assert!((p.kappa - kappa).abs() / kappa < 10.0 / ridge, "kappa");
            let first = power + noise - test;
            assert!(
                (p.test_mse - test).abs() < 0.05 * first,
                "ridge {ridge}: test {} against {test}",
                p.test_mse
            );
            // Nearly nothing learned (a deviation of order n / ridge), train and test alike.
            assert!((p.test_mse - (power + noise)).abs() < 3.0 * n / ridge * (power + noise));
            assert!((p.train_mse - p.test_mse).abs() < 1e-2 * p.test_mse);
        }
    }

    #[test]
    fn groups_equal_their_modes_spelled_out() {
        let grouped = Modes::new(vec![1.0, 0.1], vec![1.0, 3.0], vec![0.5, 0.3]).unwrap();
        let single = Modes::single(&[1.0, 0.1, 0.1, 0.1], &[0.5, 0.1, 0.1, 0.1]).unwrap();
        let (a, b) = (
            grouped.predict(2.0, 0.01, 0.05).unwrap(),
            single.predict(2.0, 0.01, 0.05).unwrap(),
        );
        assert!((a.kappa - b.kappa).abs() < 1e-14);
        assert!((a.test_mse - b.test_mse).abs() < 1e-14);
    }
}
