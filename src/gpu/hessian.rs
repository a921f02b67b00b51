//! Host wrapper of `shaders/hessian.wgsl`: the tangent kernels of the
//! Hessian-vector product and the per-member dot products of the spectra.

use super::context::{Constants, GpuContext, PipelineKey, Shader, View, read, slots, write};
use super::elementwise::max_flat_groups;
use super::gpu;
use crate::backend::{Batched, Buffer, Tangent};
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct TangentParams {
    pub(crate) len: u32,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) _pad0: u32,
    pub(crate) pa: f32,
    pub(crate) pb: f32,
    pub(crate) scale: f32,
    pub(crate) _pad1: u32,
}

fn whole<'a>(ctx: &GpuContext, op: &'static str, b: &'a Buffer) -> Result<View<'a>> {
    let w = ctx.window(op, 0, b.len())?;
    Ok(View {
        buffer: gpu(b)?,
        offset: w.offset,
        size: w.size,
    })
}

fn dim(op: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(format!("{op}: {v} is too large")))
}

/// Workgroups for one invocation per row (64 per group, folded into a
/// second dimension past the dispatch limit).
fn row_groups(ctx: &GpuContext, rows: usize) -> Result<[u32; 3]> {
    let g = rows.div_ceil(64).max(1);
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (x, y) = if g <= max {
        (g, 1)
    } else {
        (max, g.div_ceil(max))
    };
    Ok([dim("tangent", x)?, dim("tangent", y)?, 1])
}

/// Runs one tangent kernel into `out` (lengths checked by the caller).
pub(crate) fn tangent(ctx: &GpuContext, op: &Tangent<'_>, out: &Buffer) -> Result<()> {
    let name = op.name();
    let mut params = TangentParams::default();
    let mut constants = Constants::NONE;
    let (slots, inputs, groups): (_, Vec<&Buffer>, _) = match *op {
        Tangent::Activation {
            act,
            x,
            dy,
            rx,
            rdy,
        } => {
            let (code, [pa, pb, _]) = act.shader_code();
            constants = Constants::of(&[("ACT_CODE", f64::from(code))]);
            params.len = dim(name, x.len())?;
            params.pa = pa;
            params.pb = pb;
            let groups = x.len().div_ceil(256).clamp(1, max_flat_groups(ctx)) as u32;
            (
                slots![read(1), read(2), read(3), read(4), write(6)],
                vec![x, dy, rx, rdy],
                [groups, 1, 1],
            )
        }
        Tangent::LayerNorm {
            shape,
            y,
            inv_std,
            dy,
            rx,
            rdy,
        } => {
            params.rows = dim(name, shape.batch * shape.rows)?;
            params.cols = dim(name, shape.cols)?;
            (
                slots![read(1), read(2), read(3), read(4), read(5), write(6)],
                vec![y, inv_std, dy, rx, rdy],
                row_groups(ctx, shape.batch * shape.rows)?,
            )
        }
        Tangent::Softmax { shape, f, rf } => {
            params.rows = dim(name, shape.batch * shape.rows)?;
            params.cols = dim(name, shape.cols)?;
            params.scale = 1.0 / shape.rows as f32;
            (
                slots![read(1), read(2), write(6)],
                vec![f, rf],
                row_groups(ctx, shape.batch * shape.rows)?,
            )
        }
    };
    let key = PipelineKey {
        shader: Shader::Hessian,
        entry: name,
        slots,
        constants,
    };
    let mut views = inputs
        .into_iter()
        .map(|b| whole(ctx, name, b))
        .collect::<Result<Vec<_>>>()?;
    views.push(whole(ctx, name, out)?);
    ctx.dispatch(&key, &params, &views, groups)
}

/// `out[e, r] = beta * out[e, r] + sum_c a[e, r, c] x[e, c]` (lengths checked by the caller).
pub(crate) fn row_dots(
    ctx: &GpuContext,
    s: Batched,
    a: &Buffer,
    x: &Buffer,
    beta: f32,
    out: &Buffer,
) -> Result<()> {
    const OP: &str = "row_dots";
    let key = PipelineKey {
        shader: Shader::Hessian,
        entry: OP,
        slots: slots![read(1), read(2), write(6)],
        constants: Constants::NONE,
    };
    let params = TangentParams {
        len: dim(OP, s.batch)?,
        rows: dim(OP, s.rows)?,
        cols: dim(OP, s.cols)?,
        scale: beta,
        ..Default::default()
    };
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if s.rows > max || s.batch > max {
        return Err(Error::invalid(format!(
            "{OP}: {} rows of {} members exceed the dispatch limit {max}",
            s.rows, s.batch
        )));
    }
    let views = [whole(ctx, OP, a)?, whole(ctx, OP, x)?, whole(ctx, OP, out)?];
    ctx.dispatch(&key, &params, &views, [s.rows as u32, s.batch as u32, 1])
}
