//! The Gaussian expectations of an activation that signal propagation needs,
//! in f64: for `u ~ N(0, q)`, the variance map `V(q) = E[phi(u)^2]`, its
//! slope `V'(q)`, `S(q) = E[phi'(u)^2]`, and for two pre-activations of
//! variance `q` and correlation `c`, `P(c) = E[phi(u1) phi(u2)]` and its slope
//! in the covariance `dP/d(cq) = E[phi'(u1) phi'(u2)]` (Price's theorem).
//!
//! Closed forms come from [`crate::activation::kernel`]; an activation
//! without one (tanh, sigmoid), or any activation when quadrature is forced,
//! goes through Gauss-Hermite quadrature: one-dimensional sums for `V`, `V'`
//! and `S`, and for `P` the Mehler expansion `P(c) = sum_k a_k^2 c^k` over the
//! normalized Hermite coefficients `a_k = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)`,
//! computed once per `q` with the same rule. The device kernel
//! (`shaders/chaos.wgsl`) evaluates the same sums in f32 from [`hermite_table`].

use crate::activation::{Activation, kernel};
use crate::quadrature::GaussHermite;
use std::f64::consts::PI;
use std::sync::Arc;

/// Hermite coefficients kept per Gauss-Hermite degree: half the degree,
/// rounded down to a multiple of 4 (the device sums them four at a time), at
/// least 4. The rule computes `a_k` exactly for `phi` of polynomial degree
/// below `2 deg - k`, so the coefficients kept alias only terms beyond `1.5 deg`.
pub fn mehler_terms(degree: usize) -> usize {
    (degree / 2 / 4 * 4).max(4)
}

/// `T[i * terms + k] = w_i / sqrt(pi) * He_k(sqrt(2) x_i) / sqrt(k!)` for the
/// nodes `x_i` and weights `w_i` of `rule`, so that
/// `a_k(q) = sum_i T[i, k] phi(sqrt(2 q) x_i)`. The normalized Hermite
/// recurrence `h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)` is stable
/// and runs in f64; products below f32's range become zeros on the device.
pub fn hermite_table(rule: &GaussHermite, terms: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(rule.nodes.len() * terms);
    for (&x, &w) in rule.nodes.iter().zip(&rule.weights) {
        let z = std::f64::consts::SQRT_2 * x;
        let scale = w / PI.sqrt();
        let (mut prev, mut cur) = (0.0f64, 1.0f64);
        for k in 0..terms {
            t.push(scale * cur);
            let next = (z * cur - (k as f64).sqrt() * prev) / ((k + 1) as f64).sqrt();
            prev = cur;
            cur = next;
        }
    }
    t
}

/// How an activation's expectations are computed.
#[derive(Clone, Debug)]
pub struct Expectations {
    act: Activation,
    numeric: Option<Numeric>,
}

#[derive(Clone, Debug)]
struct Numeric {
    rule: Arc<GaussHermite>,
    table: Vec<f64>,
    terms: usize,
}

/// The correlation map's ingredients at one variance `q`: `P(c)` and its
/// slope, see [`Expectations::at`].
#[derive(Clone, Debug)]
pub struct PairMap {
    act: Activation,
    q: f64,
    /// `a_k^2` of the Mehler expansion (quadrature), empty for closed forms.
    coef: Vec<f64>,
}

