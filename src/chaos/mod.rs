//! The edge of chaos: how a signal and the correlation of two signals
//! propagate through a deep network at initialization, at infinite width
//! (Poole et al. 2016, "Exponential expressivity in deep neural networks
//! through transient chaos"; Schoenholz et al. 2017, "Deep Information
//! Propagation"). [`gauss`] holds the Gaussian expectations of an
//! activation, [`fixed`] the fixed points, `chi_1` and the depth scales in
//! f64, and [`grid`] computes them over a grid of `(sigma_w^2, sigma_b^2)`
//! on any [`Backend`](crate::Backend) (the device kernel is
//! `shaders/chaos.wgsl`), with the critical line `chi_1 = 1`.

pub mod fixed;
pub mod gauss;
pub mod grid;

pub use fixed::{Point, chi1, critical_sw2, point, q_star};
pub use gauss::Expectations;
pub use grid::{Axis, Grid, critical_line, theory_grid};

use crate::backend::{SIGNAL_NONE, SignalSpec, SignalTask};

fn put(v: Option<f64>) -> f32 {
    v.map_or(SIGNAL_NONE, |x| x as f32)
}

/// The CPU twin of the device kernel: [`crate::Backend::signal_propagation`]
/// (crate::Backend::signal_propagation) in f64 over the items of `input`
/// (checked by the caller).
pub fn signal_f64(spec: &SignalSpec, input: &[f32]) -> Vec<f32> {
    let e = Expectations::new(spec.act, spec.degree, spec.quadrature);
    match spec.task {
        SignalTask::FixedPoints => input
            .chunks_exact(2)
            .flat_map(|p| {
                let r = point(&e, p[0] as f64, p[1] as f64);
                [r.q_star, r.c_star, r.chi1, r.xi_q, r.xi_c].map(put)
            })
            .collect(),
        SignalTask::Critical => input
            .chunks_exact(3)
            .map(|p| put(critical_sw2(&e, p[0] as f64, p[1] as f64, p[2] as f64)))
            .collect(),
    }
}
