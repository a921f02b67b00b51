//! The one interface the engine computes through. The CPU backend and the
//! wgpu backend implement it, so a caller never branches on which one runs;
//! tests are written once against it. Everything the interface speaks of
//! (buffers, product descriptions, kernel tiles, device descriptions) is
//! defined here; the backends depend on this module, never the reverse.

mod buffer;
mod info;
mod matmul;
mod signal;
mod tangent;
mod tied;
mod tile;

pub use buffer::{Buffer, ReadHandle};
pub use info::{CoopShape, DeviceChoice, DeviceInfo, vendor_name};
pub use matmul::{Batched, Matmul};
pub use signal::{SIGNAL_NONE, SIGNAL_OUTPUTS, SignalSpec, SignalTask};
pub use tangent::Tangent;
pub use tied::TiedOp;
pub use tile::MAX_SLOTS as MAX_KERNEL_SLOTS;
pub(crate) use tile::check_tile;
pub use tile::{DIAG_CAPACITY, KernelTile, MAX_SLOTS, TILE, Want, tile_side};

use crate::activation::Activation;
use crate::error::{Error, Result};

/// What the engine needs from a device: memory in, memory out, and the kernels
/// of training and of the infinite-width recursion. Operations are queued and
/// may run asynchronously; [`Backend::read`] and [`Backend::sync`] wait.
pub trait Backend: Send + Sync {
    /// One line naming the device.
    fn describe(&self) -> String;
    /// Whether this runs on a wgpu adapter.
    fn is_gpu(&self) -> bool;
    /// A zero-filled buffer of `len` elements.
    fn zeros(&self, len: usize) -> Result<Buffer>;
    /// A buffer holding `data`.
    fn upload(&self, data: &[f32]) -> Result<Buffer>;
    /// Overwrites `buf` with `data` (same length), after all queued work.
    fn write(&self, buf: &mut Buffer, data: &[f32]) -> Result<()>;
    /// Waits for queued work and returns the buffer's contents.
    fn read(&self, buf: &Buffer) -> Result<Vec<f32>>;
    /// Starts reading a buffer back: queued work is submitted, and the values
    /// can be collected with [`Backend::read_end`] while later work runs.
    fn read_begin(&self, buf: &Buffer) -> Result<ReadHandle> {
        Ok(ReadHandle::ready(self.read(buf)?))
    }
    /// Finishes a read started by [`Backend::read_begin`].
    fn read_end(&self, h: ReadHandle) -> Result<Vec<f32>> {
        h.into_parts()
            .map_err(|_| Error::invalid("a read begun on another backend was passed to this one"))
    }
    /// Finishes a read like [`Backend::read_end`], handing the values to `f`
    /// where they lie (a GPU backend's mapped staging memory) instead of
    /// copying them into a new vector.
    fn read_end_with(&self, h: ReadHandle, f: &mut dyn FnMut(&[f32])) -> Result<()> {
        f(&self.read_end(h)?);
        Ok(())
    }
    /// Waits for all queued work; reports any device error raised meanwhile.
    fn sync(&self) -> Result<()>;
    /// This backend as [`Any`](std::any::Any), so that a caller can reach
    /// what only one backend offers (the GPU backend's f16 products) by
    /// downcasting.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Batched matrix product, see [`Matmul`].
    fn matmul(&self, spec: &Matmul, a: &Buffer, b: &Buffer, c: &mut Buffer) -> Result<()>;
    /// A dense layer's forward pass: `z = spec(x, w)`, `z += mult_b * bias`
    /// (`bias` is `[batch, n]`, broadcast over rows), `h = act(z)`. Backends
    /// may fuse the three; the default runs them one after another.
    #[allow(clippy::too_many_arguments)]
    fn dense_forward(
        &self,
        spec: &Matmul,
        x: &Buffer,
        w: &Buffer,
        bias: &Buffer,
        mult_b: f32,
        act: Activation,
        z: &mut Buffer,
        h: &mut Buffer,
    ) -> Result<()> {
        self.matmul(spec, x, w, z)?;
        self.bias_add(Batched::new(spec.batch, spec.m, spec.n), z, bias, mult_b)?;
        self.activation(act, z, h)
    }