impl Expectations {
    /// Closed forms where the activation has them, else quadrature of
    /// `degree` nodes; `quadrature` forces quadrature for every activation.
    pub fn new(act: Activation, degree: usize, quadrature: bool) -> Self {
        let numeric = (quadrature || !act.has_closed_form()).then(|| {
            let rule = GaussHermite::cached(degree);
            let terms = mehler_terms(rule.nodes.len());
            Numeric {
                table: hermite_table(&rule, terms),
                rule,
                terms,
            }
        });
        Expectations { act, numeric }
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// Whether quadrature computes them.
    pub fn is_numeric(&self) -> bool {
        self.numeric.is_some()
    }

    /// `k` when `V(q) = k q` exactly (identity and the ABRelu family), which
    /// makes the length map linear.
    pub fn linear_gain(&self) -> Option<f64> {
        if self.numeric.is_some() {
            return None;
        }
        match self.act {
            Activation::Identity => Some(1.0),
            Activation::AbRelu { a, b } => Some((a * a + b * b) / 2.0),
            _ => None,
        }
    }

    /// `E[f(sqrt(q) z)]` by the rule.
    fn sum(n: &Numeric, q: f64, f: impl Fn(f64) -> f64) -> f64 {
        let s = (2.0 * q.max(0.0)).sqrt();
        n.rule
            .nodes
            .iter()
            .zip(&n.rule.weights)
            .map(|(&x, &w)| w * f(s * x))
            .sum::<f64>()
            / PI.sqrt()
    }

    /// `V(q) = E[phi(u)^2]`, `u ~ N(0, q)`.
    pub fn variance(&self, q: f64) -> f64 {
        let act = self.act;
        match &self.numeric {
            Some(n) => Self::sum(n, q, |u| act.apply(u).powi(2)),
            None => kernel::diag(act, q),
        }
    }

    /// `V'(q) = E[phi'(u)^2 + phi(u) phi''(u)]`, written by Stein's lemma as
    /// `E[phi(u) phi'(u) u] / q` for quadrature (`q` at least 1e-12).
    pub fn variance_slope(&self, q: f64) -> f64 {
        let act = self.act;
        if let Some(n) = &self.numeric {
            let q = q.max(1e-12);
            return Self::sum(n, q, |u| act.apply(u) * act.derivative(u) * u) / q;
        }
        match act {
            Activation::Identity => 1.0,
            Activation::AbRelu { a, b } => (a * a + b * b) / 2.0,
            Activation::Erf { a, b, .. } => {
                let t = q * b * b;
                a * a * 4.0 * b * b / (PI * (1.0 + 2.0 * t) * (1.0 + 4.0 * t).sqrt())
            }
            Activation::Gelu => gelu_variance_slope(q),
            Activation::Sign => 0.0,
            Activation::Tanh | Activation::Sigmoid => f64::NAN,
        }
    }

    /// `S(q) = E[phi'(u)^2]`; `None` where it is infinite (sign, whose
    /// derivative is a delta).
    pub fn slope_sq(&self, q: f64) -> Option<f64> {
        let act = self.act;
        if let Some(n) = &self.numeric {
            if act == Activation::Sign {
                return None;
            }
            return Some(Self::sum(n, q, |u| act.derivative(u).powi(2)));
        }
        match act {
            Activation::Identity => Some(1.0),
            Activation::AbRelu { a, b } => Some((a * a + b * b) / 2.0),
            Activation::Erf { a, b, .. } => {
                Some(a * a * b * b * 4.0 / PI / (1.0 + 4.0 * q * b * b).sqrt())
            }
            Activation::Gelu => Some(kernel::pair(act, q, q, q, true).1),
            Activation::Sign => None,
            Activation::Tanh | Activation::Sigmoid => None,
        }
    }

    /// The correlation map's ingredients at variance `q`.
    pub fn at(&self, q: f64) -> PairMap {
        let act = self.act;
        let coef = match &self.numeric {
            None => Vec::new(),
            Some(n) => {
                let s = (2.0 * q.max(0.0)).sqrt();
                let mut a = vec![0.0; n.terms];
                for (i, &x) in n.rule.nodes.iter().enumerate() {
                    let f = act.apply(s * x);
                    let row = &n.table[i * n.terms..(i + 1) * n.terms];
                    for (ak, &t) in a.iter_mut().zip(row) {
                        *ak += t * f;
                    }
                }
                a.iter().map(|v| v * v).collect()
            }
        };
        PairMap { act, q, coef }
    }
}

impl PairMap {
    /// `P(c) = E[phi(u1) phi(u2)]` at correlation `c` in [-1, 1].
    pub fn value(&self, c: f64) -> f64 {
        if self.coef.is_empty() {
            return kernel::pair(self.act, c * self.q, self.q, self.q, false).0;
        }
        self.coef.iter().rev().fold(0.0, |acc, &a| acc * c + a)
    }

