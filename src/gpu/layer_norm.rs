//! Host wrapper of `shaders/layer_norm.wgsl`.

use super::context::{Constants, GpuContext, PipelineKey, Shader, View, read, slots, write};
use crate::backend::Batched;
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct NormParams {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) eps: f32,
    pub(crate) _pad: u32,
}

fn whole<'a>(ctx: &GpuContext, b: &'a wgpu::Buffer, len: usize) -> Result<View<'a>> {
    let w = ctx.window("layer_norm", 0, len)?;
    Ok(View {
        buffer: b,
        offset: w.offset,
        size: w.size,
    })
}

/// Workgroups for one invocation per row (64 per group, folded into a
/// second dimension past the dispatch limit).
fn groups(ctx: &GpuContext, rows: usize) -> Result<[u32; 3]> {
    let g = rows.div_ceil(64);
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (x, y) = if g <= max {
        (g, 1)
    } else {
        (max, g.div_ceil(max))
    };
    let dim = |v: usize| u32::try_from(v).map_err(|_| Error::invalid("layer_norm: too many rows"));
    Ok([dim(x)?, dim(y)?, 1])
}

fn params(s: Batched, eps: f32) -> Result<NormParams> {
    let dim = |v: usize| u32::try_from(v).map_err(|_| Error::invalid("layer_norm: too large"));
    Ok(NormParams {
        rows: dim(s.batch * s.rows)?,
        cols: dim(s.cols)?,
        eps,
        _pad: 0,
    })
}

/// `y = (x - mean) / sqrt(eps + var)` per row, and each row's scale.
pub(crate) fn forward(
    ctx: &GpuContext,
    s: Batched,
    eps: f32,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    inv_std: &wgpu::Buffer,
) -> Result<()> {
    let key = PipelineKey {
        shader: Shader::LayerNorm,
        entry: "layer_norm",
        slots: slots![read(1), write(2), write(3)],
        constants: Constants::NONE,
    };
    let rows = s.batch * s.rows;
    let views = [
        whole(ctx, x, s.len())?,
        whole(ctx, y, s.len())?,
        whole(ctx, inv_std, rows)?,
    ];
    ctx.dispatch(&key, &params(s, eps)?, &views, groups(ctx, rows)?)
}

/// The backward pass from the forward output `y`.
pub(crate) fn backward(
    ctx: &GpuContext,
    s: Batched,
    y: &wgpu::Buffer,
    inv_std: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<()> {
    let key = PipelineKey {
        shader: Shader::LayerNorm,
        entry: "layer_norm_grad",
        slots: slots![read(1), write(2), write(3), write(4)],
        constants: Constants::NONE,
    };
    let rows = s.batch * s.rows;
    let views = [
        whole(ctx, y, s.len())?,
        whole(ctx, inv_std, rows)?,
        whole(ctx, dy, s.len())?,
        whole(ctx, dx, s.len())?,
    ];
    ctx.dispatch(&key, &params(s, 0.0)?, &views, groups(ctx, rows)?)
}
