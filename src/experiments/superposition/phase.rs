//! The two-feature phase diagram of Elhage et al. (2022, "Superposition as a
//! Phase Change"): `n = 2` features, `m = 1` hidden dimension, feature 1 of
//! importance 1 and an extra feature 2 of relative importance `r`, both of
//! density `p = 1 - S`.
//!
//! The theory compares the expected loss (importance-weighted squared error
//! per draw, summed over features) of the three candidate solutions:
//! - the extra feature is not represented (`W = (1, 0)`, its output the bias
//!   `p / 2`): `r (p/3 - p^2/4)`;
//! - the extra feature gets the dimension and feature 1 is dropped
//!   (`W = (0, 1)`): `p/3 - p^2/4`;
//! - both are stored in superposition, antipodal (`W = (1, -1)`, `b = 0`):
//!   only draws where both are active err, by `min(x_1, x_2)^2` on each, so
//!   `(1 + r) p^2 / 6`.
//!
//! Superposition wins below the density `4r / (2 + 5r)` for `r <= 1` and
//! `4 / (5 + 2r)` for `r >= 1` (both `4/7` at `r = 1`); above it the more
//! important feature takes the dimension (the boundary `r = 1`).

use super::geometry::REPRESENTED;
use serde::Serialize;

/// A phase of the two-feature model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Feature 1 only: the extra feature is not represented.
    NotRepresented,
    /// Feature 2 only: the extra feature gets the dimension.
    Dedicated,
    /// Both features, in superposition (antipodal).
    Superposition,
    /// Neither feature (or both with the same sign: no phase of the theory).
    Other,
}

impl Phase {
    /// A legend label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::NotRepresented => "extra feature not represented (feature 1 only)",
            Phase::Dedicated => "extra feature gets the dimension (feature 2 only)",
            Phase::Superposition => "both in superposition (antipodal)",
            Phase::Other => "other",
        }
    }
}

/// Expected losses of the three candidate solutions at relative importance
/// `r` and density `p`: (not represented, dedicated, superposition).
pub fn candidate_losses(r: f64, p: f64) -> [f64; 3] {
    let one = p / 3.0 - p * p / 4.0;
    [r * one, one, (1.0 + r) * p * p / 6.0]
}

/// The phase the theory predicts (the candidate of least expected loss).
pub fn theory(r: f64, p: f64) -> Phase {
    let l = candidate_losses(r, p);
    if l[2] < l[0].min(l[1]) {
        Phase::Superposition
    } else if l[0] <= l[1] {
        Phase::NotRepresented
    } else {
        Phase::Dedicated
    }
}

/// The density below which superposition wins at relative importance `r`.
pub fn superposition_boundary(r: f64) -> f64 {
    if r <= 1.0 {
        4.0 * r / (2.0 + 5.0 * r)
    } else {
        4.0 / (5.0 + 2.0 * r)
    }
}

/// Distance, in decades of `r` and `p`, from `(r, p)` to the nearest
/// theoretical boundary (the curve [`superposition_boundary`] and the line
/// `r = 1` above it).
pub fn distance_to_boundary(r: f64, p: f64) -> f64 {
    let (lr, lp) = (r.log10(), p.log10());
    let junction = (4.0f64 / 7.0).log10();
    // The vertical line r = 1 for p >= 4/7.
    let line = if lp >= junction {
        lr.abs()
    } else {
        lr.hypot(lp - junction)
    };
    // The curve, sampled finely over r in [1e-3, 1e3].
    let curve = (0..=6000)
        .map(|k| {
            let x = -3.0 + k as f64 / 1000.0;
            let y = superposition_boundary(10f64.powf(x)).log10();
            (lr - x).hypot(lp - y)
        })
        .fold(f64::INFINITY, f64::min);
    line.min(curve)
}

/// The measured phase of a trained two-feature model `W = (w_1, w_2)`.
pub fn classify(w: [f32; 2]) -> Phase {
    let (a, b) = (f64::from(w[0]), f64::from(w[1]));
    match (a.abs() > REPRESENTED, b.abs() > REPRESENTED) {
        (true, false) => Phase::NotRepresented,
        (false, true) => Phase::Dedicated,
        (true, true) if a * b < 0.0 => Phase::Superposition,
        _ => Phase::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_separate_the_phases() {
        for &r in &[0.1, 0.3, 0.7, 1.0, 1.5, 4.0, 10.0] {
            let b = superposition_boundary(r);
            assert_eq!(theory(r, b * 0.98), Phase::Superposition, "r {r}");
            assert_ne!(
                theory(r, (b * 1.02).min(1.0)),
                Phase::Superposition,
                "r {r}"
            );
            // At the boundary the superposition loss equals the better other one.
            let l = candidate_losses(r, b);
            assert!((l[2] - l[0].min(l[1])).abs() < 1e-12);
        }
        assert_eq!(theory(0.5, 0.9), Phase::NotRepresented);
        assert_eq!(theory(2.0, 0.9), Phase::Dedicated);
        assert!((superposition_boundary(1.0) - 4.0 / 7.0).abs() < 1e-12);
        assert!(distance_to_boundary(1.0, 0.9) < 1e-9);
        for r in [0.3, 3.0] {
            assert!(distance_to_boundary(r, superposition_boundary(r)) < 1e-3);
        }
        // A decade of importance from the line r = 1, 0.61 decades from the curve.
        let d = distance_to_boundary(0.1, 0.9);
        assert!((d - 0.6068).abs() < 1e-3, "{d}");
    }
}
