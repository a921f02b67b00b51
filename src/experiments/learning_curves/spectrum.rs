//! The spectra: the pool's (eigenvalues of `K / M` and the target's weights
//! on its eigenvectors, in f64 through faer), the sphere's exact one, and the
//! power-law fits that give theory's exponent.

use crate::eigenlearning::Modes;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::stats::fit_loglog_se;

/// Eigenvalues of `K / M`, largest first, and the target's weight on each
/// eigenvector, `v_i^2 = (u_i . y)^2 / M` (they sum to the mean square of `y`).
pub fn pool_spectrum(k: &Matrix<f32>, y: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = k.rows();
    if k.cols() != m || y.len() != m {
        return Err(Error::shape(
            "pool spectrum",
            format!("kernel {}x{} with {} labels", k.rows(), k.cols(), y.len()),
        ));
    }
    let inv = 1.0 / m as f64;
    // Symmetrized: the device computes the upper tiles and mirrors them.
    let a = faer::Mat::from_fn(m, m, |i, j| {
        0.5 * (k.at(i, j) as f64 + k.at(j, i) as f64) * inv
    });
    let eig = a
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::Numerical(format!("eigendecomposition of the pool kernel: {e:?}")))?;
    let u = eig.U();
    let mut out: Vec<(f64, f64)> = (0..m)
        .map(|i| {
            let c: f64 = (0..m).map(|r| u[(r, i)] * y[r]).sum();
            (eig.S()[i], c * c * inv)
        })
        .collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(out.into_iter().unzip())
}

/// A power law `y ~ x^-exponent` with the standard error of the exponent.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Decay {
    /// The exponent (positive for a decay).
    pub exponent: f64,
    /// Its standard error from the fit's residuals.
    pub se: f64,
    /// Log-scale intercept.
    pub intercept: f64,
}

/// Fits `y ~ x^-exponent` over the points with `lo <= x <= hi`.
pub fn decay(x: &[f64], y: &[f64], lo: f64, hi: f64) -> Option<Decay> {
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a >= lo && **a <= hi && **b > 0.0)
        .map(|(a, b)| (*a, *b))
        .unzip();
    let f = fit_loglog_se(&xs, &ys)?;
    Some(Decay {
        exponent: -f.0,
        se: f.2,
        intercept: f.1,
    })
}

/// Mode index (1-based, at the middle of each group), eigenvalue and the
/// target's tail `sum_{j > i} v_j^2` at the group's end, for the fits.
pub fn indexed(modes: &Modes) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut order: Vec<usize> = (0..modes.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| modes.eigenvalues[b].total_cmp(&modes.eigenvalues[a]));
    let total: f64 = modes.weights.iter().sum();
    let (mut at, mut done) = (0.0, 0.0);
    let (mut idx, mut lam, mut tail) = (Vec::new(), Vec::new(), Vec::new());
    for g in order {
        let m = modes.multiplicity[g];
        idx.push(at + 0.5 * (m + 1.0));
        lam.push(modes.eigenvalues[g]);
        at += m;
        done += modes.weights[g];
        tail.push((total - done).max(0.0));
    }
    (idx, lam, tail)
}

/// The spectrum's decay, the target's tail and theory's exponent of the
/// test MSE, `-min(tail exponent, 2 alpha)` (Bordelon, Canatar and Pehlevan
/// 2020, section 5; Spigler, Geiger and Wyart 2020), over mode indices `lo..=hi`.
pub fn theory_exponent(modes: &Modes, lo: f64, hi: f64) -> serde_json::Value {
    let (idx, lam, tail) = indexed(modes);
    // The tail is read at each group's end.
    let ends: Vec<f64> = {
        let mut at = 0.0;
        let mut order: Vec<usize> = (0..modes.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| modes.eigenvalues[b].total_cmp(&modes.eigenvalues[a]));
        order
            .iter()
            .map(|&g| {
                at += modes.multiplicity[g];
                at
            })
            .collect()
    };
    let spectrum = decay(&idx, &lam, lo, hi);
    let target = decay(&ends, &tail, lo, hi);
    let theory = match (spectrum, target) {
        (Some(s), Some(t)) => {
            if t.exponent <= 2.0 * s.exponent {
                Some((-t.exponent, t.se))
            } else {
                Some((-2.0 * s.exponent, 2.0 * s.se))
            }
        }
        _ => None,
    };
    serde_json::json!({
        "index_range": [lo, hi],
        "spectrum_decay": spectrum,
        "target_tail": target,
        "theory_exponent": theory.map(|t| t.0),
        "theory_exponent_se": theory.map(|t| t.1),
    })
}
