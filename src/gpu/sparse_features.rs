//! Host wrapper of `shaders/sparse_features.wgsl`: sparse synthetic features
//! drawn on the device from a counter-based hash.

use super::context::{Constants, GpuContext, PipelineKey, Shader, View, read, slots, write};
use crate::backend::{Batched, Draw};
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DrawParams {
    pub(crate) per: u32,
    pub(crate) member0: u32,
    pub(crate) off_x: u32,
    pub(crate) seed: u32,
    pub(crate) step: u32,
    pub(crate) _pad: [u32; 3],
}

/// `x[e, r, c]`: 0 with probability `sparsity[e]`, else uniform on [0, 1);
/// the features of members that fit one binding per dispatch.
pub(crate) fn draw(
    ctx: &GpuContext,
    s: Batched,
    d: Draw,
    member: &wgpu::Buffer,
    sparsity: &wgpu::Buffer,
    x: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "sparse_features";
    let key = PipelineKey {
        shader: Shader::SparseFeatures,
        entry: "sparse_features",
        slots: slots![read(1), read(2), write(3)],
        constants: Constants::NONE,
    };
    let per = s.rows * s.cols;
    let chunk = super::elementwise::members_per_window(ctx, OP, per)?;
    let wm = ctx.window(OP, 0, s.batch)?;
    let mut e0 = 0;
    while e0 < s.batch {
        let eb = chunk.min(s.batch - e0);
        let wx = ctx.window(OP, e0 * per, eb * per)?;
        let params = DrawParams {
            per: per as u32,
            member0: (e0 + wm.shift as usize) as u32,
            off_x: wx.shift,
            seed: d.seed,
            step: d.step,
            ..Default::default()
        };
        let views = [
            View {
                buffer: member,
                offset: wm.offset,
                size: wm.size,
            },
            View {
                buffer: sparsity,
                offset: wm.offset,
                size: wm.size,
            },
            View {
                buffer: x,
                offset: wx.offset,
                size: wx.size,
            },
        ];
        let columns = per
            .div_ceil(256)
            .clamp(1, (super::elementwise::max_flat_groups(ctx) / eb).max(1));
        ctx.dispatch(&key, &params, &views, [columns as u32, eb as u32, 1])?;
        e0 += eb;
    }
    Ok(())
}
