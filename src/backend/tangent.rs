//! The kernels of the Hessian-vector product that are neither products nor
//! sums: the tangents (directional derivatives) of backward steps along a
//! direction, for forward-over-reverse differentiation (Pearlmutter's
//! R-operator, see `crate::net::hvp`).

use super::{Batched, Buffer, check_len};
use crate::activation::Activation;
use crate::error::Result;

/// One tangent kernel and its inputs, see [`Backend::tangent`](super::Backend::tangent).
/// `R` marks a tangent: `rx` is the derivative of `x` along the direction.
#[derive(Clone, Copy, Debug)]
pub enum Tangent<'a> {
    /// The tangent of an activation's backward pass `dx = dy * act'(x)`:
    /// `out = rdy * act'(x) + dy * act''(x) * rx`, elementwise.
    Activation {
        /// The nonlinearity.
        act: Activation,
        /// Its input (the pre-activation).
        x: &'a Buffer,
        /// The gradient of its output.
        dy: &'a Buffer,
        /// The tangent of its input.
        rx: &'a Buffer,
        /// The tangent of the gradient of its output.
        rdy: &'a Buffer,
    },
    /// The tangent of [`Backend::layer_norm_grad`](super::Backend::layer_norm_grad)
    /// `dx = s (dy - mean(dy) - y mean(dy y))` per row of `shape.cols`
    /// values, where the scale moves too: `Rs = -s^2 mean(y rx)`, and
    /// `ry = s (rx - mean(rx) - y mean(y rx))`.
    LayerNorm {
        /// batch x rows x cols.
        shape: Batched,
        /// The forward pass's output.
        y: &'a Buffer,
        /// Each row's `1 / sqrt(eps + var)` (`batch * rows` values).
        inv_std: &'a Buffer,
        /// The gradient of the output.
        dy: &'a Buffer,
        /// The tangent of the input.
        rx: &'a Buffer,
        /// The tangent of the gradient of the output.
        rdy: &'a Buffer,
    },
    /// The tangent of the softmax cross-entropy gradient `df = (softmax(f) -
    /// y) / rows` of [`Backend::loss_grad`](super::Backend::loss_grad):
    /// `out = (p * rf - p (p . rf)) / rows` per row, `p = softmax(f)`.
    Softmax {
        /// members x rows x classes.
        shape: Batched,
        /// The outputs.
        f: &'a Buffer,
        /// Their tangent.
        rf: &'a Buffer,
    },
}

impl Tangent<'_> {
    /// The kernel's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Tangent::Activation { .. } => "activation_tangent",
            Tangent::LayerNorm { .. } => "layer_norm_tangent",
            Tangent::Softmax { .. } => "softmax_tangent",
        }
    }

    /// Checks that the buffers have the lengths the kernel needs, `out` included.
    pub(crate) fn check(&self, out: usize) -> Result<()> {
        let op = self.name();
        match *self {
            Tangent::Activation { x, dy, rx, rdy, .. } => check_len(
                op,
                &[
                    ("dy", dy.len(), x.len()),
                    ("rx", rx.len(), x.len()),
                    ("rdy", rdy.len(), x.len()),
                    ("out", out, x.len()),
                ],
            ),
            Tangent::LayerNorm {
                shape,
                y,
                inv_std,
                dy,
                rx,
                rdy,
            } => check_len(
                op,
                &[
                    ("y", y.len(), shape.len()),
                    ("inv_std", inv_std.len(), shape.batch * shape.rows),
                    ("dy", dy.len(), shape.len()),
                    ("rx", rx.len(), shape.len()),
                    ("rdy", rdy.len(), shape.len()),
                    ("out", out, shape.len()),
                ],
            ),
            Tangent::Softmax { shape, f, rf } => check_len(
                op,
                &[
                    ("f", f.len(), shape.len()),
                    ("rf", rf.len(), shape.len()),
                    ("out", out, shape.len()),
                ],
            ),
        }
    }
}
