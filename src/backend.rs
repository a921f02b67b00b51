//! The one interface the engine computes through. [`CpuBackend`](crate::cpu::CpuBackend)
//! and [`GpuBackend`](crate::gpu::GpuBackend) implement it, so a caller never
//! branches on which one runs; tests are written once against it.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::AdapterInfo;
use crate::kernel::KernelTile;

/// A flat f32 array owned by a backend. Create it with [`Backend::upload`] or
/// [`Backend::zeros`] and read it back with [`Backend::read`].
#[derive(Debug)]
pub struct Buffer {
    pub(crate) len: usize,
    pub(crate) inner: BufferInner,
}

#[derive(Debug)]
pub(crate) enum BufferInner {
    Host(Vec<f32>),
    Gpu(wgpu::Buffer),
}

impl Buffer {
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A read in flight, see [`Backend::read_begin`].
#[derive(Debug)]
pub enum ReadHandle {
    /// The values, already on the host.
    Ready(Vec<f32>),
    /// A copy submitted on a GPU.
    Gpu(crate::gpu::context::PendingRead),
}

/// A batched matrix product `C[e] = alpha * op(A[e]) * op(B[e]) + beta * C[e]`.
///
/// Every operand is row-major and the members of the batch are stored one after
/// another. `op(A)` is `m x k`: A is stored `[m, k]`, or `[k, m]` when `trans_a`.
/// `op(B)` is `k x n`: B is stored `[k, n]`, or `[n, k]` when `trans_b`. C is
/// `[m, n]`. A broadcast operand holds one member, used for every `e`. With
/// `beta == 0` the old contents of C are never read (they may be NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Matmul {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub broadcast_a: bool,
    pub broadcast_b: bool,
    pub alpha: f32,
    pub beta: f32,
}

impl Matmul {
    /// A plain `C = A * B` for one member.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Matmul {
            batch: 1,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            broadcast_a: false,
            broadcast_b: false,
            alpha: 1.0,
            beta: 0.0,
        }
    }

    /// Sets the batch size.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Sets the transpose flags.
    pub fn trans(mut self, a: bool, b: bool) -> Self {
        self.trans_a = a;
        self.trans_b = b;
        self
    }

    /// Sets the broadcast flags.
    pub fn broadcast(mut self, a: bool, b: bool) -> Self {
        self.broadcast_a = a;
        self.broadcast_b = b;
        self
    }

    /// Sets `alpha` and `beta`.
    pub fn scaled(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }

    /// Elements of A as stored (all members).
    pub fn a_len(&self) -> usize {
        self.m * self.k * if self.broadcast_a { 1 } else { self.batch }
    }

    /// Elements of B as stored (all members).
    pub fn b_len(&self) -> usize {
        self.k * self.n * if self.broadcast_b { 1 } else { self.batch }
    }

    /// Elements of C.
    pub fn c_len(&self) -> usize {
        self.m * self.n * self.batch
    }

    /// Strides of A as (row i of op(A), column p of op(A)).
    pub(crate) fn a_strides(&self) -> (usize, usize) {
        if self.trans_a {
            (1, self.m)
        } else {
            (self.k, 1)
        }
    }

    /// Strides of B as (row p of op(B), column j of op(B)).
    pub(crate) fn b_strides(&self) -> (usize, usize) {
        if self.trans_b {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }

    /// Checks the buffers against the shapes.
    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<()> {
        if self.batch == 0 || self.m == 0 || self.n == 0 {
            return Err(Error::shape("matmul", format!("empty product {self:?}")));
        }
        for (name, have, want) in [
            ("A", a, self.a_len()),
            ("B", b, self.b_len()),
            ("C", c, self.c_len()),
        ] {
            if have != want {
                return Err(Error::shape(
                    "matmul",
                    format!(
                        "operand {name} has {have} elements but batch={} m={} n={} k={} needs {want}",
                        self.batch, self.m, self.n, self.k
                    ),
                ));
            }
        }
        if !self.alpha.is_finite() || !self.beta.is_finite() {
            return Err(Error::invalid("matmul: alpha and beta must be finite"));
        }
        Ok(())
    }
}

/// Shape of a batch of row-major matrices `[batch, rows, cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batched {
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Batched {
    /// `[batch, rows, cols]`.
    pub fn new(batch: usize, rows: usize, cols: usize) -> Self {
        Batched { batch, rows, cols }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.batch * self.rows * self.cols
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
        Ok(ReadHandle::Ready(self.read(buf)?))
    }
    /// Finishes a read started by [`Backend::read_begin`].
    fn read_end(&self, h: ReadHandle) -> Result<Vec<f32>> {
        match h {
            ReadHandle::Ready(v) => Ok(v),
            ReadHandle::Gpu(_) => Err(Error::invalid("a GPU read was passed to another backend")),
        }
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
    /// The GPU backend behind this one, for what only it offers (f16
    /// products, the autotune).
    fn as_gpu(&self) -> Option<&crate::gpu::GpuBackend> {
        None
    }

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
        check_len("copy", &[("dst", dst.len, src.len)])?;
        let v = self.read(src)?;
        self.write(dst, &v)
    }
    /// `x *= alpha`.
    fn scale(&self, x: &mut Buffer, alpha: f32) -> Result<()>;
    /// `y += alpha * x`.
    fn axpy(&self, alpha: f32, x: &Buffer, y: &mut Buffer) -> Result<()>;
    /// `z = x * y`, elementwise.
    fn mul(&self, x: &Buffer, y: &Buffer, z: &mut Buffer) -> Result<()>;

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

    /// `dst[r, :] = src[idx[r], :]` for rows of `cols` values; `idx` holds u32 row
    /// indices stored bit for bit as f32 (see [`index_bits`]).
    fn gather_rows(&self, src: &Buffer, cols: usize, idx: &Buffer, dst: &mut Buffer) -> Result<()>;

    /// The device this backend runs on.
    fn info(&self) -> AdapterInfo;

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

/// One optimizer step on one parameter tensor of an ensemble, see `shaders/optimizer.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
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
    Momentum { mu: f32 },
    /// Adam (Kingma and Ba 2015).
    Adam { b1: f32, b2: f32, eps: f32 },
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

/// Checks the buffers of a kernel tile.
pub(crate) fn check_tile(
    t: &KernelTile,
    x1: usize,
    x2t: usize,
    diag: usize,
    nngp: usize,
    ntk: usize,
) -> Result<()> {
    let n = t.rows * t.cols;
    check_len(
        "kernel_tile",
        &[
            ("x1", x1, t.rows * t.k),
            ("x2t", x2t, t.k * t.cols),
            ("nngp", nngp, n),
            ("ntk", ntk, n),
        ],
    )?;
    if diag < crate::kernel::DIAG_CAPACITY
        || t.arch.depth * t.table_stride() > crate::kernel::DIAG_CAPACITY
    {
        return Err(Error::shape(
            "kernel_tile",
            format!(
                "diag must hold {} values and the tile's {} variances",
                crate::kernel::DIAG_CAPACITY,
                t.arch.depth * t.table_stride()
            ),
        ));
    }
    if !t.cols.is_multiple_of(4) || !t.k.is_multiple_of(4) || t.k < t.arch.d_in {
        return Err(Error::shape(
            "kernel_tile",
            format!(
                "cols ({}) and k ({}) must be multiples of 4, k >= d_in",
                t.cols, t.k
            ),
        ));
    }
    t.arch.validate()
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
