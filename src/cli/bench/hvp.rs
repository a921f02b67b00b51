//! `widenet bench hvp`: a Hessian-vector product of an ensemble's loss
//! against a training step of the same ensemble, timed in the same run.

use super::measure::{net_setup, time_median};
use serde::Serialize;
use widenet::backend::{Backend, Loss, Timing};
use widenet::error::Result;
use widenet::net::direction::Direction;
use widenet::net::hvp::Hvp;
use widenet::net::spectrum::{SpectrumConfig, spectrum};
use widenet::net::{ensemble::Ensemble, params::Params, train::Trainer};

/// One measurement of `bench hvp`.
#[derive(Clone, Debug, Serialize)]
pub struct HvpRecord {
    pub op: &'static str,
    pub ensemble: usize,
    /// The architecture, in the short form.
    pub arch: String,
    pub n: usize,
    pub d: usize,
    /// Median seconds of one full-batch training step (forward, loss, backward, update).
    pub step_seconds: f64,
    /// Median seconds of one product at prepared parameters (the R-passes: what
    /// each Lanczos step pays).
    pub hvp_seconds: f64,
    /// Median seconds of one product from scratch (the forward and backward
    /// passes at the parameters, then the R-passes).
    pub hvp_from_scratch_seconds: f64,
    /// Seconds per Lanczos step (product, reorthogonalization against 20
    /// vectors, the per-member scalars read back), from a 20-step run.
    pub lanczos_step_seconds: f64,
    /// `hvp_seconds / step_seconds`.
    pub hvp_over_step: f64,
    /// `hvp_from_scratch_seconds / step_seconds`.
    pub hvp_from_scratch_over_step: f64,
    /// `lanczos_step_seconds / step_seconds`.
    pub lanczos_step_over_step: f64,
    pub timing: Timing,
    pub runs: usize,
}

/// Times a training step, a product and a Lanczos step of the same ensemble.
pub fn hvp(
    b: &dyn Backend,
    arch: &widenet::arch::Arch,
    e: usize,
    n: usize,
    d: usize,
    runs: usize,
) -> Result<HvpRecord> {
    let (spec, x, y) = net_setup(arch, e, n, d)?;
    let params = Params::init(&spec, 1)?;
    let (step, timing) = {
        let mut ens = Ensemble::new(b, &params)?;
        let cfg = widenet::net::train::TrainConfig {
            log_every: usize::MAX / 2,
            ..widenet::net::train::TrainConfig::gd(1e-3, usize::MAX / 2)
        };
        let mut t = Trainer::new(&mut ens, &x, &y, &cfg)?;
        time_median(b, runs, &mut || t.step())?
    };
    let ens = Ensemble::new(b, &params)?;
    let mut h = Hvp::new(&ens, &x, &y, Loss::Mse)?;
    h.prepare()?;
    let v = Direction::random(&ens, 2)?;
    let mut out = Direction::zeros(&ens)?;
    let (prod, _) = time_median(b, runs, &mut || h.apply(&v, &mut out))?;
    let (scratch, _) = time_median(b, runs, &mut || {
        h.prepare()?;
        h.apply(&v, &mut out)
    })?;
    let iters = 20;
    let cfg = SpectrumConfig {
        top: 1,
        max_iters: iters,
        tol: 1e-300,
        probes: 0,
        seed: 3,
    };
    let (lanczos, _) = time_median(b, runs, &mut || {
        spectrum(&mut h, &cfg, None, false).map(|_| ())
    })?;
    let lanczos = lanczos / iters as f64;
    Ok(HvpRecord {
        op: "hvp",
        ensemble: e,
        arch: arch.to_string(),
        n,
        d,
        step_seconds: step,
        hvp_seconds: prod,
        hvp_from_scratch_seconds: scratch,
        lanczos_step_seconds: lanczos,
        hvp_over_step: prod / step,
        hvp_from_scratch_over_step: scratch / step,
        lanczos_step_over_step: lanczos / step,
        timing,
        runs,
    })
}
