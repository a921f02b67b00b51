//! Gauss-Hermite quadrature: nodes `x_i` and weights `w_i` with
//! `sum_i w_i f(x_i) ~ integral f(x) exp(-x^2) dx`, exact for polynomials of
//! degree below `2 * deg`. The kernels of activations without a closed form
//! (tanh, sigmoid, user functions) are expectations over Gaussians computed
//! this way, as neural-tangents' `stax.ElementwiseNumerical` does (Han et al.
//! 2022, "Fast Neural Kernel Embeddings for General Activations",
//! <https://arxiv.org/abs/2209.04121>).

use std::sync::{Arc, Mutex, OnceLock};

/// Nodes and weights of one degree.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussHermite {
    /// Nodes, ascending.
    pub nodes: Vec<f64>,
    /// Weights (positive, summing to sqrt(pi)).
    pub weights: Vec<f64>,
}

/// The degree the f64 kernels use for activations without a closed form,
/// neural-tangents' `ElementwiseNumerical(fn, deg=120)` as in the golden values.
pub const DEFAULT_DEGREE: usize = 120;

impl GaussHermite {
    /// The rule with `deg` nodes (1 to 400): Golub-Welsch for the nodes,
    /// polished by Newton's method on the orthonormal Hermite recurrence,
    /// which gives the weights; nodes accurate to about 1e-15, weights to a
    /// few ulps relative.
    pub fn new(deg: usize) -> GaussHermite {
        let n = deg.clamp(1, 400);
        // Golub-Welsch: the nodes are the eigenvalues of the Jacobi matrix of
        // the Hermite polynomials (off-diagonal sqrt(k / 2))...
        let jacobi = faer::Mat::from_fn(n, n, |i, j| {
            if i.abs_diff(j) == 1 {
                (i.max(j) as f64 / 2.0).sqrt()
            } else {
                0.0
            }
        });
        let mut nodes: Vec<f64> = jacobi
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .unwrap_or_default();
        if nodes.len() != n {
            nodes = vec![0.0; n];
        }
        nodes.sort_by(f64::total_cmp);
        // ...then each is polished by Newton's method on the orthonormal
        // recurrence, which also gives its weight 2 / p'(x)^2 to full relative
        // accuracy even where the weight is 1e-170.
        let pim4 = std::f64::consts::PI.powf(-0.25);
        let nf = n as f64;
        let mut weights = vec![0.0; n];
        for (x, w) in nodes.iter_mut().zip(weights.iter_mut()) {
            let mut z = *x;
            let mut pp = 1.0;
            for it in 0..4 {
                let (mut p1, mut p2) = (pim4, 0.0f64);
                for j in 1..=n {
                    let p3 = p2;
                    p2 = p1;
                    let jf = j as f64;
                    p1 = z * (2.0 / jf).sqrt() * p2 - ((jf - 1.0) / jf).sqrt() * p3;
                }
                pp = (2.0 * nf).sqrt() * p2;
                if it < 3 {
                    z -= p1 / pp;
                }
            }
            *x = z;
            *w = 2.0 / (pp * pp);
        }
        // Exact symmetry.
        for i in 0..n / 2 {
            let (a, b) = (nodes[i], nodes[n - 1 - i]);
            let m = 0.5 * (b - a);
            nodes[i] = -m;
            nodes[n - 1 - i] = m;
            let wm = 0.5 * (weights[i] + weights[n - 1 - i]);
            weights[i] = wm;
            weights[n - 1 - i] = wm;
        }
        if n % 2 == 1 {
            nodes[n / 2] = 0.0;
        }
        GaussHermite { nodes, weights }
    }

    /// The rule of degree `deg`, computed once per process.
    pub fn cached(deg: usize) -> Arc<GaussHermite> {
        static CACHE: OnceLock<Mutex<Vec<Arc<GaussHermite>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        let mut v = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = v.iter().find(|r| r.nodes.len() == deg.clamp(1, 400)) {
            return r.clone();
        }
        let r = Arc::new(GaussHermite::new(deg));
        v.push(r.clone());
        r
    }

    /// `E[f(z)]` for `z ~ N(0, var)`.
    pub fn expect(&self, var: f64, f: impl Fn(f64) -> f64) -> f64 {
        let s = (2.0 * var.max(0.0)).sqrt();
        let sum: f64 = self
            .nodes
            .iter()
            .zip(&self.weights)
            .map(|(&x, &w)| w * f(s * x))
            .sum();
        sum / std::f64::consts::PI.sqrt()
    }

    /// `E[f(u) g(v)]` for `(u, v)` Gaussian with variances `c1`, `c2` and
    /// covariance `q`, written exactly as neural-tangents' `ElementwiseNumerical`
    /// writes it: `u = sqrt(2 c1) x`, `v = q / sqrt(c1 / 2) x + sqrt(2 (c2 - q^2 / c1)) y`.
    pub fn expect2(
        &self,
        q: f64,
        c1: f64,
        c2: f64,
        f: impl Fn(f64) -> f64,
        g: impl Fn(f64) -> f64,
    ) -> f64 {
        let su = (2.0 * c1.max(0.0)).sqrt();
        let sv1 = q / (c1 / 2.0).max(1e-30).sqrt();
        let sv2 = (2.0 * (c2 - q * q / c1)).max(0.0).sqrt();
        let mut total = 0.0;
        for (&x, &wx) in self.nodes.iter().zip(&self.weights) {
            let fu = f(su * x);
            if fu == 0.0 {
                continue;
            }
            let mut inner = 0.0;
            for (&y, &wy) in self.nodes.iter().zip(&self.weights) {
                inner += wy * g(sv1 * x + sv2 * y);
            }
            total += wx * fu * inner;
        }
        total / std::f64::consts::PI
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_the_gaussian_are_exact() {
        for deg in [1, 2, 5, 20, 120, 200] {
            let r = GaussHermite::new(deg);
            let total: f64 = r.weights.iter().sum();
            assert!(
                (total - std::f64::consts::PI.sqrt()).abs() < 1e-13,
                "deg {deg}: {total}"
            );
            // E[z^2] = var, E[z^4] = 3 var^2 (exact once 2 deg > 4).
            if deg >= 3 {
                assert!((r.expect(1.7, |z| z * z) - 1.7).abs() < 1e-12);
                assert!((r.expect(1.7, |z| z.powi(4)) - 3.0 * 1.7 * 1.7).abs() < 1e-11);
            }
        }
    }

    #[test]
    fn bivariate_expectation_matches_the_covariance() {
        let r = GaussHermite::new(40);
        let (c1, c2, q) = (1.3, 0.7, 0.5);
        assert!((r.expect2(q, c1, c2, |u| u, |v| v) - q).abs() < 1e-12);
        // E[u^2 v^2] = c1 c2 + 2 q^2.
        let want = c1 * c2 + 2.0 * q * q;
        assert!((r.expect2(q, c1, c2, |u| u * u, |v| v * v) - want).abs() < 1e-11);
    }

    #[test]
    fn erf_expectation_matches_its_closed_form() {
        // E[erf(u) erf(v)] = (2/pi) asin(2q / sqrt((1 + 2 c1)(1 + 2 c2))).
        let r = GaussHermite::new(120);
        let (c1, c2, q): (f64, f64, f64) = (0.9, 1.6, 0.4);
        let want = 2.0 / std::f64::consts::PI
            * (2.0 * q / ((1.0 + 2.0 * c1) * (1.0 + 2.0 * c2)).sqrt()).asin();
        let got = r.expect2(q, c1, c2, libm::erf, libm::erf);
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}
