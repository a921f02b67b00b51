//! Kernels of tanh and sigmoid in f32 by Gauss-Hermite quadrature, the CPU
//! twin of the shader's: the same degree-120 rule and the same change of
//! variables as [`crate::quadrature::GaussHermite::expect2`], with the
//! activation and its derivative from one branch-free exponential so that
//! the inner sum over the rule's nodes vectorizes (eight lanes with AVX2).

use crate::activation::Activation;
use crate::quadrature::{DEFAULT_DEGREE, GaussHermite};
use std::sync::OnceLock;

/// The rule in f32, weights divided by sqrt(pi) (they sum to 1).
pub(super) struct Rule {
    nodes: [f32; DEFAULT_DEGREE],
    weights: [f32; DEFAULT_DEGREE],
}

// The inner sum runs over eight lanes.
const _: () = assert!(DEFAULT_DEGREE.is_multiple_of(8));

/// The degree-120 rule, computed once.
pub(super) fn rule() -> &'static Rule {
    static RULE: OnceLock<Rule> = OnceLock::new();
    RULE.get_or_init(|| {
        let gh = GaussHermite::cached(DEFAULT_DEGREE);
        let mut r = Rule {
            nodes: [0.0; DEFAULT_DEGREE],
            weights: [0.0; DEFAULT_DEGREE],
        };
        let norm = std::f64::consts::PI.sqrt();
        for (k, (&x, &w)) in gh.nodes.iter().zip(&gh.weights).enumerate() {
            r.nodes[k] = x as f32;
            r.weights[k] = (w / norm) as f32;
        }
        r
    })
}

/// `exp(x)` for `x <= 0` in f32 without branches (Cody-Waite reduction and
/// a degree-6 polynomial; relative error about 2e-7); 0 below -87.
#[inline(always)]
fn exp_neg(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.666_666_7e-1
                    + r * (4.166_666_8e-2 + r * (8.333_334e-3 + r * 1.388_889e-3)))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `(phi(v), phi'(v))` for tanh or sigmoid.
#[inline(always)]
fn value_and_slope(sigmoid: bool, v: f32) -> (f32, f32) {
    let a = v.abs();
    if sigmoid {
        let e = exp_neg(-a);
        let inv = 1.0 / (1.0 + e);
        let s = if v >= 0.0 { inv } else { e * inv };
        (s, e * inv * inv)
    } else {
        let e = exp_neg(-2.0 * a);
        let inv = 1.0 / (1.0 + e);
        // Near 0, (1 - e) / (1 + e) loses digits: the odd series instead.
        let a2 = a * a;
        let series = a
            * (1.0
                + a2 * (-1.0 / 3.0
                    + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0 + a2 * (62.0 / 2835.0)))));
        let t = if a < 0.125 { series } else { (1.0 - e) * inv };
        (t.copysign(v), 4.0 * e * inv * inv)
    }
}

/// `(E[phi(u) phi(v)], E[phi'(u) phi'(v)])` for `(u, v)` Gaussian with
/// variances `c1`, `c2` and covariance `q` (`same`: the point with itself,
/// `q = c2 = c1`), as [`crate::activation::kernel::pair`] in f64.
#[inline(always)]
pub(super) fn pair(act: Activation, q: f32, c1: f32, c2: f32, same: bool) -> (f32, f32) {
    let sigmoid = matches!(act, Activation::Sigmoid);
    let (q, c2) = if same { (c1, c1) } else { (q, c2) };
    let rule = rule();
    let su = (2.0 * c1.max(0.0)).sqrt();
    let sv1 = q / (c1 / 2.0).max(1e-30).sqrt();
    let sv2 = (2.0 * (c2 - q * q / c1)).max(0.0).sqrt();
    let (mut value, mut slope) = (0.0f32, 0.0f32);
    for (&x, &wx) in rule.nodes.iter().zip(&rule.weights) {
        let (fu, du) = value_and_slope(sigmoid, su * x);
        let shift = sv1 * x;
        // Eight partial sums, one per lane: a single running sum would keep
        // the compiler from vectorizing (it may not reorder f32 additions).
        let (mut inner_v, mut inner_d) = ([0.0f32; 8], [0.0f32; 8]);
        for (ys, ws) in rule.nodes.chunks_exact(8).zip(rule.weights.chunks_exact(8)) {
            for k in 0..8 {
                let (fv, dv) = value_and_slope(sigmoid, shift + sv2 * ys[k]);
                inner_v[k] += ws[k] * fv;
                inner_d[k] += ws[k] * dv;
            }
        }
        value += wx * fu * inner_v.iter().sum::<f32>();
        slope += wx * du * inner_d.iter().sum::<f32>();
    }
    (value, slope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::kernel;

    #[test]
    fn exponential_is_within_3e7_relative() {
        for k in 0..=8700 {
            let x = -(k as f32) / 100.0;
            let want = f64::from(x).exp();
            let got = f64::from(exp_neg(x));
            assert!(
                (got - want).abs() <= 5e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn activations_and_slopes_are_within_4_ulps() {
        for k in -2000..=2000 {
            let v = k as f32 / 100.0;
            let (t, dt) = value_and_slope(false, v);
            let tw = f64::from(v).tanh();
            assert!(
                (f64::from(t) - tw).abs() <= 5e-7 * tw.abs().max(1e-30),
                "tanh({v})"
            );
            let dtw = 1.0 / f64::from(v).cosh().powi(2);
            assert!(
                (f64::from(dt) - dtw).abs() <= 5e-7 * dtw + 1e-37,
                "tanh'({v})"
            );
            let (s, ds) = value_and_slope(true, v);
            let sw = 1.0 / (1.0 + (-f64::from(v)).exp());
            assert!((f64::from(s) - sw).abs() <= 5e-7 * sw, "sigmoid({v})");
            let dsw = sw * (1.0 - sw);
            assert!((f64::from(ds) - dsw).abs() <= 5e-7 * dsw, "sigmoid'({v})");
        }
    }

    #[test]
    fn pairs_match_the_f64_kernels_to_2e6_of_their_scale() {
        for act in [Activation::Tanh, Activation::Sigmoid] {
            for &(q, c1, c2, same) in &[
                (0.3, 1.0, 0.8, false),
                (-0.5, 1.4, 0.9, false),
                (0.001, 0.2, 2.5, false),
                (2.0, 2.0, 2.0, true),
                (0.0, 5.0, 3.0, false),
            ] {
                let (v, d) = pair(act, q as f32, c1 as f32, c2 as f32, same);
                let (vw, dw) = kernel::pair(act, q, c1, c2, same);
                // The covariance's natural scale (Cauchy-Schwarz): sums
                // that cancel down to a small covariance keep f32's
                // absolute error on this scale, not on their result.
                let scale = (kernel::diag(act, c1) * kernel::diag(act, c2)).sqrt();
                assert!(
                    (f64::from(v) - vw).abs() <= 2e-6 * scale,
                    "{act} {q}: {v} vs {vw}"
                );
                assert!(
                    (f64::from(d) - dw).abs() <= 2e-6 * dw.abs(),
                    "{act}' {q}: {d} vs {dw}"
                );
            }
        }
    }
}
