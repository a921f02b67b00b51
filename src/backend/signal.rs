//! What [`Backend::signal_propagation`](super::Backend::signal_propagation)
//! computes: the infinite-width signal-propagation theory of one activation
//! (Schoenholz et al. 2017) at many points at once.

use crate::activation::Activation;
use crate::error::{Error, Result};

/// Values per point of [`SignalTask::FixedPoints`]: `q*`, `c*`, `chi_1`,
/// `xi_q`, `xi_c`.
pub const SIGNAL_OUTPUTS: usize = 5;

/// The value a backend writes where a quantity does not exist or is
/// infinite (every quantity it writes is otherwise non-negative).
pub const SIGNAL_NONE: f32 = -1.0;

/// What to compute for each item of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalTask {
    /// Input `[sw2, sb2]` per point; output `[q*, c*, chi_1, xi_q, xi_c]`.
    FixedPoints,
    /// Input `[sb2, lo, hi]` per item; output the `sw2` in `[lo, hi]` where
    /// `chi_1 = 1`.
    Critical,
}

impl SignalTask {
    /// Input values per item.
    pub fn inputs(&self) -> usize {
        match self {
            SignalTask::FixedPoints => 2,
            SignalTask::Critical => 3,
        }
    }

    /// Output values per item.
    pub fn outputs(&self) -> usize {
        match self {
            SignalTask::FixedPoints => SIGNAL_OUTPUTS,
            SignalTask::Critical => 1,
        }
    }
}

/// The activation, how its expectations are computed and the task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalSpec {
    /// The nonlinearity.
    pub act: Activation,
    /// Gauss-Hermite quadrature even where a closed form exists.
    pub quadrature: bool,
    /// Nodes of the Gauss-Hermite rule (1 to 400).
    pub degree: usize,
    /// What to compute.
    pub task: SignalTask,
}

impl SignalSpec {
    /// Checks the numbers and the buffers' lengths; returns the items.
    pub fn check(&self, input: usize, output: usize) -> Result<usize> {
        if !(1..=400).contains(&self.degree) {
            return Err(Error::invalid(format!(
                "signal propagation: the quadrature degree must be 1 to 400, got {}",
                self.degree
            )));
        }
        let (i, o) = (self.task.inputs(), self.task.outputs());
        if !input.is_multiple_of(i) || output != input / i * o {
            return Err(Error::shape(
                "signal_propagation",
                format!("{input} inputs and {output} outputs for items of {i} -> {o} values"),
            ));
        }
        Ok(input / i)
    }
}
