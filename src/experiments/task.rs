//! The inputs of `learning-curves` and `random-labels`: a pool of points with
//! labels (training sets are drawn from it) and separate test points, either
//! the synthetic sphere task or the user's own arrays split at random.

use super::sphere::{Target, TargetSpec, sample};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::Rng;

/// Where the points come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "data")]
pub enum Source {
    /// Uniform on the sphere of radius `sqrt(d)`, with a target of known
    /// spherical-harmonic content (see [`TargetSpec::parse`]).
    Sphere {
        /// Input dimension.
        d: usize,
        /// The `--target` text.
        target: String,
    },
    /// The user's inputs and labels (one label column).
    Files {
        /// The `.npy` inputs, `[rows, d]`.
        x: String,
        /// The `.npy` labels, `[rows]` or `[rows, 1]`.
        y: String,
    },
}

/// Pool and test points with their labels (without noise).
#[derive(Clone, Debug)]
pub struct Task {
    /// Pool inputs (training sets are drawn from them).
    pub pool_x: Matrix<f32>,
    /// Pool labels.
    pub pool_y: Vec<f64>,
    /// Test inputs.
    pub test_x: Matrix<f32>,
    /// Test labels.
    pub test_y: Vec<f64>,
    /// The sphere's target (for its exact spectrum and per-degree parts).
    pub target: Option<Target>,
    /// The target's degree-`k` parts at each test point (sphere only).
    pub test_parts: Vec<Vec<(usize, f64)>>,
}

impl Task {
    /// Builds the task: `pool` pool points and `n_test` test points. Files
    /// are split at random (seeded): `n_test` rows for testing, up to `pool`
    /// of the others for the pool.
    pub fn build(source: &Source, pool: usize, n_test: usize, seed: u64) -> Result<Task> {
        match source {
            Source::Sphere { d, target } => {
                if *d < 2 {
                    return Err(Error::invalid(format!("d must be at least 2, got {d}")));
                }
                let spec = TargetSpec::parse(target)?;
                let f = Target::new(*d, &spec, seed)?;
                let mut r = Rng::new(seed ^ 0x5e7_5a3e);
                let pool_x = sample(&mut r, pool, *d);
                let test_x = sample(&mut r, n_test, *d);
                let pool_y = (0..pool).map(|i| f.value(pool_x.row(i))).collect();
                let test_parts: Vec<Vec<(usize, f64)>> =
                    (0..n_test).map(|i| f.components(test_x.row(i))).collect();
                let test_y = test_parts
                    .iter()
                    .map(|p| p.iter().map(|c| c.1).sum())
                    .collect();
                Ok(Task {
                    pool_x,
                    pool_y,
                    test_x,
                    test_y,
                    target: Some(f),
                    test_parts,
                })
            }
            Source::Files { x, y } => {
                let xm = crate::npy::read_matrix(std::path::Path::new(x), "--x")?.to_f32();
                let ym = crate::npy::read_targets(std::path::Path::new(y), "--y")?;
                Task::from_arrays(xm, ym, pool, n_test, seed)
            }
        }
    }

    /// Splits arrays already read: checks the labels (one per row of `x`,
    /// one column) and draws the test rows at random.
    pub fn from_arrays(
        x: Matrix<f32>,
        y: Matrix,
        pool: usize,
        n_test: usize,
        seed: u64,
    ) -> Result<Task> {
        if y.cols != 1 && y.rows != 1 {
            return Err(Error::invalid(format!(
                "y must hold one label per row of x ([rows] or [rows, 1]), got [{}, {}]",
                y.rows, y.cols
            )));
        }
        let labels: Vec<f64> = y.data.clone();
        if labels.len() != x.rows {
            return Err(Error::invalid(format!(
                "y must hold one label per row of x: {} labels for {} rows",
                labels.len(),
                x.rows
            )));
        }
        if let Some(p) = labels.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "y must hold finite labels: row {p} is not finite"
            )));
        }
        if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "x must hold finite values: row {} is not finite",
                p / x.cols.max(1)
            )));
        }
        if n_test == 0 || n_test >= x.rows {
            return Err(Error::invalid(format!(
                "n-test must be at least 1 and leave pool points among the {} rows, got {n_test}",
                x.rows
            )));
        }
        let mut order: Vec<usize> = (0..x.rows).collect();
        let mut r = Rng::new(seed ^ 0x000f_11e5);
        for i in (1..order.len()).rev() {
            order.swap(i, r.below(i + 1));
        }
        let take = |rows: &[usize]| -> Matrix<f32> {
            let mut data = Vec::with_capacity(rows.len() * x.cols);
            for &i in rows {
                data.extend_from_slice(x.row(i));
            }
            Matrix {
                rows: rows.len(),
                cols: x.cols,
                data,
            }
        };
        let test = &order[..n_test];
        let rest = &order[n_test..];
        let pool_rows = &rest[..pool.min(rest.len())];
        Ok(Task {
            pool_x: take(pool_rows),
            pool_y: pool_rows.iter().map(|&i| labels[i]).collect(),
            test_x: take(test),
            test_y: test.iter().map(|&i| labels[i]).collect(),
            target: None,
            test_parts: Vec::new(),
        })
    }

    /// Points in the pool.
    pub fn pool(&self) -> usize {
        self.pool_x.rows
    }

    /// Input features.
    pub fn d(&self) -> usize {
        self.pool_x.cols
    }

    /// Mean square of the pool labels.
    pub fn label_power(&self) -> f64 {
        crate::stats::mean(&self.pool_y.iter().map(|v| v * v).collect::<Vec<_>>())
    }
}

/// `n` distinct indices below `m`, seeded (a partial Fisher-Yates shuffle).
pub fn draw(m: usize, n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut r = Rng::stream(seed, stream);
    let mut idx: Vec<usize> = (0..m).collect();
    for i in 0..n.min(m) {
        let j = i + r.below(m - i);
        idx.swap(i, j);
    }
    idx.truncate(n.min(m));
    idx
}

/// Rows `idx` of `x`.
pub fn rows(x: &Matrix<f32>, idx: &[usize]) -> Matrix<f32> {
    let mut data = Vec::with_capacity(idx.len() * x.cols);
    for &i in idx {
        data.extend_from_slice(x.row(i));
    }
    Matrix {
        rows: idx.len(),
        cols: x.cols,
        data,
    }
}
