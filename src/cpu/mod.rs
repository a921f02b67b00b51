//! The CPU backend: a real backend in f32 (products through faer's matrix
//! multiply, elementwise work, training kernels and the kernel recursion
//! spread over the cores with rayon), and, through [`ops`] in f64, the
//! oracle every backend's kernels are tested against.
//!
//! Modules: [`products`] (batched products and the dense layer's forward
//! pass), `elementwise` (activations, sums, scaling), `training` (losses,
//! updates, LayerNorm), `recursion` (the infinite-width kernel tiles),
//! `tied` (the toy model of superposition's fused gradient), [`rate`]
//! (the measured product rate `--device auto` compares).

mod elementwise;
pub mod ops;
pub mod products;
mod quadrature;
pub mod rate;
mod recursion;
mod tied;
mod training;

use crate::activation::Activation;
use crate::backend::{
    Backend, Batched, Buffer, DeviceInfo, Draw, KernelTile, Loss, Matmul, SignalSpec, Tangent,
    TiedOp, Update, check_finite, check_len, check_norm, check_row_dots, check_sparse_features,
    check_tile, check_update,
};
use crate::error::{Error, Result};

/// Runs every operation in f32 on the host's cores (rayon's global pool:
/// `RAYON_NUM_THREADS` sets its size).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

fn host(b: &Buffer) -> Result<&[f32]> {
    b.storage::<Vec<f32>>()
        .map(Vec::as_slice)
        .ok_or_else(|| Error::invalid("a buffer of another backend was passed to the CPU backend"))
}

