//! The top of the Hessian's spectrum and its trace, for every member at
//! once, on the device.
//!
//! **Eigenvalues**: Lanczos with full reorthogonalization (classical
//! Gram-Schmidt, twice, against every earlier Lanczos vector). The vectors,
//! the Hessian-vector products, the per-member dot products and the
//! per-member combinations stay on the device, batched over the members;
//! only each member's tridiagonal matrix (its `alpha` and `beta`) comes to
//! the host, where its small eigenproblem gives the Ritz values. A member has converged when the
//! residual `beta_j |s_j|` of each of its top-k Ritz pairs is below
//! `tol` times its largest Ritz value in magnitude; all members step
//! together until all have, or until `max_iters`.
//!
//! **Trace**: Hutchinson's estimator on what the Krylov basis `Q` leaves
//! out: `tr(H) = tr(Q^T H Q) + tr((I - QQ^T) H (I - QQ^T))`, the first term
//! exact (the sum of the `alpha`), the second `mean(z^T H z)` over
//! Rademacher probes projected off `Q` (Hutch++ style; exact once `Q` spans
//! the whole space).

use super::direction::Direction;
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
    /// The Ritz vectors of the top eigenvalues (unit norm), largest first,
    /// when asked for.
    pub eigenvectors: Option<Vec<Direction>>,
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
    Direction::scale_members(dev, 1.0, &coef, a, 0.0, out)?;
    Ok(n)
}

/// The Lanczos vectors of every member so far, and a coefficient buffer
/// (`E` values) per vector.
struct Krylov {
    q: Vec<Direction>,
    c: Vec<Buffer>,
}

impl Krylov {
    /// `w -= Q Q^T w`, twice (classical Gram-Schmidt with
    /// reorthogonalization); the coefficients of both passes stay in `c`
    /// and `c2` (`c[i]` of vector `i`).
    fn orthogonalize(
        &mut self,
        dev: &dyn Backend,
        w: &mut Direction,
        c2: &mut [Buffer],
    ) -> Result<()> {
        for pass in 0..2 {
            let c = if pass == 0 {
                &mut self.c[..]
            } else {
                &mut c2[..]
            };
            for (q, ci) in self.q.iter().zip(c.iter_mut()) {
                Direction::dots(dev, q, w, ci)?;
            }
            for (q, ci) in self.q.iter().zip(c.iter()) {
                Direction::scale_members(dev, -1.0, ci, q, 1.0, w)?;
            }
        }
        Ok(())
    }

