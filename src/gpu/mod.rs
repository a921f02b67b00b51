//! The wgpu backend: the only module that calls wgpu. `adapter` finds and picks
//! devices, `context` owns the device, pipelines and queued work, and one host
//! wrapper per kernel family sits beside its WGSL file in `shaders/`.
//!
//! An application that already owns a wgpu device hands it over with
//! [`GpuBackend::from_wgpu`]; `wgpu` is re-exported for that.

pub mod adapter;
mod chaos;
pub(crate) mod context;
pub(crate) mod elementwise;
mod half_buffer;
mod hessian;
mod layer_norm;
#[cfg(test)]
mod layouts;
pub mod matmul;
pub(crate) mod ntk;
pub(crate) mod optimizer;
mod sparse_features;
pub mod tune;

use crate::activation::Activation;
use crate::backend::{
    Backend, Batched, Buffer, DeviceChoice, DeviceInfo, Draw, KernelTile, Loss, Matmul, ReadHandle,
    SignalSpec, Tangent, Timing, Update, check_finite, check_len, check_norm, check_row_dots,
    check_sparse_features, check_tile, check_update,
};
use crate::error::{Error, Result};
pub use adapter::{enumerate, without_compute};
pub(crate) use context::GpuContext;
pub use context::GpuOptions;
use elementwise::Flat;
pub use half_buffer::HalfBuffer;
pub use matmul::{COOP_MULTIPLE, MatmulConfig, MatmulKernel, MatmulPlan};
use std::sync::{Arc, Mutex};
pub use wgpu;

/// Runs every operation as WGSL compute shaders on one wgpu adapter.
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    scratch: Mutex<[Option<wgpu::Buffer>; 2]>,
    gram: Mutex<Option<wgpu::Buffer>>,
    /// The Gauss-Hermite rule of the quadrature activations, made on first use.
    rule: std::sync::OnceLock<wgpu::Buffer>,
}

impl GpuBackend {
    /// Opens the adapter the choice names (`Ok(None)` when it names the CPU
    /// backend), autotuned as `opts` says.
    pub fn open(choice: &DeviceChoice, opts: &GpuOptions) -> Result<Option<Self>> {
        match adapter::select(choice)? {
            None => Ok(None),
            Some((a, info)) => {
                let g = GpuBackend::from_context(GpuContext::new(&a, info, opts)?);
                g.autotune_at_open(opts);
                Ok(Some(g))
            }
        }
    }

    /// Runs widenet on a device and queue the application already owns,
    /// opened on `adapter` (widenet uses the features they were opened with).
    ///
    /// ```no_run
    /// use widenet::gpu::{GpuBackend, GpuOptions, wgpu};
    /// let instance = wgpu::Instance::default();
    /// let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    /// let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;
    /// let dev = GpuBackend::from_wgpu(&adapter, device, queue, &GpuOptions::default())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_wgpu(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        opts: &GpuOptions,
    ) -> Result<Self> {
        let info = adapter::describe(adapter, 0);
        let g = GpuBackend::from_context(GpuContext::from_device(device, queue, info, opts)?);
        g.autotune_at_open(opts);
        Ok(g)
    }

    fn from_context(ctx: GpuContext) -> Self {
        GpuBackend {
            ctx: Arc::new(ctx),
            scratch: Mutex::new([None, None]),
            gram: Mutex::new(None),
            rule: std::sync::OnceLock::new(),
        }
    }

    /// The cached autotune result, or a tune (then cached), when asked; a
    /// failure keeps the built-in choice and is logged.
    fn autotune_at_open(&self, opts: &GpuOptions) {
        if !opts.autotune {
            return;
        }
        let path = opts
            .cache_dir
            .as_ref()
            .map(|d| d.join(tune::CACHE_NAME))
            .or_else(tune::cache_file);
        let configs = tune::candidates(self);
        if let Err(e) = tune::autotune_with(
            self,
            tune::Autotune::Cached,
            path,
            &configs,
            &tune::SHAPES,
            |_, _| {},
        ) {
            log::warn!("autotune failed ({e}); the built-in kernel choice is used");
        }
    }

    /// The device context (for the kernel families and the autotune).
    pub(crate) fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The configurations the matrix products run with.
    pub fn matmul_plan(&self) -> MatmulPlan {
        self.ctx.matmul_plan()
    }

    /// The matrix-product kernels this adapter can run.
    pub fn matmul_kernels(&self) -> Vec<MatmulKernel> {
        self.ctx.matmul_kernels()
    }

    /// Whether queued work is timed on the device's own clock.
    pub fn has_timestamps(&self) -> bool {
        self.ctx.has_timestamps()
    }

    /// Makes the matrix products run with `plan` (every kernel must be one of
    /// [`Self::matmul_kernels`]).
    pub fn set_matmul_plan(&self, plan: MatmulPlan) -> Result<()> {
        self.ctx.set_matmul_plan(plan)
    }

    /// The cooperative-matrix tiles the products use for f16 or f32
    /// operands, where the adapter has them.
    pub fn coop_shape(&self, f16: bool) -> Option<crate::backend::CoopShape> {
        self.ctx.coop_shape(f16)
    }
}