fn host_mut(b: &mut Buffer) -> Result<&mut Vec<f32>> {
    b.storage_mut::<Vec<f32>>()
        .ok_or_else(|| Error::invalid("a buffer of another backend was passed to the CPU backend"))
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!(
            "cpu ({}, {} threads)",
            rate::cpu_model(),
            rayon::current_num_threads()
        )
    }

    fn is_gpu(&self) -> bool {
        false
    }

    fn zeros(&self, len: usize) -> Result<Buffer> {
        Ok(Buffer::new(len, vec![0.0f32; len]))
    }

    fn upload(&self, data: &[f32]) -> Result<Buffer> {
        Ok(Buffer::new(data.len(), data.to_vec()))
    }

    fn write(&self, buf: &mut Buffer, data: &[f32]) -> Result<()> {
        check_len("write", &[("data", data.len(), buf.len())])?;
        host_mut(buf)?.copy_from_slice(data);
        Ok(())
    }

    fn read(&self, buf: &Buffer) -> Result<Vec<f32>> {
        Ok(host(buf)?.to_vec())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn copy(&self, src: &Buffer, dst: &mut Buffer) -> Result<()> {
        check_len("copy", &[("dst", dst.len(), src.len())])?;
        elementwise::copy(host(src)?, host_mut(dst)?);
        Ok(())
    }

    fn matmul(&self, spec: &Matmul, a: &Buffer, b: &Buffer, c: &mut Buffer) -> Result<()> {
        spec.check(a.len(), b.len(), c.len())?;
        products::matmul(spec, host(a)?, host(b)?, host_mut(c)?);
        Ok(())
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
        products::dense_forward(
            spec,
            host(x)?,
            host(w)?,
            host(bias)?,
            mult_b,
            act,
            host_mut(z)?,
            host_mut(h)?,
        );
        Ok(())
    }

    fn activation(&self, act: Activation, x: &Buffer, y: &mut Buffer) -> Result<()> {
        check_len("activation", &[("y", y.len(), x.len())])?;
        elementwise::activation(act, host(x)?, host_mut(y)?);
        Ok(())
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
        elementwise::activation_grad(act, host(x)?, host(dy)?, host_mut(dx)?);
        Ok(())
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
        elementwise::bias_add(s, host_mut(y)?, host(bias)?, alpha);
        Ok(())
    }

    fn sum_rows(&self, s: Batched, x: &Buffer, out: &mut Buffer) -> Result<()> {
        check_len(
            "sum_rows",
            &[
                ("x", x.len(), s.len()),
                ("out", out.len(), s.batch * s.rows),
            ],
        )?;
        elementwise::sum_rows(s, host(x)?, host_mut(out)?);
        Ok(())
    }

    fn sum_cols(&self, s: Batched, x: &Buffer, out: &mut Buffer) -> Result<()> {
        check_len(
            "sum_cols",
            &[
                ("x", x.len(), s.len()),
                ("out", out.len(), s.batch * s.cols),
            ],
        )?;
        elementwise::sum_cols(s, host(x)?, host_mut(out)?);
        Ok(())
    }

    fn scale(&self, x: &mut Buffer, alpha: f32) -> Result<()> {
        check_finite("scale", "alpha", alpha)?;
        elementwise::scale(host_mut(x)?, alpha);
        Ok(())
    }

    fn axpy(&self, alpha: f32, x: &Buffer, y: &mut Buffer) -> Result<()> {
        check_finite("axpy", "alpha", alpha)?;
        check_len("axpy", &[("y", y.len(), x.len())])?;
        elementwise::axpy(alpha, host(x)?, host_mut(y)?);
        Ok(())
    }

    fn mul(&self, x: &Buffer, y: &Buffer, z: &mut Buffer) -> Result<()> {
        check_len("mul", &[("y", y.len(), x.len()), ("z", z.len(), x.len())])?;
        elementwise::mul(host(x)?, host(y)?, host_mut(z)?);
        Ok(())
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
        training::layer_norm(
            s,
            f64::from(eps),
            host(x)?,
            host_mut(y)?,
            host_mut(inv_std)?,
        );
        Ok(())
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
        training::layer_norm_grad(s, host(y)?, host(inv_std)?, host(dy)?, host_mut(dx)?);
        Ok(())
    }

    fn signal_propagation(
        &self,
        spec: &SignalSpec,
        input: &Buffer,
        out: &mut Buffer,
    ) -> Result<()> {
        spec.check(input.len(), out.len())?;
        let v = crate::chaos::signal_f64(spec, host(input)?);
        host_mut(out)?.copy_from_slice(&v);
        Ok(())
    }

    fn kernel_tile(
        &self,
        tile: &KernelTile,
        x1: &Buffer,
        x2t: &Buffer,
        diag: &Buffer,
        nngp: &mut Buffer,
        ntk: &mut Buffer,
    ) -> Result<()> {
        check_tile(tile, x1.len(), x2t.len(), diag.len(), nngp.len(), ntk.len())?;
        let (a, b, dg) = (host(x1)?, host(x2t)?, host(diag)?);
        let (q, t) = (host_mut(nngp)?, host_mut(ntk)?);
        recursion::kernel_tile(tile, a, b, dg, q, t);
        Ok(())
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
        training::loss_grad(loss, s, host(f)?, host(y)?, host_mut(df)?, host_mut(rows)?);
        Ok(())
    }

    fn tangent(&self, op: &Tangent<'_>, out: &mut Buffer) -> Result<()> {
        op.check(out.len())?;
        let out = host_mut(out)?;
        match *op {
            Tangent::Activation {
                act,
                x,
                dy,
                rx,
                rdy,
            } => ops::activation_tangent(act, host(x)?, host(dy)?, host(rx)?, host(rdy)?, out),
            Tangent::LayerNorm {
                shape,
                y,
                inv_std,
                dy,
                rx,
                rdy,
            } => ops::layer_norm_tangent(
                shape,
                host(y)?,
                host(inv_std)?,
                host(dy)?,
                host(rx)?,
                host(rdy)?,
                out,
            ),
            Tangent::Softmax { shape, f, rf } => {
                ops::softmax_tangent(shape, host(f)?, host(rf)?, out)
            }
        }
        Ok(())
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
        ops::row_dots(s, host(a)?, host(x)?, beta, host_mut(out)?);
        Ok(())
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
        training::mark_diverged(step, host(loss)?, host_mut(alive)?, host_mut(diverged_at)?);
        Ok(())
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
        let m = match m {
            Some(b) => Some(host_mut(b)?.as_mut_slice()),
            None => None,
        };
        let v = match v {
            Some(b) => Some(host_mut(b)?.as_mut_slice()),
            None => None,
        };
        training::update(
            up,
            member_len,
            host(grad)?,
            host(lr)?,
            host(alive)?,
            host_mut(param)?,
            m,
            v,
        );
        Ok(())
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
        let ids: Vec<u32> = host(member)?.iter().map(|v| v.to_bits()).collect();
        ops::sparse_features(s, draw, &ids, host(sparsity)?, host_mut(x)?);
        Ok(())
    }

    fn tied_gradients(
        &self,
        op: &TiedOp<'_>,
        dw: &mut Buffer,
        db: &mut Buffer,
        loss: Option<&mut Buffer>,
    ) -> Result<bool> {
        op.check(dw.len(), db.len(), loss.as_ref().map(|l| l.len()))?;
        let s = tied::Slices {
            w: host(op.w)?,
            b: host(op.b)?,
            ids: host(op.ids)?,
            sparsity: host(op.sparsity)?,
            weight: host(op.weight)?,
        };
        let loss = match loss {
            Some(l) => Some(host_mut(l)?.as_mut_slice()),
            None => None,
        };
        tied::tied_gradients(op, &s, host_mut(dw)?, host_mut(db)?, loss);
        Ok(true)
    }

    fn gather_rows(&self, src: &Buffer, cols: usize, idx: &Buffer, dst: &mut Buffer) -> Result<()> {
        check_len("gather_rows", &[("dst", dst.len(), idx.len() * cols)])?;
        let idx = host(idx)?;
        if let Some(bad) = idx
            .iter()
            .map(|v| v.to_bits())
            .find(|&i| (i as usize + 1) * cols > src.len())
        {
            return Err(Error::invalid(format!(
                "gather_rows: row {bad} is outside the source"
            )));
        }
        elementwise::gather_rows(host(src)?, cols, idx, host_mut(dst)?);
        Ok(())
    }

    fn info(&self) -> DeviceInfo {
        let mut i = DeviceInfo::new("cpu", "Cpu", "Cpu");
        i.vendor = "widenet".into();
        i.driver = "widenet CPU backend".into();
        i.driver_info = format!(
            "{}, {} threads",
            rate::cpu_model(),
            rayon::current_num_threads()
        );
        i.f64 = true;
        i
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