    /// `y = act(x)`, elementwise.
    fn activation(&self, act: Activation, x: &Buffer, y: &mut Buffer) -> Result<()>;
    /// `dx = dy * act'(x)`, elementwise.
    fn activation_grad(
        &self,
        act: Activation,
        x: &Buffer,
        dy: &Buffer,
        dx: &mut Buffer,
    ) -> Result<()>;
    /// `y[e, r, c] += alpha * bias[e, c]`; `bias` holds `[batch, cols]`.
    fn bias_add(&self, shape: Batched, y: &mut Buffer, bias: &Buffer, alpha: f32) -> Result<()>;
    /// `out[e, r] = sum_c x[e, r, c]`.
    fn sum_rows(&self, shape: Batched, x: &Buffer, out: &mut Buffer) -> Result<()>;
    /// `out[e, c] = sum_r x[e, r, c]`.
    fn sum_cols(&self, shape: Batched, x: &Buffer, out: &mut Buffer) -> Result<()>;
    /// `dst = src` (same length).
    fn copy(&self, src: &Buffer, dst: &mut Buffer) -> Result<()> {
        check_len("copy", &[("dst", dst.len(), src.len())])?;
        let v = self.read(src)?;
        self.write(dst, &v)
    }
    /// `x *= alpha`.
    fn scale(&self, x: &mut Buffer, alpha: f32) -> Result<()>;
    /// `y += alpha * x`.
    fn axpy(&self, alpha: f32, x: &Buffer, y: &mut Buffer) -> Result<()>;
    /// `z = x * y`, elementwise.
    fn mul(&self, x: &Buffer, y: &Buffer, z: &mut Buffer) -> Result<()>;
    /// LayerNorm of every row of `shape.cols` values (`shape` = batch x rows
    /// x cols): `y = (x - mean) / sqrt(eps + var)` with the biased variance,
    /// and `inv_std[r] = 1 / sqrt(eps + var)` (`batch * rows` values) for
    /// [`Backend::layer_norm_grad`].
    fn layer_norm(
        &self,
        shape: Batched,
        eps: f32,
        x: &Buffer,
        y: &mut Buffer,
        inv_std: &mut Buffer,
    ) -> Result<()>;
    /// The backward pass of [`Backend::layer_norm`] from its output `y`:
    /// `dx = inv_std * (dy - mean(dy) - y * mean(dy * y))` per row.
    fn layer_norm_grad(
        &self,
        shape: Batched,
        y: &Buffer,
        inv_std: &Buffer,
        dy: &Buffer,
        dx: &mut Buffer,
    ) -> Result<()>;

    /// Loss and gradient of outputs `f` (`shape` = members x rows x outputs) against
    /// shared targets `y` (`rows x outputs`): writes `df` and the loss of each row
    /// (`members x rows`; they sum to each member's loss).
    fn loss_grad(
        &self,
        loss: Loss,
        shape: Batched,
        f: &Buffer,
        y: &Buffer,
        df: &mut Buffer,
        rows: &mut Buffer,
    ) -> Result<()>;

    /// The tangent of a backward step along a direction (see [`Tangent`]):
    /// the pieces of a Hessian-vector product that are not products or sums.
    fn tangent(&self, op: &Tangent<'_>, out: &mut Buffer) -> Result<()>;
    /// `out[e, r] = beta * out[e, r] + sum_c a[e, r, c] * x[e, c]` (`shape` =
    /// batch x rows x cols; `x` holds `batch x cols`, `out` `batch x rows`):
    /// dot products of long rows, every member against its own vector, reduced
    /// in parallel along the rows (the per-member dot products of Lanczos
    /// vectors). With `beta == 0` `out` is never read.
    fn row_dots(
        &self,
        shape: Batched,
        a: &Buffer,
        x: &Buffer,
        beta: f32,
        out: &mut Buffer,
    ) -> Result<()>;

    /// Marks members whose `loss` is not finite: `alive[e] = 0`, `diverged_at[e] = step`.
    fn mark_diverged(
        &self,
        step: u32,
        loss: &Buffer,
        alive: &mut Buffer,
        diverged_at: &mut Buffer,
    ) -> Result<()>;

    /// One update of `param` (members of `member_len` values) from `grad`, with
    /// each member's learning rate in `lr` and frozen members (`alive == 0`)
    /// untouched. `m` and `v` hold the rule's state (momentum, Adam moments).
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        up: &Update,
        member_len: usize,
        grad: &Buffer,
        lr: &Buffer,
        alive: &Buffer,
        param: &mut Buffer,
        m: Option<&mut Buffer>,
        v: Option<&mut Buffer>,
    ) -> Result<()>;

