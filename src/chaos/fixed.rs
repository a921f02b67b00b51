//! Fixed points of the length and correlation maps and the depth scales, in
//! f64 (Poole et al. 2016; Schoenholz et al. 2017, section 3). The device
//! kernel `shaders/chaos.wgsl` runs the same steps in f32.
//!
//! - Length map `q -> sw2 V(q) + sb2`; `q*` is its limit from `q = 1` (a
//!   unit-variance input), `None` where it grows without bound.
//! - `chi_1 = sw2 E[phi'(u)^2]` at `q*`.
//! - Correlation map at `q*`: `c -> (sw2 P(c) + sb2) / (sw2 P(1) + sb2)` (the
//!   denominator is `q*`; written so that `c = 1` is a fixed point exactly).
//!   `c* = 1` when `chi_1 <= 1` (ordered); else the stable fixed point below 1.
//! - `xi_q = -1 / ln(sw2 V'(q*))`, `xi_c = -1 / ln(chi_c)` with
//!   `chi_c = sw2 E[phi'(u1) phi'(u2)]` at `c*` (`chi_1` when `c* = 1`).
//!
//! `None` marks a value that does not exist or is infinite: no finite `q*`
//! (then nothing else either), `c*` of signals that collapse to zero
//! (`q* = 0`), `chi_1` of sign, a depth scale where its slope reaches 1.

use super::gauss::Expectations;

/// Iterations of the safeguarded Newton solvers (each halves the bracket at worst).
const MAX_ITERS: usize = 200;

/// Below this `q*` is zero: the signal collapses.
pub const Q_ZERO: f64 = 1e-12;

/// The theory at one `(sigma_w^2, sigma_b^2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Point {
    /// Fixed point of the length map.
    pub q_star: Option<f64>,
    /// Stable fixed point of the correlation map.
    pub c_star: Option<f64>,
    /// `sw2 E[phi'(u)^2]` at `q*`.
    pub chi1: Option<f64>,
    /// Depth scale of the length.
    pub xi_q: Option<f64>,
    /// Depth scale of the correlation.
    pub xi_c: Option<f64>,
}

/// A root of `f` in `[lo, hi]` with `f(lo) >= 0 > f(hi)`, by Newton steps
/// kept inside the bracket (bisection otherwise) until a step is below
/// 1e-15 of `max(|x|, scale)`; `f` returns the value and its slope.
fn bracketed(
    mut lo: f64,
    mut hi: f64,
    start: f64,
    scale: f64,
    f: impl Fn(f64) -> (f64, f64),
) -> f64 {
    let mut x = start;
    for _ in 0..MAX_ITERS {
        let (fx, dfx) = f(x);
        if fx >= 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let mut nx = x - fx / dfx;
        if !(nx > lo && nx < hi) {
            nx = 0.5 * (lo + hi);
        }
        let done = (nx - x).abs() <= 1e-15 * x.abs().max(scale) || hi - lo <= 1e-15 * hi.abs();
        x = nx;
        if done || hi <= Q_ZERO * 1e-3 {
            break;
        }
    }
    x
}

/// `q*`: the limit of the length map from `q = 1`.
pub fn q_star(e: &Expectations, sw2: f64, sb2: f64) -> Option<f64> {
    if let Some(k) = e.linear_gain() {
        let slope = sw2 * k;
        return (slope < 1.0).then(|| sb2 / (1.0 - slope));
    }
    let g = |q: f64| {
        (
            sw2 * e.variance(q) + sb2 - q,
            sw2 * e.variance_slope(q) - 1.0,
        )
    };
    let g1 = g(1.0).0;
    if g1 == 0.0 {
        return Some(1.0);
    }
    let q = if g1 > 0.0 {
        // The map grows from 1: bracket the root above by factors of 4.
        let (mut lo, mut hi) = (1.0, 4.0);
        while g(hi).0 >= 0.0 {
            lo = hi;
            hi *= 4.0;
            if hi > 1e15 {
                return None;
            }
        }
        bracketed(lo, hi, hi, 0.0, g)
    } else {
        bracketed(0.0, 1.0, 1.0, 0.0, g)
    };
    Some(if q < Q_ZERO { 0.0 } else { q })
}

