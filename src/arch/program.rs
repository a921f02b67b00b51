//! The infinite-width recursion of an architecture, compiled into a flat list
//! of operations on one pair of inputs: what the CPU evaluates in f64 and what
//! the GPU backend turns into a kernel. Each operation is one layer's kernel
//! update (neural-tangents' `kernel_fn`); residual blocks push the state and
//! add it back (`FanOut`, `parallel(Identity, block)`, `FanInSum`: the two
//! branches are independent, so their kernels add).
//!
//! Nonlinearities and LayerNorm need each input's own variance as well as
//! the pair's covariance. Those variances depend on one point only, so they
//! are computed once per point ([`KernelProgram::variances`]) into "slots",
//! one per such layer, and handed to the pair recursion ([`KernelProgram::entry`]).

use super::{Arch, Dense, Layer, parse::layer_name, position};
use crate::activation::{Activation, kernel as act_kernel};
use crate::error::{Error, Result};

/// One step of the pair recursion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KernelOp {
    /// A Dense layer reading `fan_in` features.
    Dense {
        /// The layer.
        dense: Dense,
        /// Its input width (the `standard` NTK depends on it).
        fan_in: usize,
    },
    /// A nonlinearity; its inputs' variances are in slot `slot`.
    Activation {
        /// The nonlinearity.
        act: Activation,
        /// The variance slot.
        slot: usize,
    },
    /// LayerNorm; its inputs' variances are in slot `slot`.
    LayerNorm {
        /// Added to the variances.
        eps: f64,
        /// The variance slot.
        slot: usize,
    },
    /// The start of a residual block: remember `(q, Theta)`.
    Push,
    /// The end of a residual block: add the remembered `(q, Theta)`.
    PopAdd,
}

/// An architecture's kernel recursion for inputs of `d_in` features.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelProgram {
    /// The operations, in order.
    pub ops: Vec<KernelOp>,
    /// Variance slots per point.
    pub slots: usize,
    /// Input features (the input covariance is `x . x' / d_in`).
    pub d_in: usize,
    /// Deepest nesting of residual blocks.
    pub max_stack: usize,
}

impl KernelProgram {
    /// Compiles `arch` (already checked by [`Arch::output_width`]). Like
    /// neural-tangents, a nonlinearity or LayerNorm needs a Gaussian input
    /// (the output of a Dense layer, possibly through residual sums and
    /// LayerNorm), and the inputs themselves are not Gaussian.
    pub fn compile(arch: &Arch, d_in: usize) -> Result<KernelProgram> {
        let mut p = KernelProgram {
            ops: Vec::new(),
            slots: 0,
            d_in,
            max_stack: 0,
        };
        p.block(&arch.layers, d_in, false, "", 0)?;
        Ok(p)
    }

    fn block(
        &mut self,
        layers: &[Layer],
        mut width: usize,
        mut gaussian: bool,
        prefix: &str,
        depth: usize,
    ) -> Result<bool> {
        self.max_stack = self.max_stack.max(depth);
        for (i, layer) in layers.iter().enumerate() {
            let needs_gaussian = |g: bool| -> Result<()> {
                if g {
                    Ok(())
                } else {
                    Err(Error::invalid(format!(
                        "{} ({}): its infinite-width kernel needs a Gaussian input, as in neural-tangents: put a Dense layer before it",
                        position(prefix, i),
                        layer_name(layer)
                    )))
                }
            };
            match layer {
                Layer::Dense(d) => {
                    self.ops.push(KernelOp::Dense {
                        dense: *d,
                        fan_in: width,
                    });
                    width = d.out;
                    gaussian = true;
                }
                Layer::Activation(Activation::Identity) => {}
                Layer::Activation(act) => {
                    needs_gaussian(gaussian)?;
                    self.ops.push(KernelOp::Activation {
                        act: *act,
                        slot: self.slots,
                    });
                    self.slots += 1;
                    gaussian = false;
                }
                Layer::LayerNorm { eps } => {
                    needs_gaussian(gaussian)?;
                    self.ops.push(KernelOp::LayerNorm {
                        eps: *eps,
                        slot: self.slots,
                    });
                    self.slots += 1;
                }
                Layer::Residual(block) => {
                    self.ops.push(KernelOp::Push);
                    let g = self.block(block, width, gaussian, &position(prefix, i), depth + 1)?;
                    self.ops.push(KernelOp::PopAdd);
                    gaussian = gaussian && g;
                }
            }
        }
        Ok(gaussian)
    }

    /// The variances of one point entering each slot, from `c0 = |x|^2 / d_in`.
    pub fn variances(&self, c0: f64) -> Vec<f64> {
        let mut out = vec![0.0; self.slots];
        let mut c = c0;
        let mut stack = Vec::with_capacity(self.max_stack);
        for op in &self.ops {
            match *op {
                KernelOp::Dense { dense, .. } => c = dense.variance(c),
                KernelOp::Activation { act, slot } => {
                    out[slot] = c;
                    c = act_kernel::diag(act, c);
                }
                KernelOp::LayerNorm { eps, slot } => {
                    out[slot] = c;
                    c /= eps + c;
                }
                KernelOp::Push => stack.push(c),
                KernelOp::PopAdd => c += stack.pop().unwrap_or(0.0),
            }
        }
        out
    }

    /// `(nngp, ntk)` of the output for one pair of inputs, from their input
    /// covariance `q0 = x1 . x2 / d_in` and their variance slots. `same`
    /// marks a point paired with itself (its variances are used exactly).
    pub fn entry(&self, q0: f64, t1: &[f64], t2: &[f64], same: bool) -> (f64, f64) {
        let mut q = q0;
        let mut theta = 0.0;
        let mut stack: Vec<(f64, f64)> = Vec::with_capacity(self.max_stack);
        for op in &self.ops {
            match *op {
                KernelOp::Dense { dense, fan_in } => {
                    (q, theta) = dense.kernel(fan_in as f64, q, theta)
                }
                KernelOp::Activation { act, slot } => {
                    let (c1, c2) = (t1[slot], t2[slot]);
                    let qin = if same { c1 } else { q };
                    let (qn, dot) = act_kernel::pair(act, qin, c1, c2, same);
                    q = qn;
                    theta *= dot;
                }
                KernelOp::LayerNorm { eps, slot } => {
                    let (c1, c2) = (t1[slot], t2[slot]);
                    let s = 1.0 / ((eps + c1) * (eps + c2)).sqrt();
                    q = if same { c1 / (eps + c1) } else { q * s };
                    theta *= s;
                }
                KernelOp::Push => stack.push((q, theta)),
                KernelOp::PopAdd => {
                    let (q0, t0) = stack.pop().unwrap_or((0.0, 0.0));
                    q += q0;
                    theta += t0;
                }
            }
        }
        (q, theta)
    }
}