    /// Sparse synthetic features, drawn on the device (the data of the toy
    /// models of superposition): `x[e, r, c]` (`shape` = members x rows x
    /// cols) is 0 with probability `sparsity[e]`, else uniform on [0, 1).
    /// The values come from a counter-based hash of (`draw.seed`, `member[e]`,
    /// `draw.step`, `r * cols + c`) in u32 arithmetic
    /// ([`crate::rng::sparse_feature`]), so that every backend draws the same
    /// bits and a member's data depend on its id alone, never on its place in
    /// the batch. `member` holds u32 ids stored bit for bit as f32 (see
    /// [`index_bits`]).
    fn sparse_features(
        &self,
        shape: Batched,
        draw: Draw,
        member: &Buffer,
        sparsity: &Buffer,
        x: &mut Buffer,
    ) -> Result<()>;

    /// The gradient of the tied toy model of superposition ([`TiedOp`]) in
    /// one fused pass: draws the batch as [`Backend::sparse_features`] does,
    /// writes `dL/dW` into `dw` (`[E, m, n]`) and `dL/db` into `db`
    /// (`[E, n]`), and each member's loss into `loss` (`[E]`) where given.
    /// Returns `false`, touching nothing, where the backend has no fused
    /// kernel (the caller composes the passes from products and elementwise
    /// operations, which every backend has).
    fn tied_gradients(
        &self,
        op: &TiedOp<'_>,
        dw: &mut Buffer,
        db: &mut Buffer,
        loss: Option<&mut Buffer>,
    ) -> Result<bool> {
        let _ = (op, dw, db, loss);
        Ok(false)
    }

    /// `dst[r, :] = src[idx[r], :]` for rows of `cols` values; `idx` holds u32 row
    /// indices stored bit for bit as f32 (see [`index_bits`]).
    fn gather_rows(&self, src: &Buffer, cols: usize, idx: &Buffer, dst: &mut Buffer) -> Result<()>;

    /// The device this backend runs on.
    fn info(&self) -> DeviceInfo;

    /// One tile of the infinite-width kernels: from a block of x1 (`[rows, k]`) and a
    /// transposed block of x2 (`[k, cols]`), features zero-padded to `k`, and the
    /// per-layer variances in `diag` (see `shaders/ntk.wgsl`), the NNGP and NTK of
    /// the network's output (`[rows, cols]`), written where `tile.want` asks.
    fn kernel_tile(
        &self,
        tile: &KernelTile,
        x1: &Buffer,
        x2t: &Buffer,
        diag: &Buffer,
        nngp: &mut Buffer,
        ntk: &mut Buffer,
    ) -> Result<()>;

    /// The infinite-width signal-propagation theory of `spec.act` for every
    /// item of `input` (fixed points and depth scales, or the critical
    /// line; see [`SignalSpec`]), [`SIGNAL_NONE`] where a value does not
    /// exist. The CPU backend computes it in f64 (`crate::chaos`), the GPU
    /// backend in f32 (`shaders/chaos.wgsl`).
    fn signal_propagation(&self, spec: &SignalSpec, input: &Buffer, out: &mut Buffer)
    -> Result<()>;

    /// Time the work `enqueue` queues: on the device's clock where it has
    /// timestamps, else the wall clock from before the first operation to the
    /// end of the last.
    fn time(&self, enqueue: &mut dyn FnMut() -> Result<()>) -> Result<(f64, Timing)> {
        self.sync()?;
        let t = std::time::Instant::now();
        enqueue()?;
        self.sync()?;
        Ok((t.elapsed().as_secs_f64(), Timing::Wall))
    }
}

/// A training loss, see `shaders/loss.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// `1/(2N) sum (f - y)^2`, `N = rows * outputs`.
    Mse,
    /// Softmax cross-entropy averaged over rows; targets are rows of probabilities.
    Xent,
}

/// Which draw of [`Backend::sparse_features`]: a run's seed and the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// The run's seed.
    pub seed: u32,
    /// The training step (a new draw each step).
    pub step: u32,
}

