//! The synthetic task of `learning-curves` and `random-labels`: points
//! uniform on the sphere of radius `sqrt(d)` (so that `x . x / d = 1` and the
//! first layer sees the cosine `t` of the angle), a target of known
//! spherical-harmonic content, and the exact population spectrum of the
//! kernel, which on the sphere depends on `t` only.
//!
//! Funk-Hecke: a dot-product kernel `k(t)` acts on the degree-`k` spherical
//! harmonics (a space of dimension `N(d, k)`) as the number
//! `mu_k = E_t[k(t) P_k(t)]`, where `P_k` is the Gegenbauer polynomial of
//! the sphere in `R^d` normalized to `P_k(1) = 1` and `t` is the cosine
//! between two independent uniform points (density proportional to
//! `(1 - t^2)^((d - 3) / 2)`); and `k(t) = sum_k N(d, k) mu_k P_k(t)` (Smola,
//! Ovari and Williamson 2001; Bietti and Mairal 2019, section 3). The
//! expectation is computed by Gauss-Legendre quadrature in the angle, where
//! the kernels of ReLU-like networks are smooth.

use crate::arch::KernelProgram;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::predict::Get;
use crate::rng::Rng;

/// `N(d, k)`: the dimension of the degree-`k` spherical harmonics in `R^d`.
pub fn harmonics_dimension(d: usize, k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if d == 2 {
        return 2.0;
    }
    // (2k + d - 2) / k * C(k + d - 3, k - 1)
    let mut c = 1.0f64;
    for j in 1..k {
        c *= (d - 2 + j) as f64 / j as f64;
    }
    (2 * k + d - 2) as f64 / k as f64 * c
}

/// `P_0(t) ..= P_kmax(t)`: the Gegenbauer polynomials of the sphere in `R^d`
/// normalized to `P_k(1) = 1` (Legendre for `d = 3`, Chebyshev for `d = 2`).
pub fn gegenbauer(d: usize, kmax: usize, t: f64) -> Vec<f64> {
    let mut p = Vec::with_capacity(kmax + 1);
    p.push(1.0);
    if kmax >= 1 {
        p.push(t);
    }
    let dd = d as f64;
    for k in 1..kmax {
        let kf = k as f64;
        let next = ((2.0 * kf + dd - 2.0) * t * p[k] - kf * p[k - 1]) / (kf + dd - 2.0);
        p.push(next);
    }
    p
}

/// Nodes and weights of Gauss-Legendre quadrature on [-1, 1] (Newton on the
/// Legendre recurrence from the usual asymptotic guesses).
pub fn gauss_legendre(q: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; q];
    let mut w = vec![0.0; q];
    let qf = q as f64;
    for i in 0..q {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (qf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 0..q {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = ((2.0 * jf + 1.0) * z * p2 - jf * p3) / (jf + 1.0);
            }
            dp = qf * (z * p1 - p2) / (z * z - 1.0);
            let dz = p1 / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        x[i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
    (x, w)
}

/// The exact population spectrum of a dot-product kernel on the sphere.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExactSpectrum {
    /// `mu_k` for `k = 0..=kmax`.
    pub eigenvalues: Vec<f64>,
    /// `N(d, k)`.
    pub multiplicity: Vec<f64>,
    /// `k(1)`, the sum of all eigenvalues.
    pub trace: f64,
    /// The part of the trace beyond degree `kmax`.
    pub tail: f64,
}

/// `k(t)` of an architecture for points on the sphere of radius `sqrt(d)`.
pub fn kernel_of_cosine(program: &KernelProgram, get: Get, t: f64, same: bool) -> f64 {
    let v = program.variances(1.0);
    let (q, th) = program.entry(t, &v, &v, same);
    match get {
        Get::Nngp => q,
        Get::Ntk => th,
    }
}

/// The Gegenbauer coefficients `mu_0..=mu_kmax` of the architecture's kernel
/// on the sphere in `R^d` (quadrature of `8 kmax + 400` nodes in the angle;
/// rounding below about `1e-14 k(1)` is clamped to zero, as a
/// positive-definite kernel's coefficients are non-negative).
pub fn exact_spectrum(
    program: &KernelProgram,
    get: Get,
    d: usize,
    kmax: usize,
) -> Result<ExactSpectrum> {
    if d < 2 {
        return Err(Error::invalid(
            "d must be at least 2 for the sphere's spectrum",
        ));
    }
    let q = 8 * kmax + 400;
    let (x, w) = gauss_legendre(q);
    let half_pi = std::f64::consts::FRAC_PI_2;
    let mut mu = vec![0.0; kmax + 1];
    let mut norm = 0.0;
    for (xi, wi) in x.iter().zip(&w) {
        let theta = (xi + 1.0) * half_pi;
        let t = theta.cos();
        let wt = wi * theta.sin().powi(d as i32 - 2);
        norm += wt;
        let kv = kernel_of_cosine(program, get, t, false);
        for (m, p) in mu.iter_mut().zip(gegenbauer(d, kmax, t)) {
            *m += wt * kv * p;
        }
    }
    let trace = kernel_of_cosine(program, get, 1.0, true);
    if !(trace.is_finite() && trace > 0.0 && norm > 0.0) {
        return Err(Error::Numerical(format!(
            "the kernel at t = 1 is {trace}: no spectrum"
        )));
    }
    for m in mu.iter_mut() {
        *m /= norm;
        if *m < 1e-14 * trace {
            *m = m.max(0.0);
        }
    }
    let multiplicity: Vec<f64> = (0..=kmax).map(|k| harmonics_dimension(d, k)).collect();
    let covered: f64 = mu.iter().zip(&multiplicity).map(|(m, n)| m * n).sum();
    Ok(ExactSpectrum {
        eigenvalues: mu,
        multiplicity,
        trace,
        tail: (trace - covered).max(0.0),
    })
}

/// The target's power in each degree, from `--target`: `power:B[:K]` (power
/// proportional to `k^-B` in degrees 1 to K, default 100, total 1) or a list
/// `DEGREE:POWER,...`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    /// Power in degree `k` at index `k`.
    pub powers: Vec<f64>,
}