fn gpu(b: &Buffer) -> Result<&wgpu::Buffer> {
    b.storage::<wgpu::Buffer>()
        .ok_or_else(|| Error::invalid("a buffer of another backend was passed to the GPU backend"))
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        let i = &self.ctx.info;
        format!(
            "{} ({}, {}, {})",
            i.name, i.backend, i.device_type, i.driver
        )
    }

    fn is_gpu(&self) -> bool {
        true
    }

    fn zeros(&self, len: usize) -> Result<Buffer> {
        Ok(Buffer::new(len, self.ctx.create_storage("zeros", len)?))
    }

    fn upload(&self, data: &[f32]) -> Result<Buffer> {
        let b = self.ctx.create_storage("upload", data.len())?;
        self.ctx.write(&b, 0, data);
        Ok(Buffer::new(data.len(), b))
    }

    fn write(&self, buf: &mut Buffer, data: &[f32]) -> Result<()> {
        check_len("write", &[("data", data.len(), buf.len())])?;
        self.ctx.write(gpu(buf)?, 0, data);
        Ok(())
    }

    fn read(&self, buf: &Buffer) -> Result<Vec<f32>> {
        self.ctx.read(gpu(buf)?, 0, buf.len())
    }

    fn read_begin(&self, buf: &Buffer) -> Result<ReadHandle> {
        if (buf.len() as u64) * 4 > (64 << 20) {
            return Ok(ReadHandle::ready(self.read(buf)?));
        }
        Ok(ReadHandle::pending(
            self.ctx.begin_read(gpu(buf)?, buf.len())?,
        ))
    }

    fn read_end(&self, h: ReadHandle) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.read_end_with(h, &mut |v| out = v.to_vec())?;
        Ok(out)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn read_end_with(&self, h: ReadHandle, f: &mut dyn FnMut(&[f32])) -> Result<()> {
        match h.into_parts() {
            Ok(v) => {
                f(&v);
                Ok(())
            }
            Err(p) => match p.downcast::<context::PendingRead>() {
                Ok(p) => self.ctx.finish_read_with(*p, f),
                Err(_) => Err(Error::invalid(
                    "a read begun on another backend was passed to the GPU backend",
                )),
            },
        }
    }

    fn copy(&self, src: &Buffer, dst: &mut Buffer) -> Result<()> {
        check_len("copy", &[("dst", dst.len(), src.len())])?;
        let (s, d) = (gpu(src)?, gpu(dst)?);
        self.ctx
            .with_encoder(|e| e.copy_buffer_to_buffer(s, 0, d, 0, src.len() as u64 * 4));
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.ctx.wait("sync")
    }

    fn matmul(&self, spec: &Matmul, a: &Buffer, b: &Buffer, c: &mut Buffer) -> Result<()> {
        spec.check(a.len(), b.len(), c.len())?;
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        matmul::matmul(
            &self.ctx,
            spec,
            gpu(a)?,
            gpu(b)?,
            gpu(c)?,
            &mut scratch,
            None,
        )
    }

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
        spec.check(x.len(), w.len(), z.len())?;
        check_len(
            "dense_forward",
            &[
                ("bias", bias.len(), spec.batch * spec.n),
                ("h", h.len(), z.len()),
            ],
        )?;
        check_finite("dense_forward", "mult_b", mult_b)?;
        if spec.beta != 0.0 {
            return Err(Error::invalid("dense_forward: beta must be 0"));
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let epi = matmul::Epilogue {
            bias: gpu(bias)?,
            h: gpu(h)?,
            act,
            mult_b,
        };
        matmul::matmul(
            &self.ctx,
            spec,
            gpu(x)?,
            gpu(w)?,
            gpu(z)?,
            &mut scratch,
            Some(epi),
        )
    }

    fn activation(&self, act: Activation, x: &Buffer, y: &mut Buffer) -> Result<()> {
        check_len("activation", &[("y", y.len(), x.len())])?;
        elementwise::flat(
            &self.ctx,
            Flat::ActForward(act),
            x.len(),
            &[gpu(x)?, gpu(y)?],
        )
    }

    fn activation_grad(
        &self,
        act: Activation,
        x: &Buffer,
        dy: &Buffer,
        dx: &mut Buffer,
    ) -> Result<()> {
        check_len(
            "activation_grad",
            &[("dy", dy.len(), x.len()), ("dx", dx.len(), x.len())],
        )?;
        elementwise::flat(
            &self.ctx,
            Flat::ActBackward(act),
            x.len(),
            &[gpu(x)?, gpu(dy)?, gpu(dx)?],
        )
    }

    fn bias_add(&self, s: Batched, y: &mut Buffer, bias: &Buffer, alpha: f32) -> Result<()> {
        check_finite("bias_add", "alpha", alpha)?;
        check_len(
            "bias_add",
            &[
                ("y", y.len(), s.len()),
                ("bias", bias.len(), s.batch * s.cols),
            ],
        )?;
        elementwise::bias_add(&self.ctx, s, gpu(y)?, gpu(bias)?, alpha)
    }

    fn sum_rows(&self, s: Batched, x: &Buffer, out: &mut Buffer) -> Result<()> {
        check_len(
            "sum_rows",
            &[
                ("x", x.len(), s.len()),
                ("out", out.len(), s.batch * s.rows),
            ],
        )?;
        elementwise::sum(&self.ctx, s, gpu(x)?, gpu(out)?, false)
    }

    fn sum_cols(&self, s: Batched, x: &Buffer, out: &mut Buffer) -> Result<()> {
        check_len(
            "sum_cols",
            &[
                ("x", x.len(), s.len()),
                ("out", out.len(), s.batch * s.cols),
            ],
        )?;
        elementwise::sum(&self.ctx, s, gpu(x)?, gpu(out)?, true)
    }

    fn scale(&self, x: &mut Buffer, alpha: f32) -> Result<()> {
        check_finite("scale", "alpha", alpha)?;
        elementwise::flat(&self.ctx, Flat::Scale(alpha), x.len(), &[gpu(x)?])
    }

    fn axpy(&self, alpha: f32, x: &Buffer, y: &mut Buffer) -> Result<()> {
        check_finite("axpy", "alpha", alpha)?;
        check_len("axpy", &[("y", y.len(), x.len())])?;
        elementwise::flat(&self.ctx, Flat::Axpy(alpha), x.len(), &[gpu(x)?, gpu(y)?])
    }

    fn mul(&self, x: &Buffer, y: &Buffer, z: &mut Buffer) -> Result<()> {
        check_len("mul", &[("y", y.len(), x.len()), ("z", z.len(), x.len())])?;
        elementwise::flat(&self.ctx, Flat::Mul, x.len(), &[gpu(x)?, gpu(y)?, gpu(z)?])
    }

    fn layer_norm(
        &self,
        s: Batched,
        eps: f32,
        x: &Buffer,
        y: &mut Buffer,
        inv_std: &mut Buffer,
    ) -> Result<()> {
        check_norm("layer_norm", s, x.len(), y.len(), s.len(), inv_std.len())?;
        check_finite("layer_norm", "eps", eps)?;
        layer_norm::forward(&self.ctx, s, eps, gpu(x)?, gpu(y)?, gpu(inv_std)?)
    }

    fn layer_norm_grad(
        &self,
        s: Batched,
        y: &Buffer,
        inv_std: &Buffer,
        dy: &Buffer,
        dx: &mut Buffer,
    ) -> Result<()> {
        check_norm(
            "layer_norm_grad",
            s,
            y.len(),
            dy.len(),
            dx.len(),
            inv_std.len(),
        )?;
        layer_norm::backward(&self.ctx, s, gpu(y)?, gpu(inv_std)?, gpu(dy)?, gpu(dx)?)
    }

    fn kernel_tile(
        &self,
        t: &KernelTile,
        x1: &Buffer,
        x2t: &Buffer,
        diag: &Buffer,
        nngp: &mut Buffer,
        ntk: &mut Buffer,
    ) -> Result<()> {
        check_tile(t, x1.len(), x2t.len(), diag.len(), nngp.len(), ntk.len())?;
        let (x1, x2t, diag, nngp, ntk) = (gpu(x1)?, gpu(x2t)?, gpu(diag)?, gpu(nngp)?, gpu(ntk)?);
        // The Gram tile through the matrix product, then the recursion.
        let mut scratch = self.gram.lock().unwrap_or_else(|e| e.into_inner());
        let need = t.rows * t.cols;
        if scratch.as_ref().is_none_or(|s| s.size() < need as u64 * 4) {
            *scratch = Some(self.ctx.create_storage("gram scratch", need)?);
        }
        let Some(gram) = scratch.as_ref() else {
            return Err(Error::invalid("internal: gram scratch missing"));
        };
        let spec = Matmul::new(t.rows, t.cols, t.k).scaled(1.0 / t.program.d_in as f32, 0.0);
        let mut mm = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        matmul::matmul(&self.ctx, &spec, x1, x2t, gram, &mut mm, None)?;
        let rule = match self.rule.get() {
            Some(r) => r,
            None => {
                let r = self
                    .ctx
                    .create_storage("quadrature rule", ntk::RULE_VALUES)?;
                self.ctx.write(&r, 0, &ntk::rule_values());
                self.rule.get_or_init(|| r)
            }
        };
        ntk::tile(&self.ctx, t, gram, diag, rule, nngp, ntk)
    }

    fn signal_propagation(
        &self,
        spec: &SignalSpec,
        input: &Buffer,
        out: &mut Buffer,
    ) -> Result<()> {
        let count = spec.check(input.len(), out.len())?;
        chaos::run(&self.ctx, spec, count, gpu(input)?, gpu(out)?)
    }

    fn loss_grad(
        &self,
        loss: Loss,
        s: Batched,
        f: &Buffer,
        y: &Buffer,
        df: &mut Buffer,
        rows: &mut Buffer,
    ) -> Result<()> {
        check_len(
            "loss_grad",
            &[
                ("f", f.len(), s.len()),
                ("y", y.len(), s.rows * s.cols),
                ("df", df.len(), s.len()),
                ("rows", rows.len(), s.batch * s.rows),
            ],
        )?;
        optimizer::loss_grad(&self.ctx, loss, s, gpu(f)?, gpu(y)?, gpu(df)?, gpu(rows)?)
    }

    fn tangent(&self, op: &Tangent<'_>, out: &mut Buffer) -> Result<()> {
        op.check(out.len())?;
        hessian::tangent(&self.ctx, op, out)
    }

    fn row_dots(
        &self,
        s: Batched,
        a: &Buffer,
        x: &Buffer,
        beta: f32,
        out: &mut Buffer,
    ) -> Result<()> {
        check_row_dots(s, a.len(), x.len(), out.len(), beta)?;
        hessian::row_dots(&self.ctx, s, a, x, beta, out)
    }

    fn mark_diverged(
        &self,
        step: u32,
        loss: &Buffer,
        alive: &mut Buffer,
        diverged_at: &mut Buffer,
    ) -> Result<()> {
        check_len(
            "mark_diverged",
            &[
                ("alive", alive.len(), loss.len()),
                ("diverged_at", diverged_at.len(), loss.len()),
            ],
        )?;
        optimizer::mark_diverged(
            &self.ctx,
            step,
            gpu(loss)?,
            gpu(alive)?,
            gpu(diverged_at)?,
            loss.len(),
        )
    }

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
    ) -> Result<()> {
        check_update(
            up,
            member_len,
            grad.len(),
            lr.len(),
            alive.len(),
            param.len(),
            m.as_ref().map(|b| b.len()),
            v.as_ref().map(|b| b.len()),
        )?;
        let m = m.map(|b| gpu(b)).transpose()?;
        let v = v.map(|b| gpu(b)).transpose()?;
        optimizer::update(
            &self.ctx,
            up,
            member_len,
            gpu(grad)?,
            gpu(lr)?,
            gpu(alive)?,
            gpu(param)?,
            m,
            v,
            param.len() / member_len,
        )
    }

    fn sparse_features(
        &self,
        s: Batched,
        draw: Draw,
        member: &Buffer,
        sparsity: &Buffer,
        x: &mut Buffer,
    ) -> Result<()> {
        check_sparse_features(s, member.len(), sparsity.len(), x.len())?;
        sparse_features::draw(&self.ctx, s, draw, gpu(member)?, gpu(sparsity)?, gpu(x)?)
    }

    fn gather_rows(&self, src: &Buffer, cols: usize, idx: &Buffer, dst: &mut Buffer) -> Result<()> {
        check_len("gather_rows", &[("dst", dst.len(), idx.len() * cols)])?;
        elementwise::gather_rows(
            &self.ctx,
            (gpu(src)?, src.len()),
            cols,
            (gpu(idx)?, idx.len()),
            gpu(dst)?,
        )
    }

    fn info(&self) -> DeviceInfo {
        self.ctx.info.clone()
    }

    fn time(&self, enqueue: &mut dyn FnMut() -> Result<()>) -> Result<(f64, Timing)> {
        if self.ctx.has_timestamps() {
            Ok((self.ctx.time_on_device(enqueue)?, Timing::GpuTimestamp))
        } else {
            self.sync()?;
            let t = std::time::Instant::now();
            enqueue()?;
            self.sync()?;
            Ok((t.elapsed().as_secs_f64(), Timing::Wall))
        }
    }
}
