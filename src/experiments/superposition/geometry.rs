//! What a trained member's weights say about superposition, with the
//! definitions of Elhage et al. (2022): for the columns `W_i` of `W` (`m x
//! n`), the feature norm `||W_i||`, its superposition `sum_{j != i} (W^_i .
//! W_j)^2` (`W^_i = W_i / ||W_i||`), its dimensionality `D_i = ||W_i||^2 /
//! sum_j (W^_i . W_j)^2`, the features represented (norm above
//! [`REPRESENTED`]) and the model's dimensions per feature `m / ||W||_F^2`.

use serde::Serialize;

/// A feature counts as represented when its norm exceeds this (a learned
/// feature has norm near 1, an ignored one near 0).
pub const REPRESENTED: f64 = 0.5;

/// The geometry of one member's weights.
#[derive(Clone, Debug, Serialize)]
pub struct Geometry {
    /// `||W_i||` per feature.
    pub norms: Vec<f64>,
    /// `sum_{j != i} (W^_i . W_j)^2` per feature (0 for a zero column).
    pub superposition: Vec<f64>,
    /// `D_i` per feature (0 for a zero column).
    pub dimensionality: Vec<f64>,
    /// Features with `||W_i|| > REPRESENTED`.
    pub features_represented: usize,
    /// `m / ||W||_F^2`.
    pub dims_per_feature: f64,
}

/// The geometry of `w` (`[m, n]`, row-major: hidden unit by feature).
pub fn measure(w: &[f32], hidden: usize, features: usize) -> Geometry {
    let (m, n) = (hidden, features);
    let col = |i: usize| -> Vec<f64> { (0..m).map(|k| f64::from(w[k * n + i])).collect() };
    let cols: Vec<Vec<f64>> = (0..n).map(col).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let norms: Vec<f64> = cols.iter().map(|c| dot(c, c).sqrt()).collect();
    let mut superposition = vec![0.0; n];
    let mut dimensionality = vec![0.0; n];
    for i in 0..n {
        if norms[i] == 0.0 {
            continue;
        }
        let overlaps: Vec<f64> = (0..n)
            .map(|j| (dot(&cols[i], &cols[j]) / norms[i]).powi(2))
            .collect();
        let total: f64 = overlaps.iter().sum();
        superposition[i] = total - overlaps[i];
        dimensionality[i] = norms[i] * norms[i] / total;
    }
    let frob: f64 = norms.iter().map(|v| v * v).sum();
    Geometry {
        features_represented: norms.iter().filter(|&&v| v > REPRESENTED).count(),
        dims_per_feature: if frob > 0.0 {
            m as f64 / frob
        } else {
            f64::NAN
        },
        norms,
        superposition,
        dimensionality,
    }
}

/// `W^T W` (`n x n`) of `w` (`[m, n]`).
pub fn gram(w: &[f32], hidden: usize, features: usize) -> Vec<f64> {
    let n = features;
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..hidden)
                .map(|k| f64::from(w[k * n + i]) * f64::from(w[k * n + j]))
                .sum();
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_features_have_one_dimension_and_antipodal_pairs_half() {
        // m = 2, n = 4: W_0 = (1, 0), W_1 = (0, 1), W_2 = W_3 = 0.
        let w = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let g = measure(&w, 2, 4);
        assert_eq!(g.features_represented, 2);
        assert_eq!(g.dimensionality, vec![1.0, 1.0, 0.0, 0.0]);
        assert_eq!(g.superposition, vec![0.0; 4]);
        assert!((g.dims_per_feature - 1.0).abs() < 1e-12);
        // An antipodal pair in one dimension: W = (1, -1).
        let g = measure(&[1.0, -1.0], 1, 2);
        assert_eq!(g.dimensionality, vec![0.5, 0.5]);
        assert_eq!(g.superposition, vec![1.0, 1.0]);
        assert!((g.dims_per_feature - 0.5).abs() < 1e-12);
        // A triangle in two dimensions: D = 2/3 each.
        let a: Vec<f64> = (0..3)
            .map(|k| 2.0 * std::f64::consts::PI * k as f64 / 3.0)
            .collect();
        let w: Vec<f32> = a
            .iter()
            .map(|t| t.cos() as f32)
            .chain(a.iter().map(|t| t.sin() as f32))
            .collect();
        let g = measure(&w, 2, 3);
        for d in &g.dimensionality {
            assert!((d - 2.0 / 3.0).abs() < 1e-6, "{d}");
        }
    }
}