    /// `out = sum_i coef[e][i] q_i(e)` per member.
    fn combine(&self, dev: &dyn Backend, coef: &[Vec<f32>], out: &mut Direction) -> Result<()> {
        for (i, q) in self.q.iter().enumerate() {
            let ci: Vec<f32> = coef
                .iter()
                .map(|c| c.get(i).copied().unwrap_or(0.0))
                .collect();
            let beta = if i == 0 { 0.0 } else { 1.0 };
            Direction::scale_members(dev, 1.0, &dev.upload(&ci)?, q, beta, out)?;
        }
        Ok(())
    }
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
            Direction::scale_members(dev, 1.0, &tenth, &w, 1.0, &mut mixed)?;
            normalize(dev, &mixed, &mut q, &mut nrm)?;
        }
    }
    let mut kry = Krylov {
        q: Vec::with_capacity(kmax),
        c: (0..kmax).map(|_| dev.zeros(e)).collect::<Result<_>>()?,
    };
    let mut c2: Vec<Buffer> = (0..kmax).map(|_| dev.zeros(e)).collect::<Result<_>>()?;
    let mut alpha: Vec<Vec<f64>> = vec![Vec::new(); e];
    let mut beta: Vec<Vec<f64>> = vec![Vec::new(); e];
    let mut rz: Vec<Option<Ritz>> = (0..e).map(|_| None).collect();
    for j in 0..kmax {
        hvp.apply(&q, &mut w)?;
        kry.q.push(q);
        kry.orthogonalize(dev, &mut w, &mut c2)?;
        Direction::dots(dev, &w, &w, &mut nrm)?;
        let (a1, a2, norms) = (dev.read(&kry.c[j])?, dev.read(&c2[j])?, dev.read(&nrm)?);
        let mut broke = vec![false; e];
        let mut all = true;
        for m in 0..e {
            let a = f64::from(a1[m]) + f64::from(a2[m]);
            let b = f64::from(norms[m]).max(0.0).sqrt();
            alpha[m].push(a);
            if !(a.is_finite() && b.is_finite()) {
                // A diverged member: nothing to find.
                beta[m].push(0.0);
                rz[m] = None;
                continue;
            }
            let scale = alpha[m].iter().fold(b, |s, v| s.max(v.abs())).max(1e-30);
            // A vanishing residual: the Krylov space is invariant (f32 noise).
            broke[m] = b <= 1e-5 * scale;
            beta[m].push(if broke[m] { 0.0 } else { b });
            let r = ritz(&alpha[m], &beta[m], beta[m][j])?;
            all &= j + 1 == p || (!broke[m] && r.converged(cfg.top, cfg.tol));
            rz[m] = Some(r);
        }
        if all || j + 1 == kmax {
            break;
        }
        // The next Lanczos vector: w / beta, or a fresh random vector
        // orthogonal to the basis where the run broke down.
        let inv: Vec<f32> = (0..e)
            .map(|m| match beta[m][j] {
                b if b > 0.0 => (1.0 / b) as f32,
                _ => 0.0,
            })
            .collect();
        let mut next = Direction::zeros(ens)?;
        Direction::scale_members(dev, 1.0, &dev.upload(&inv)?, &w, 0.0, &mut next)?;
        if broke.iter().any(|&b| b) {
            let mut r = Direction::random(ens, cfg.seed.wrapping_add(1 + j as u64))?;
            kry.orthogonalize(dev, &mut r, &mut c2)?;
            let mut unit = Direction::zeros(ens)?;
            normalize(dev, &r, &mut unit, &mut nrm)?;
            let pick: Vec<f32> = broke.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
            Direction::scale_members(dev, 1.0, &dev.upload(&pick)?, &unit, 1.0, &mut next)?;
        }
        q = next;
    }
    let steps = kry.q.len();
    let rows = cfg.top.min(steps);
    // Each member's coefficients of its top Ritz vectors in the Lanczos basis.
    let mut coef: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); e]; rows];
    let mut members = Vec::with_capacity(e);
    for (m, r) in rz.iter().enumerate() {
        let Some(r) = r else {
            members.push(MemberSpectrum {
                eigenvalues: vec![f64::NAN; rows],
                residuals: vec![f64::NAN; rows],
                converged: false,
                trace: None,
                trace_stderr: None,
                hvps: steps,
            });
            continue;
        };
        let scale = r.vals.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-30);
        for (row, i) in r.top(rows).enumerate() {
            coef[row][m] = r.vecs[i].iter().map(|&v| v as f32).collect();
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
    let mut vectors = Vec::new();
    for c in coef.iter().take(if want_vectors { rows } else { 1 }) {
        let mut y = Direction::zeros(ens)?;
        kry.combine(dev, c, &mut y)?;
        vectors.push(y);
    }
    let leading = vectors.first().map(|v| v.clone_on(dev)).transpose()?;
    let leading = match leading {
        Some(l) => l,
        None => Direction::zeros(ens)?,
    };
    if cfg.probes > 0 {
        hutchinson(hvp, cfg, &mut kry, &mut c2, &alpha, &mut members)?;
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
    kry: &mut Krylov,
    c2: &mut [Buffer],
    alpha: &[Vec<f64>],
    members: &mut [MemberSpectrum],
) -> Result<()> {
    let ens = hvp.ensemble();
    let dev = ens.device();
    let e = ens.spec.ensemble;
    let mut hz = Direction::zeros(ens)?;
    let mut d = dev.zeros(e)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); e];
    for probe in 0..cfg.probes {
        let seed = cfg.seed ^ (0x4875_7463_6869_6e73 ^ probe as u64);
        let mut z = Direction::rademacher(ens, seed)?;
        kry.orthogonalize(dev, &mut z, c2)?;
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
