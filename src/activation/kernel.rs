//! How an activation transforms the infinite-width kernels of one pair of
//! inputs, in f64: neural-tangents' `kernel_fn` of `stax.ABRelu`, `stax.Erf`,
//! `stax.Gelu`, `stax.Sign`, `stax.Identity` in closed form, and of
//! `stax.ElementwiseNumerical` (tanh, sigmoid, any user function) by
//! Gauss-Hermite quadrature. For pre-activations `(u, v)` with variances `c1`,
//! `c2` and covariance `q`: `q <- E[phi(u) phi(v)]`, `Theta <- Theta * E[phi'(u) phi'(v)]`,
//! `c <- E[phi(u)^2]`. Sources: arc-cosine kernels for ABRelu (Cho and Saul
//! 2009), Williams 1997 for erf, Tsuchida et al. 2020 for GELU; Novak et al.
//! 2020 (<https://arxiv.org/abs/1912.02803>) for the conventions.

use super::Activation;
use crate::quadrature::{DEFAULT_DEGREE, GaussHermite};
use std::f64::consts::PI;

/// `atan2` with neural-tangents' value at (0, 0).
fn atan2_fill(y: f64, x: f64, fill: f64) -> f64 {
    if y == 0.0 && x == 0.0 {
        fill
    } else {
        y.atan2(x)
    }
}

/// `(q', dot)` of one pair, where `Theta' = Theta * dot`. `same` marks an
/// entry of a kernel with itself on its diagonal, where `c1 == c2 == q`
/// exactly and the differences below are computed exactly.
pub fn pair(act: Activation, q: f64, c1: f64, c2: f64, same: bool) -> (f64, f64) {
    match act {
        Activation::Identity => (q, 1.0),
        Activation::AbRelu { a, b } => {
            let gap = if same {
                0.0
            } else {
                (c1 * c2 - q * q).max(0.0)
            };
            let root = gap.sqrt();
            let angle = atan2_fill(root, q, PI / 2.0);
            let factor = (a - b) * (a - b) / (2.0 * PI);
            let dot = (a * a + b * b) / 2.0 - factor * angle;
            (factor * root + dot * q, dot)
        }
        Activation::Erf { a, b, c } => {
            let (q, c1, c2) = (q * b * b, c1 * b * b, c2 * b * b);
            let gap = if same {
                1.0 + 4.0 * q
            } else {
                ((1.0 + 2.0 * c1) * (1.0 + 2.0 * c2) - 4.0 * q * q).max(0.0)
            };
            let root = gap.sqrt();
            let qn = 2.0 / PI * (2.0 * q).atan2(root);
            let dot = 4.0 / PI / root;
            (a * a * qn + c * c, a * a * b * b * dot)
        }
        Activation::Gelu => {
            let prod = c1 * c2;
            let prod1 = (c1 + 1.0) * (c2 + 1.0);
            let delta_sq = if same {
                2.0 * q + 1.0
            } else {
                (prod1 - q * q).max(0.0)
            };
            let delta = delta_sq.sqrt();
            let angle = q.atan2(delta);
            let mut qn = (q * q + prod * delta_sq) / (prod1 * delta) + q * angle;
            qn /= 2.0 * PI;
            qn += 0.25 * q;
            let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * q / delta / (2.0 * PI);
            let second = 0.25 + angle / (2.0 * PI);
            (qn, first + second)
        }
        Activation::Sign => {
            let gap = if same {
                0.0
            } else {
                (c1 * c2 - q * q).max(0.0)
            };
            let angle = atan2_fill(gap.sqrt(), q, PI / 2.0);
            (1.0 - 2.0 / PI * angle, 0.0)
        }
        Activation::Tanh | Activation::Sigmoid => {
            let (q, c2) = if same { (c1, c1) } else { (q, c2) };
            numerical_pair(&GaussHermite::cached(DEFAULT_DEGREE), act, q, c1, c2)
        }
    }
}

/// [`pair`] by quadrature of the given rule, for any activation.
pub fn numerical_pair(
    rule: &GaussHermite,
    act: Activation,
    q: f64,
    c1: f64,
    c2: f64,
) -> (f64, f64) {
    let f = |x: f64| act.apply(x);
    let df = |x: f64| act.derivative(x);
    (
        rule.expect2(q, c1, c2, f, f),
        rule.expect2(q, c1, c2, df, df),
    )
}

/// The variance after the activation, `E[phi(u)^2]` for `u ~ N(0, c)`
/// (neural-tangents' `nngp_fn_diag`).
pub fn diag(act: Activation, c: f64) -> f64 {
    match act {
        Activation::Identity => c,
        Activation::AbRelu { a, b } => (a * a + b * b) / 2.0 * c,
        Activation::Erf { a, b, c: shift } => {
            let cb = c * b * b;
            a * a * (2.0 / PI * cb.atan2((cb + 0.25).sqrt())) + shift * shift
        }
        Activation::Gelu => {
            let root = (1.0 + 2.0 * c).sqrt();
            let mut v = c / ((c + 1.0) * root) + c.atan2(root) / 2.0;
            v /= PI;
            v += 0.25;
            v * c
        }
        Activation::Sign => {
            if c == 0.0 {
                0.0
            } else {
                1.0
            }
        }
        Activation::Tanh | Activation::Sigmoid => {
            let f = |x: f64| act.apply(x);
            GaussHermite::cached(DEFAULT_DEGREE).expect(c, |u| f(u) * f(u))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_reproduces_closed_forms() {
        // The same expectations by quadrature and in closed form, for the smooth activations.
        let rule = GaussHermite::new(120);
        let acts = [
            Activation::Erf {
                a: 1.2,
                b: 0.8,
                c: 0.1,
            },
            Activation::Gelu,
            Activation::Identity,
        ];
        for act in acts {
            for &(q, c1, c2) in &[(0.3, 1.0, 0.8), (-0.5, 1.4, 0.9), (0.05, 0.2, 2.5)] {
                let (qe, de) = pair(act, q, c1, c2, false);
                let (qn, dn) = numerical_pair(&rule, act, q, c1, c2);
                assert!(
                    (qe - qn).abs() < 1e-9 * qe.abs().max(1.0),
                    "{act} q: {qe} vs {qn}"
                );
                assert!(
                    (de - dn).abs() < 1e-9 * de.abs().max(1.0),
                    "{act} dot: {de} vs {dn}"
                );
            }
        }
    }
}