/// `chi_1` at `(sw2, sb2)`, `None` where `q*` or the slope does not exist.
pub fn chi1(e: &Expectations, sw2: f64, sb2: f64) -> Option<f64> {
    let q = q_star(e, sw2, sb2)?;
    e.slope_sq(q).map(|s| sw2 * s)
}

/// `-1 / ln(slope)`: 0 for a slope of 0, `None` from 1 on.
fn depth_scale(slope: f64) -> Option<f64> {
    if !(slope.is_finite() && slope < 1.0) {
        return None;
    }
    if slope <= 0.0 {
        return Some(0.0);
    }
    Some(-1.0 / slope.ln())
}

/// Everything at one point.
pub fn point(e: &Expectations, sw2: f64, sb2: f64) -> Point {
    let Some(q) = q_star(e, sw2, sb2) else {
        return Point::default();
    };
    let chi1 = e.slope_sq(q).map(|s| sw2 * s);
    let xi_q = depth_scale(sw2 * e.variance_slope(q));
    if q == 0.0 {
        // Both signals vanish: no correlation; chi_c is chi_1.
        return Point {
            q_star: Some(q),
            c_star: None,
            chi1,
            xi_q,
            xi_c: chi1.and_then(depth_scale),
        };
    }
    let m = e.at(q);
    let norm = sw2 * m.value(1.0) + sb2;
    let ordered = chi1.is_some_and(|c| c <= 1.0);
    let c_star = if ordered {
        1.0
    } else {
        let h = |c: f64| {
            (
                (sw2 * m.value(c) + sb2) / norm - c,
                sw2 * q * m.slope(c) / norm - 1.0,
            )
        };
        // h(0) >= 0 (P(0) = E[phi]^2), h < 0 just below 1; P has
        // non-negative Mehler coefficients, so h is convex on [0, 1] and
        // Newton from 0 rises monotonically to c*.
        bracketed(0.0, 1.0, 0.0, 1.0, h)
    };
    let chi_c = if ordered {
        chi1
    } else {
        Some(sw2 * q * m.slope(c_star) / norm)
    };
    Point {
        q_star: Some(q),
        c_star: Some(c_star),
        chi1,
        xi_q,
        xi_c: chi_c.and_then(depth_scale),
    }
}

/// The `sw2` in `[lo, hi]` where `chi_1 = 1` at `sb2`, by bisection to
/// machine precision (`None` when `chi_1 - 1` keeps one sign there).
pub fn critical_sw2(e: &Expectations, sb2: f64, lo: f64, hi: f64) -> Option<f64> {
    let f = |w: f64| chi1(e, w, sb2).map(|c| c - 1.0);
    // The point beyond which q* is lost counts as chaotic.
    let side = |w: f64| f(w).is_none_or(|v| v > 0.0);
    let (mut a, mut b) = (lo, hi);
    if side(a) || !side(b) {
        return None;
    }
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        if side(m) {
            b = m;
        } else {
            a = m;
        }
    }
    // The end where chi_1 is closer to 1.
    let fa = f(a).map_or(f64::INFINITY, f64::abs);
    let fb = f(b).map_or(f64::INFINITY, f64::abs);
    Some(if fa <= fb { a } else { b })
}

/// Improves an estimate `w0` of the critical `sw2` at `sb2` by secant steps
/// in f64 (for values found in f32 on a device), staying in `[lo, hi]`;
/// bisection over `[lo, hi]` where the steps do not reach `|chi_1 - 1| < 1e-9`.
pub fn polish_critical(e: &Expectations, sb2: f64, w0: f64, lo: f64, hi: f64) -> Option<f64> {
    let f = |w: f64| chi1(e, w, sb2).map(|c| c - 1.0);
    let secant = || -> Option<f64> {
        let (mut x0, mut x1) = (w0, (w0 * (1.0 - 1e-6)).max(lo));
        let (mut f0, mut f1) = (f(x0)?, f(x1)?);
        for _ in 0..20 {
            if f1.abs() < 1e-12 || f1 == f0 {
                break;
            }
            let x2 = (x1 - f1 * (x1 - x0) / (f1 - f0)).clamp(lo, hi);
            (x0, f0) = (x1, f1);
            x1 = x2;
            f1 = f(x1)?;
        }
        (f1.abs() < 1e-9).then_some(x1)
    };
    secant().or_else(|| critical_sw2(e, sb2, lo, hi))
}
