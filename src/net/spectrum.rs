//! The top of the Hessian's spectrum and its trace, for every member at
//! once, on the device.
//!
//! **Eigenvalues**: Lanczos with full reorthogonalization (classical
//! Gram-Schmidt, twice, against every earlier Lanczos vector). The vectors,
//! the Hessian-vector products and the per-member dot products stay on the
//! device as batched products over the members; only each member's
//! tridiagonal matrix (its `alpha` and `beta`) comes to the host, where its
//! small eigenproblem gives the Ritz values. A member has converged when the
//! residual `beta_j |s_j|` of each of its top-k Ritz pairs is below
//! `tol` times its largest Ritz value in magnitude; all members step
//! together until all have, or until `max_iters`.
//!
//! **Trace**: Hutchinson's estimator on what the Krylov basis `Q` leaves
//! out: `tr(H) = tr(Q^T H Q) + tr((I - QQ^T) H (I - QQ^T))`, the first term
//! exact (the sum of the `alpha`), the second `mean(z^T H z)` over
//! Rademacher probes projected off `Q` (Hutch++ style; exact once `Q` spans
//! the whole space).

use super::direction::{Basis, Direction};
use super::hvp::Hvp;
use crate::backend::{Backend, Buffer};
use crate::error::{Error, Result};

/// How to compute the spectra.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpectrumConfig {
    /// The largest eigenvalues wanted per member.
    pub top: usize,
    /// Most Lanczos steps (one Hessian-vector product each).
    pub max_iters: usize,
    /// Convergence of a Ritz pair: residual below `tol` times the largest
    /// Ritz value in magnitude.
    pub tol: f64,
    /// Hutchinson probes of the trace (0: no trace).
    pub probes: usize,
    /// Seed of the start vectors and the probes.
    pub seed: u64,
}

impl Default for SpectrumConfig {
    fn default() -> Self {
        SpectrumConfig {
            top: 1,
            max_iters: 100,
            tol: 1e-4,
            probes: 10,
            seed: 0,
        }
    }
}

/// What one member's spectrum came to.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MemberSpectrum {
    /// The largest eigenvalues, largest first.
    pub eigenvalues: Vec<f64>,
    /// The residual `||H y - theta y||` of each (an upper bound on its error).
    pub residuals: Vec<f64>,
    /// Whether every residual met the tolerance.
    pub converged: bool,
    /// The trace estimate (`None` without probes).
    pub trace: Option<f64>,
    /// The standard error of the trace estimate over the probes.
    pub trace_stderr: Option<f64>,
    /// Hessian-vector products spent on this member.
    pub hvps: usize,
}

/// The spectra of every member.
pub struct Spectrum {
    /// Per member.
    pub members: Vec<MemberSpectrum>,
    /// The Ritz vectors of the top eigenvalues, `[E, top, n]` per parameter
    /// tensor (file order), largest first, when asked for.
    pub eigenvectors: Option<Vec<Buffer>>,
    /// The top Ritz vector of every member as a direction (a warm start for
    /// the next call).
    pub leading: Direction,
}

/// Eigen-decomposition of a member's tridiagonal matrix: ascending values
/// and the eigenvectors' components (column-major: `vecs[i][r]` is component
/// `r` of vector `i`).
fn tridiagonal_eigen(alpha: &[f64], beta: &[f64]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let m = alpha.len();
    let t = faer::Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i + 1 == j {
            beta[i]
        } else if j + 1 == i {
            beta[j]
        } else {
            0.0
        }
    });
    let eig = t
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::Numerical(format!("Lanczos tridiagonal eigenproblem: {e:?}")))?;
    let vals: Vec<f64> = (0..m).map(|i| eig.S()[i]).collect();
    let u = eig.U();
    let vecs = (0..m)
        .map(|i| (0..m).map(|r| u[(r, i)]).collect())
        .collect();
    Ok((vals, vecs))
}

/// Per member: its Ritz values (ascending), their eigenvectors and residuals.
struct Ritz {
    vals: Vec<f64>,
    vecs: Vec<Vec<f64>>,
    resid: Vec<f64>,
}

fn ritz(alpha: &[f64], beta: &[f64], next_beta: f64) -> Result<Ritz> {
    let (vals, vecs) = tridiagonal_eigen(alpha, &beta[..alpha.len() - 1])?;
    let last = alpha.len() - 1;
    let resid = vecs.iter().map(|v| (next_beta * v[last]).abs()).collect();
    Ok(Ritz { vals, vecs, resid })
}

impl Ritz {
    /// Indices of the top `k` (largest first).
    fn top(&self, k: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.vals.len()).rev().take(k)
    }

    fn converged(&self, k: usize, tol: f64) -> bool {
        let scale = self
            .vals
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()))
            .max(1e-30);
        self.vals.len() >= k && self.top(k).all(|i| self.resid[i] <= tol * scale)
    }
}

