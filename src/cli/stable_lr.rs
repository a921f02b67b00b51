//! The step size gradient descent can take on the mean squared error: the
//! largest eigenvalue of the network's infinite-width NTK on the training
//! inputs sets it (`train --lr auto`, and the warning above it).

use widenet::arch::Parameterization;
use widenet::kernel::{Want, kernels_f64};
use widenet::net::NetSpec;
use widenet::{Error, Matrix, Result};

/// Largest eigenvalue of a symmetric matrix by power iteration (from below;
/// 1e-9 relative change or 500 steps).
fn top_eigenvalue(k: &Matrix<f64>) -> f64 {
    let n = k.rows();
    let mut v = vec![1.0 / (n as f64).sqrt(); n];
    let mut lam = 0.0;
    for _ in 0..500 {
        let w: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| k.at(i, j) * v[j]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        let next: f64 = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        v = w.iter().map(|x| x / norm).collect();
        if (next - lam).abs() <= 1e-9 * next.abs() {
            return next;
        }
        lam = next;
    }
    lam
}

/// `lambda_max` of the analytic NTK on `x`, for networks whose Dense layers
/// are all ntk or standard (muP and mean-field scale each layer's learning
/// rate, so their kernel is not the analytic one): `None` otherwise.
pub fn ntk_lambda_max(spec: &NetSpec, x: &Matrix<f32>) -> Result<Option<f64>> {
    if matches!(
        spec.parameterization,
        Some(Parameterization::Mup | Parameterization::MeanField)
    ) {
        return Ok(None);
    }
    let k = kernels_f64(&spec.arch, &x.to_f64(), None, Want::NTK)?;
    let ntk = k
        .ntk
        .ok_or_else(|| Error::invalid("the NTK was not computed"))?;
    Ok(Some(top_eigenvalue(&ntk)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_iteration_finds_the_top_eigenvalue() {
        // diag(1, 2, 5) rotated: eigenvalues 1, 2, 5.
        let (c, s) = (0.6f64, 0.8f64);
        let q = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let d = [1.0, 5.0, 2.0];
        let mut data = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                data[i * 3 + j] = (0..3).map(|m| q[i][m] * d[m] * q[j][m]).sum();
            }
        }
        let k = Matrix::from_vec(3, 3, data).unwrap();
        assert!((top_eigenvalue(&k) - 5.0).abs() < 1e-8);
    }
}