    /// `dP / d(c q) = E[phi'(u1) phi'(u2)]`: infinite (`f64::INFINITY`) for
    /// sign at `c = 1`.
    pub fn slope(&self, c: f64) -> f64 {
        if self.coef.is_empty() {
            if self.act == Activation::Sign {
                let s = (1.0 - c * c).max(0.0).sqrt();
                return 2.0 / (PI * self.q * s);
            }
            return kernel::pair(self.act, c * self.q, self.q, self.q, false).1;
        }
        let d = self
            .coef
            .iter()
            .enumerate()
            .skip(1)
            .rev()
            .fold(0.0, |acc, (k, &a)| acc * c + k as f64 * a);
        d / self.q.max(1e-300)
    }

    /// The Mehler coefficients' mass beyond the last term kept, relative to
    /// `V(q)`: `1 - sum_k a_k^2 / V` (0 for closed forms).
    pub fn tail(&self, variance: f64) -> f64 {
        if self.coef.is_empty() || variance <= 0.0 {
            return 0.0;
        }
        1.0 - self.coef.iter().sum::<f64>() / variance
    }
}

/// `d/dq` of neural-tangents' GELU variance
/// `V(q) = q^2 / (pi (q + 1) r) + q atan(q / r) / (2 pi) + q / 4`, `r = sqrt(1 + 2q)`.
fn gelu_variance_slope(q: f64) -> f64 {
    let r = (1.0 + 2.0 * q).sqrt();
    let q1 = q + 1.0;
    let first = (2.0 * q * q1 * r - q * q * (r + q1 / r)) / (PI * q1 * q1 * r * r);
    let second = (q / r).atan() / (2.0 * PI) + q / (2.0 * PI * r * q1);
    first + second + 0.25
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_slopes_match_differences_of_the_variance() {
        let acts = [
            Activation::Gelu,
            Activation::Erf {
                a: 1.3,
                b: 0.7,
                c: 0.2,
            },
            Activation::RELU,
        ];
        for act in acts {
            let e = Expectations::new(act, 120, false);
            for q in [0.05, 0.8, 3.0] {
                let h = 1e-5 * q;
                let fd = (e.variance(q + h) - e.variance(q - h)) / (2.0 * h);
                let got = e.variance_slope(q);
                assert!((fd - got).abs() < 1e-7, "{act} at {q}: {fd} vs {got}");
            }
        }
    }

    #[test]
    fn mehler_series_matches_two_dimensional_quadrature() {
        // P and its slope by the series of the 120-node rule against
        // neural-tangents' 2-D rule at 300 nodes (converged to 1e-8 here).
        // Gauss-Hermite of tanh converges slowly as q grows (its poles at
        // i pi / 2 come closer relative to the Gaussian's width): at q = 4
        // the 2-D rule of 120 nodes itself is off by 2e-7 in P and 2.5e-6 in
        // P', the series by 2.3e-7 and 1.8e-6.
        let reference = GaussHermite::new(300);
        for act in [Activation::Tanh, Activation::Sigmoid] {
            let e = Expectations::new(act, 120, false);
            for &(q, c, tol) in &[
                (0.3, 0.2, 1e-10),
                (1.5, 0.7, 1e-9),
                (4.0, 0.95, 3e-6),
                (2.0, -0.4, 1e-7),
            ] {
                let m = e.at(q);
                let (p, d) = kernel::numerical_pair(&reference, act, c * q, q, q);
                assert!(
                    (m.value(c) - p).abs() < tol,
                    "{act} P({q}, {c}): {} vs {p}",
                    m.value(c)
                );
                assert!(
                    (m.slope(c) - d).abs() < tol,
                    "{act} P'({q}, {c}): {} vs {d}",
                    m.slope(c)
                );
            }
        }
    }
}
