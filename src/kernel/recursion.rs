//! The infinite-width layer recursion of a fully connected network, entry by
//! entry, in f64: the CPU twin of `shaders/ntk.wgsl`.
//!
//! Conventions are neural-tangents' (`stax.Dense`, `stax.ABRelu`, `stax.Erf`,
//! `stax.Gelu`, `stax.Sign`, `stax.Identity`; Novak et al. 2020,
//! <https://arxiv.org/abs/1912.02803>). For one pair of inputs with
//! pre-activation variances `c1`, `c2` and covariance `q`:
//!
//! * Dense, `ntk` parameterization (Jacot et al. 2018): `q <- W^2 q + b^2`,
//!   `Theta <- q + W^2 Theta` (with the new `q`).
//! * Dense, `standard` parameterization (Sohl-Dickstein et al. 2020,
//!   <https://arxiv.org/abs/2001.07301>): `Theta <- fan_in * q + W^2 Theta + 1`
//!   (with the old `q`), then `q <- W^2 q + b^2`.
//! * Activation: `q <- E[phi(u) phi(v)]`, `Theta <- Theta * E[phi'(u) phi'(v)]`,
//!   `c <- E[phi(u)^2]`, in closed form per activation (arc-cosine kernels, Cho &
//!   Saul 2009, for ABRelu; Williams 1997 for erf; Tsuchida et al. 2020 for GELU).

use super::{Architecture, Parameterization};
use crate::activation::Activation;
use std::f64::consts::PI;

/// `atan2` with neural-tangents' value at (0, 0).
fn atan2_fill(y: f64, x: f64, fill: f64) -> f64 {
    if y == 0.0 && x == 0.0 {
        fill
    } else {
        y.atan2(x)
    }
}

/// One activation: returns `(q', dot)` where `Theta' = Theta * dot`.
/// `same` marks an entry of a kernel with itself on its diagonal, where
/// `c1 == c2 == q` exactly and the differences below are computed exactly.
pub fn activation_pair(act: Activation, q: f64, c1: f64, c2: f64, same: bool) -> (f64, f64) {
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
        Activation::Tanh => (f64::NAN, f64::NAN),
    }
}

/// One activation on a variance (the diagonal), neural-tangents' `nngp_fn_diag`.
pub fn activation_diag(act: Activation, c: f64) -> f64 {
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
        Activation::Tanh => f64::NAN,
    }
}

fn dense(arch: &Architecture, fan_in: f64, q: f64, theta: f64) -> (f64, f64) {
    let (w2, b2) = (arch.w_std * arch.w_std, arch.b_std * arch.b_std);
    match arch.parameterization {
        Parameterization::Ntk => {
            let qn = w2 * q + b2;
            (qn, qn + w2 * theta)
        }
        Parameterization::Standard => (w2 * q + b2, fan_in * q + w2 * theta + 1.0),
    }
}

/// Pre-activation variances of one input at each hidden layer: `table[l]` is
/// the variance entering activation `l`. `c0 = |x|^2 / d_in`.
pub fn diag_table(arch: &Architecture, c0: f64) -> Vec<f64> {
    let (w2, b2) = (arch.w_std * arch.w_std, arch.b_std * arch.b_std);
    let mut c = c0;
    let mut out = Vec::with_capacity(arch.depth);
    for _ in 0..arch.depth {
        c = w2 * c + b2;
        out.push(c);
        c = activation_diag(arch.activation, c);
    }
    out
}

/// `(nngp, ntk)` of the network's output for one pair of inputs, from their
/// input covariance `q0 = x1 . x2 / d_in` and the per-layer variance tables.
pub fn entry(arch: &Architecture, q0: f64, t1: &[f64], t2: &[f64], same: bool) -> (f64, f64) {
    let mut q = q0;
    let mut theta = 0.0;
    for l in 0..arch.depth {
        let fan_in = if l == 0 {
            arch.d_in as f64
        } else {
            arch.width as f64
        };
        (q, theta) = dense(arch, fan_in, q, theta);
        let (qn, dot) = activation_pair(arch.activation, q, t1[l], t2[l], same);
        q = qn;
        theta *= dot;
    }
    let fan_in = if arch.depth == 0 {
        arch.d_in as f64
    } else {
        arch.width as f64
    };
    dense(arch, fan_in, q, theta)
}