/// Unit vectors: `out_e = a_e / |a_e|`; returns the norms.
fn normalize(
    dev: &dyn Backend,
    a: &Direction,
    out: &mut Direction,
    nrm: &mut Buffer,
) -> Result<Vec<f64>> {
    Direction::dots(dev, a, a, nrm)?;
    let n: Vec<f64> = dev
        .read(nrm)?
        .iter()
        .map(|&v| f64::from(v).max(0.0).sqrt())
        .collect();
    let inv: Vec<f32> = n
        .iter()
        .map(|&v| if v > 0.0 { (1.0 / v) as f32 } else { 0.0 })
        .collect();
    let coef = dev.upload(&inv)?;
    Direction::scale_members(dev, &coef, a, 0.0, out)?;
    Ok(n)
}

/// `w -= Q Q^T w`, twice (classical Gram-Schmidt with reorthogonalization);
/// returns the coefficients of both passes, `[E * k]` each.
fn orthogonalize(
    dev: &dyn Backend,
    basis: &Basis,
    w: &mut Direction,
    c: &mut Buffer,
) -> Result<(Vec<f32>, Vec<f32>)> {
    basis.project(dev, w, c)?;
    basis.combine_into(dev, c, -1.0, w)?;
    let first = dev.read(c)?;
    basis.project(dev, w, c)?;
    basis.combine_into(dev, c, -1.0, w)?;
    Ok((first, dev.read(c)?))
}

/// The top eigenvalues (and trace) of every member's Hessian, with the
/// products of `hvp` at the parameters of its last [`Hvp::prepare`].
/// `start` (a direction per member, e.g. the last call's
/// [`Spectrum::leading`]) warm-starts the Lanczos runs.
pub fn spectrum(
    hvp: &mut Hvp<'_, '_>,
    cfg: &SpectrumConfig,
    start: Option<&Direction>,
    want_vectors: bool,
) -> Result<Spectrum> {
    if cfg.top == 0 || cfg.max_iters == 0 {
        return Err(Error::invalid(
            "--top and the Lanczos steps must be at least 1",
        ));
    }
    if !(cfg.tol.is_finite() && cfg.tol > 0.0) {
        return Err(Error::invalid("the Lanczos tolerance must be positive"));
    }
    let ens = hvp.ensemble();
    let dev = ens.device();
    let e = ens.spec.ensemble;
    let random = Direction::random(ens, cfg.seed)?;
    let p = random.len_per_member();
    let kmax = cfg.max_iters.min(p);
    let mut q = Direction::zeros(ens)?;
    let mut w = Direction::zeros(ens)?;
    let mut nrm = dev.zeros(e)?;
    let mut c = dev.zeros(e * kmax)?;
    match start {
        None => {
            normalize(dev, &random, &mut q, &mut nrm)?;
        }
        Some(s) => {
            // The warm start, with a tenth of a random unit vector so that it
            // is never an exact eigenvector (which would end the run at once).
            normalize(dev, &random, &mut w, &mut nrm)?;
            let mut mixed = Direction::zeros(ens)?;
            normalize(dev, s, &mut mixed, &mut nrm)?;
            let tenth = dev.upload(&vec![0.1f32; e])?;
            Direction::scale_members(dev, &tenth, &w, 1.0, &mut mixed)?;
            normalize(dev, &mixed, &mut q, &mut nrm)?;
        }
    }
    let mut basis = Basis::zeros(dev, &q, kmax)?;
    let one_hot = |j: usize| -> Result<Buffer> {
        let mut u = vec![0.0f32; e * kmax];
        (0..e).for_each(|m| u[m * kmax + j] = 1.0);
        dev.upload(&u)
    };
    basis.add_outer(dev, &one_hot(0)?, &q)?;
    let mut alpha: Vec<Vec<f64>> = vec![Vec::new(); e];
    let mut beta: Vec<Vec<f64>> = vec![Vec::new(); e];
    let mut rz: Vec<Option<Ritz>> = (0..e).map(|_| None).collect();
    let mut steps = 0;
    for j in 0..kmax {
        hvp.apply(&q, &mut w)?;
        steps += 1;
        let (c1, c2) = orthogonalize(dev, &basis, &mut w, &mut c)?;
        let norms = {
            Direction::dots(dev, &w, &w, &mut nrm)?;
            dev.read(&nrm)?
        };
        let mut broke = vec![false; e];
        let mut all = true;
        for m in 0..e {
            let a = f64::from(c1[m * kmax + j]) + f64::from(c2[m * kmax + j]);
            alpha[m].push(a);
            let b = f64::from(norms[m]).max(0.0).sqrt();
            let scale = alpha[m].iter().fold(b, |s, v| s.max(v.abs())).max(1e-30);
            // A vanishing residual: the Krylov space is invariant (f32 noise).
            broke[m] = b <= 1e-5 * scale;
            beta[m].push(if broke[m] { 0.0 } else { b });
            let r = ritz(&alpha[m], &beta[m], beta[m][j])?;
            let done = j + 1 == p || (!broke[m] && r.converged(cfg.top, cfg.tol));
            all &= done;
            rz[m] = Some(r);
        }
        if all || j + 1 == kmax {
            break;
        }
        // The next Lanczos vector: w / beta, or a fresh random vector
        // orthogonal to the basis where the run broke down.
        let inv: Vec<f32> = (0..e)
            .map(|m| {
                if broke[m] {
                    0.0
                } else {
                    (1.0 / beta[m][j]) as f32
                }
            })
            .collect();
        Direction::scale_members(dev, &dev.upload(&inv)?, &w, 0.0, &mut q)?;
        if broke.iter().any(|&b| b) {
            let mut r = Direction::random(ens, cfg.seed.wrapping_add(1 + j as u64))?;
            orthogonalize(dev, &basis, &mut r, &mut c)?;
            let mut unit = Direction::zeros(ens)?;
            normalize(dev, &r, &mut unit, &mut nrm)?;
            let pick: Vec<f32> = broke.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
            Direction::scale_members(dev, &dev.upload(&pick)?, &unit, 1.0, &mut q)?;
        }
        basis.add_outer(dev, &one_hot(j + 1)?, &q)?;
    }
    // The top Ritz vectors: Y = S Q per member.
    let rows = cfg.top.min(steps);
    let mut s = vec![0.0f32; e * rows.max(1) * kmax];
    let mut members = Vec::with_capacity(e);
    for (m, r) in rz.iter().enumerate() {
        let r = r
            .as_ref()
            .ok_or_else(|| Error::invalid("internal: no Lanczos step"))?;
        let scale = r.vals.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-30);
        for (row, i) in r.top(rows).enumerate() {
            for (k, &v) in r.vecs[i].iter().enumerate() {
                s[(m * rows.max(1) + row) * kmax + k] = v as f32;
            }
        }
        members.push(MemberSpectrum {
            eigenvalues: r.top(rows).map(|i| r.vals[i]).collect(),
            residuals: r.top(rows).map(|i| r.resid[i]).collect(),
            converged: r.top(rows).all(|i| r.resid[i] <= cfg.tol * scale) && rows == cfg.top,
            trace: None,
            trace_stderr: None,
            hvps: steps,
        });
    }
    let s_buf = dev.upload(&s)?;
    let vectors = basis.rows_times(dev, &s_buf, rows.max(1))?;
    let leading = {
        let lead: Vec<f32> = (0..e)
            .flat_map(|m| s[m * rows.max(1) * kmax..(m * rows.max(1) + 1) * kmax].to_vec())
            .collect();
        let mut d = Direction::zeros(ens)?;
        basis.combine_into(dev, &dev.upload(&lead)?, 1.0, &mut d)?;
        d
    };
    if cfg.probes > 0 {
        hutchinson(hvp, cfg, &basis, &alpha, &mut members)?;
    }
    Ok(Spectrum {
        members,
        eigenvectors: want_vectors.then_some(vectors),
        leading,
    })
}