impl TargetSpec {
    /// Parses the `--target` text.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "target must be power:B[:K] (power ~ k^-B over degrees 1..K) or DEGREE:POWER,... (e.g. 1:0.5,2:0.3), got '{s}'"
            ))
        };
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("power:") {
            let mut parts = rest.split(':');
            let b: f64 = parts
                .next()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(bad)?;
            let k: usize = match parts.next() {
                Some(v) => v.trim().parse().map_err(|_| bad())?,
                None => 100,
            };
            if parts.next().is_some() || !b.is_finite() || k == 0 || k > 2000 {
                return Err(bad());
            }
            let mut powers: Vec<f64> = (0..=k)
                .map(|j| if j == 0 { 0.0 } else { (j as f64).powf(-b) })
                .collect();
            let total: f64 = powers.iter().sum();
            powers.iter_mut().for_each(|p| *p /= total);
            return Ok(TargetSpec { powers });
        }
        let mut powers = Vec::new();
        for item in s.split(',') {
            let (k, p) = item.split_once(':').ok_or_else(bad)?;
            let k: usize = k.trim().parse().map_err(|_| bad())?;
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if k > 2000 || !(p.is_finite() && p >= 0.0) {
                return Err(bad());
            }
            if powers.len() <= k {
                powers.resize(k + 1, 0.0);
            }
            powers[k] += p;
        }
        if powers.iter().sum::<f64>() <= 0.0 {
            return Err(Error::invalid("target must have some power"));
        }
        Ok(TargetSpec { powers })
    }

    /// The highest degree with power.
    pub fn max_degree(&self) -> usize {
        self.powers.iter().rposition(|p| *p > 0.0).unwrap_or(0)
    }
}

/// One degree of the target: `sqrt(power) sum_j a_j P_k(x . u_j / |x|)`,
/// normalized to mean square `power` exactly (Funk-Hecke:
/// `E[P_k(x.u) P_k(x.u')] = P_k(u.u') / N(d, k)`).
#[derive(Clone, Debug)]
struct Component {
    k: usize,
    dirs: Vec<Vec<f64>>,
    coef: Vec<f64>,
}

/// A target function on the sphere with a known power in each degree.
#[derive(Clone, Debug)]
pub struct Target {
    d: usize,
    parts: Vec<Component>,
    /// The power in each degree (as asked for).
    pub powers: Vec<f64>,
}

fn unit(r: &mut Rng, d: usize) -> Vec<f64> {
    loop {
        let v: Vec<f64> = (0..d).map(|_| r.normal()).collect();
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-12 {
            return v.into_iter().map(|a| a / n).collect();
        }
    }
}