/// One optimizer step on one parameter tensor of an ensemble, see `shaders/optimizer.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The update rule.
    pub rule: Rule,
    /// Multiplies every member's learning rate (layer multiplier times schedule).
    pub scale: f32,
    /// 1-based step count (for Adam's bias corrections).
    pub step: u32,
}

/// An update rule.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Rule {
    /// Plain (stochastic) gradient descent.
    Sgd,
    /// Heavy ball: `m = mu m + g; p -= lr m`.
    Momentum {
        /// Momentum coefficient.
        mu: f32,
    },
    /// Adam (Kingma and Ba 2015).
    Adam {
        /// Decay of the first moment.
        b1: f32,
        /// Decay of the second moment.
        b2: f32,
        /// Added to the root of the second moment.
        eps: f32,
    },
}

/// How a duration was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// GPU timestamp queries.
    GpuTimestamp,
    /// Wall clock around submit and wait.
    Wall,
}

/// Checks the buffers of a LayerNorm pass (forward: `a` = x, `b` = y;
/// backward: `a` = y, `b` = dy, `c` = dx).
pub(crate) fn check_norm(
    op: &'static str,
    s: Batched,
    a: usize,
    b: usize,
    c: usize,
    inv: usize,
) -> Result<()> {
    check_len(
        op,
        &[
            ("input", a, s.len()),
            ("output", b, s.len()),
            ("third", c, s.len()),
            ("inv_std", inv, s.batch * s.rows),
        ],
    )
}

/// Checks that buffers have the lengths an operation needs.
pub(crate) fn check_len(op: &'static str, pairs: &[(&str, usize, usize)]) -> Result<()> {
    for &(name, have, want) in pairs {
        if have != want {
            return Err(Error::shape(
                op,
                format!("{name} has {have} elements, expected {want}"),
            ));
        }
    }
    Ok(())
}

/// Checks the buffers of [`Backend::row_dots`].
pub(crate) fn check_row_dots(s: Batched, a: usize, x: usize, out: usize, beta: f32) -> Result<()> {
    check_finite("row_dots", "beta", beta)?;
    check_len(
        "row_dots",
        &[
            ("a", a, s.len()),
            ("x", x, s.batch * s.cols),
            ("out", out, s.batch * s.rows),
        ],
    )
}

/// Checks a scalar argument.
pub(crate) fn check_finite(op: &'static str, name: &str, v: f32) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{op}: {name} must be finite, got {v}"
        )))
    }
}

/// Checks the buffers of [`Backend::sparse_features`].
pub(crate) fn check_sparse_features(
    s: Batched,
    member: usize,
    sparsity: usize,
    x: usize,
) -> Result<()> {
    check_len(
        "sparse_features",
        &[
            ("x", x, s.len()),
            ("member", member, s.batch),
            ("sparsity", sparsity, s.batch),
        ],
    )?;
    if u32::try_from(s.rows * s.cols).is_err() {
        return Err(Error::shape(
            "sparse_features",
            format!(
                "{} x {} values per member do not fit the 32-bit counter",
                s.rows, s.cols
            ),
        ));
    }
    Ok(())
}

/// Row indices as the f32 bit patterns [`Backend::gather_rows`] reads.
pub fn index_bits(idx: &[u32]) -> Vec<f32> {
    idx.iter().map(|&i| f32::from_bits(i)).collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn check_update(
    up: &Update,
    member_len: usize,
    grad: usize,
    lr: usize,
    alive: usize,
    param: usize,
    m: Option<usize>,
    v: Option<usize>,
) -> Result<()> {
    if member_len == 0 || !param.is_multiple_of(member_len) {
        return Err(Error::shape(
            "update",
            format!("{param} values are not whole members of {member_len}"),
        ));
    }
    let members = param / member_len;
    check_len(
        "update",
        &[
            ("grad", grad, param),
            ("lr", lr, members),
            ("alive", alive, members),
        ],
    )?;
    check_finite("update", "scale", up.scale)?;
    let need_m = !matches!(up.rule, Rule::Sgd);
    let need_v = matches!(up.rule, Rule::Adam { .. });
    if need_m != m.is_some() || need_v != v.is_some() {
        return Err(Error::invalid(format!(
            "update: {:?} needs {} state buffer(s)",
            up.rule,
            usize::from(need_m) + usize::from(need_v)
        )));
    }
    for s in [m, v].into_iter().flatten() {
        check_len("update", &[("state", s, param)])?;
    }
    Ok(())
}