/// The deflated Hutchinson estimate of every member's trace.
fn hutchinson(
    hvp: &mut Hvp<'_, '_>,
    cfg: &SpectrumConfig,
    basis: &Basis,
    alpha: &[Vec<f64>],
    members: &mut [MemberSpectrum],
) -> Result<()> {
    let ens = hvp.ensemble();
    let dev = ens.device();
    let e = ens.spec.ensemble;
    let mut c = dev.zeros(e * basis.k)?;
    let mut hz = Direction::zeros(ens)?;
    let mut d = dev.zeros(e)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); e];
    for probe in 0..cfg.probes {
        let seed = cfg.seed ^ (0x4875_7463_6869_6e73 ^ probe as u64);
        let mut z = Direction::rademacher(ens, seed)?;
        orthogonalize(dev, basis, &mut z, &mut c)?;
        hvp.apply(&z, &mut hz)?;
        Direction::dots(dev, &z, &hz, &mut d)?;
        for (m, v) in dev.read(&d)?.into_iter().enumerate() {
            samples[m].push(f64::from(v));
        }
    }
    for (m, ms) in members.iter_mut().enumerate() {
        let n = samples[m].len() as f64;
        let mean = samples[m].iter().sum::<f64>() / n;
        let var = if n > 1.0 {
            samples[m].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        ms.trace = Some(alpha[m].iter().sum::<f64>() + mean);
        ms.trace_stderr = Some((var / n).sqrt());
        ms.hvps += cfg.probes;
    }
    Ok(())
}