impl Target {
    /// A random target of the given powers: each degree a combination of
    /// `min(8, N(d, k))` zonal harmonics about random directions.
    pub fn new(d: usize, spec: &TargetSpec, seed: u64) -> Result<Self> {
        if d < 2 {
            return Err(Error::invalid("d must be at least 2 on the sphere"));
        }
        let mut r = Rng::new(seed ^ 0x5a4e_7e41);
        let mut parts = Vec::new();
        for (k, &p) in spec.powers.iter().enumerate() {
            if p <= 0.0 {
                continue;
            }
            let nk = harmonics_dimension(d, k);
            let j = (nk.min(8.0)) as usize;
            let dirs: Vec<Vec<f64>> = (0..j).map(|_| unit(&mut r, d)).collect();
            let a: Vec<f64> = (0..j).map(|_| r.normal()).collect();
            let mut norm2 = 0.0;
            for (a1, u1) in a.iter().zip(&dirs) {
                for (a2, u2) in a.iter().zip(&dirs) {
                    let c: f64 = u1.iter().zip(u2).map(|(x, y)| x * y).sum();
                    norm2 += a1 * a2 * gegenbauer(d, k, c.clamp(-1.0, 1.0))[k];
                }
            }
            norm2 /= nk;
            if norm2.is_nan() || norm2 <= 0.0 {
                continue;
            }
            let s = (p / norm2).sqrt();
            parts.push(Component {
                k,
                dirs,
                coef: a.into_iter().map(|v| v * s).collect(),
            });
        }
        Ok(Target {
            d,
            parts,
            powers: spec.powers.clone(),
        })
    }

    /// The target's degree-`k` parts at a point, as `(k, value)`.
    pub fn components(&self, x: &[f32]) -> Vec<(usize, f64)> {
        let norm = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        self.parts
            .iter()
            .map(|c| {
                let v: f64 = c
                    .dirs
                    .iter()
                    .zip(&c.coef)
                    .map(|(u, a)| {
                        let t: f64 = u.iter().zip(x).map(|(u, x)| u * *x as f64).sum::<f64>()
                            / norm.max(1e-300);
                        a * gegenbauer(self.d, c.k, t.clamp(-1.0, 1.0))[c.k]
                    })
                    .sum();
                (c.k, v)
            })
            .collect()
    }

    /// The target at a point.
    pub fn value(&self, x: &[f32]) -> f64 {
        self.components(x).iter().map(|c| c.1).sum()
    }
}

/// `n` points uniform on the sphere of radius `sqrt(d)`.
pub fn sample(r: &mut Rng, n: usize, d: usize) -> Matrix<f32> {
    let scale = (d as f64).sqrt();
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        data.extend(unit(r, d).into_iter().map(|v| (v * scale) as f32));
    }
    Matrix {
        rows: n,
        cols: d,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_and_polynomials() {
        assert_eq!(harmonics_dimension(3, 4), 9.0);
        assert_eq!(harmonics_dimension(2, 5), 2.0);
        assert_eq!(harmonics_dimension(4, 2), 9.0);
        // Legendre P_3 at 0.3.
        let p = gegenbauer(3, 3, 0.3);
        assert!((p[3] - 0.5 * (5.0 * 0.027 - 3.0 * 0.3)).abs() < 1e-14);
        assert!((gegenbauer(7, 12, 1.0)[12] - 1.0).abs() < 1e-12);
        let (x, w) = gauss_legendre(20);
        let int: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(6)).sum();
        assert!((int - 2.0 / 7.0).abs() < 1e-14);
    }

    #[test]
    fn the_spectrum_sums_to_the_kernel() {
        let arch =
            crate::Arch::parse("Dense(64, b_std=0.1), Relu, Dense(64), Relu, Dense(1)").unwrap();
        let p = arch.kernel_program(5).unwrap();
        let s = exact_spectrum(&p, Get::Ntk, 5, 60).unwrap();
        // k(t) = sum N mu P(t) at a few t (the tail beyond degree 60 is small).
        for &t in &[-0.7, 0.0, 0.4] {
            let series: f64 = gegenbauer(5, 60, t)
                .iter()
                .zip(&s.eigenvalues)
                .zip(&s.multiplicity)
                .map(|((p, m), n)| p * m * n)
                .sum();
            let k = kernel_of_cosine(&p, Get::Ntk, t, false);
            assert!(
                (series - k).abs() < 1e-3 * s.trace,
                "t {t}: {series} against {k}"
            );
        }
        assert!(s.tail < 2e-2 * s.trace, "tail {} of {}", s.tail, s.trace);
    }
}
