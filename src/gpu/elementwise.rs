//! Host wrappers of `shaders/elementwise.wgsl` and `shaders/reduce.wgsl`.

use super::context::{Constants, GpuContext, PipelineKey, Shader, Slot, View, read, slots, write};
use crate::activation::Activation;
use crate::backend::Batched;
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct EwParams {
    pub(crate) len: u32,
    pub(crate) off0: u32,
    pub(crate) off1: u32,
    pub(crate) off_out: u32,
    pub(crate) code: u32,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) _pad0: u32,
    pub(crate) alpha: f32,
    pub(crate) pa: f32,
    pub(crate) pb: f32,
    pub(crate) pc: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ReduceParams {
    pub(crate) batch: u32,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) off_x: u32,
    pub(crate) off_out: u32,
    pub(crate) _pad: [u32; 3],
}

/// An elementwise kernel over flat arrays.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flat {
    ActForward(Activation),
    ActBackward(Activation),
    Scale(f32),
    Axpy(f32),
    Mul,
}

impl Flat {
    fn entry(&self) -> (&'static str, &'static [Slot]) {
        match self {
            Flat::ActForward(_) => ("act_forward", slots![read(1), write(3)]),
            Flat::ActBackward(_) => ("act_backward", slots![read(1), read(2), write(3)]),
            Flat::Scale(_) => ("scale", slots![write(3)]),
            Flat::Axpy(_) => ("axpy", slots![read(1), write(3)]),
            Flat::Mul => ("mul", slots![read(1), read(2), write(3)]),
        }
    }

    /// The vec4 entry point of the op, where there is one.
    fn vector_entry(&self) -> Option<&'static str> {
        match self {
            Flat::ActBackward(_) => Some("act_backward4"),
            _ => None,
        }
    }
}

/// Most workgroups a flat (grid-stride) kernel is dispatched with: 262,144
/// invocations, enough to fill a large GPU, while on lavapipe, which pays per
/// workgroup, the SGD update of 8.5 million parameters took 0.7x the time with
/// 256-1024 groups that it took with one group per 256 values.
const MAX_FLAT_GROUPS: usize = 1024;

/// The cap on a flat kernel's workgroups on this device.
pub(crate) fn max_flat_groups(ctx: &GpuContext) -> usize {
    MAX_FLAT_GROUPS.min(ctx.limits.max_compute_workgroups_per_dimension as usize)
}

fn groups_for(ctx: &GpuContext, len: usize, per_group: usize) -> u32 {
    len.div_ceil(per_group).clamp(1, max_flat_groups(ctx)) as u32
}

/// Runs a flat kernel over `len` elements; `bufs` follow the kernel's slots.
/// Arrays above the binding limit are processed in windows.
pub(crate) fn flat(ctx: &GpuContext, op: Flat, len: usize, bufs: &[&wgpu::Buffer]) -> Result<()> {
    let (entry, slots) = op.entry();
    debug_assert_eq!(bufs.len(), slots.len());
    // Lengths that are multiples of 4 run the vec4 form where there is one:
    // windows then start at multiples of 4, so their shifts are too.
    let vector = op.vector_entry().filter(|_| len.is_multiple_of(4));
    let lanes = if vector.is_some() { 4 } else { 1 };
    let constants = match op {
        Flat::ActForward(a) | Flat::ActBackward(a) => {
            Constants::of(&[("ACT_CODE", f64::from(a.shader_code().0))])
        }
        _ => Constants::NONE,
    };
    let key = PipelineKey {
        shader: Shader::Elementwise,
        entry: vector.unwrap_or(entry),
        slots,
        constants,
    };
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let chunk = ((ctx.max_binding() / 4) as usize)
        .saturating_sub(align)
        .max(1)
        / lanes
        * lanes;
    let (code, [pa, pb, pc]) = match op {
        Flat::ActForward(a) | Flat::ActBackward(a) => a.shader_code(),
        _ => (0, [0.0; 3]),
    };
    let alpha = match op {
        Flat::Scale(a) | Flat::Axpy(a) => a,
        _ => 0.0,
    };
    let mut start = 0;
    while start < len {
        let n = chunk.min(len - start);
        let mut views = Vec::with_capacity(bufs.len());
        let mut shifts = [0u32; 4];
        for ((b, s), _) in bufs.iter().zip(key.slots).zip(0..) {
            let w = ctx.window(entry, start, n)?;
            shifts[s.binding as usize] = w.shift;
            views.push(View {
                buffer: b,
                offset: w.offset,
                size: w.size,
            });
        }
        let l = lanes as u32;
        let params = EwParams {
            len: (n / lanes) as u32,
            off0: shifts[1] / l,
            off1: shifts[2] / l,
            off_out: shifts[3] / l,
            code,
            alpha,
            pa,
            pb,
            pc,
            ..Default::default()
        };
        ctx.dispatch(
            &key,
            &params,
            &views,
            [groups_for(ctx, n / lanes, 256), 1, 1],
        )?;
        start += n;
    }
    Ok(())
}

/// Members of `member` elements that fit one binding window.
pub(crate) fn members_per_window(
    ctx: &GpuContext,
    op: &'static str,
    member: usize,
) -> Result<usize> {
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let per = ((ctx.max_binding() / 4) as usize).saturating_sub(align) / member.max(1);
    if per == 0 {
        return Err(Error::DeviceLimit {
            op,
            what: "max_storage_buffer_binding_size (one member)",
            needed: member as u64 * 4,
            limit: ctx.max_binding(),
            device: ctx.info.name.clone(),
        });
    }
    Ok(per.min(ctx.limits.max_compute_workgroups_per_dimension as usize))
}

/// `y[e, r, c] += bias[e, c]`.
pub(crate) fn bias_add(
    ctx: &GpuContext,
    s: Batched,
    y: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    alpha: f32,
) -> Result<()> {
    const OP: &str = "bias_add";
    let key = PipelineKey {
        shader: Shader::Elementwise,
        entry: "bias_add",
        slots: slots![read(1), write(3)],
        constants: Constants::NONE,
    };
    let member = s.rows * s.cols;
    let chunk = members_per_window(ctx, OP, member)?;
    let mut e0 = 0;
    while e0 < s.batch {
        let eb = chunk.min(s.batch - e0);
        let wb = ctx.window(OP, e0 * s.cols, eb * s.cols)?;
        let wy = ctx.window(OP, e0 * member, eb * member)?;
        let params = EwParams {
            alpha,
            len: (eb * member) as u32,
            off0: wb.shift,
            off_out: wy.shift,
            rows: s.rows as u32,
            cols: s.cols as u32,
            ..Default::default()
        };
        let views = [
            View {
                buffer: bias,
                offset: wb.offset,
                size: wb.size,
            },
            View {
                buffer: y,
                offset: wy.offset,
                size: wy.size,
            },
        ];
        ctx.dispatch(
            &key,
            &params,
            &views,
            [groups_for(ctx, eb * member, 256), 1, 1],
        )?;
        e0 += eb;
    }
    Ok(())
}

/// `out[e, c] = sum_r x[e, r, c]` (`cols == true`) or `out[e, r] = sum_c x[e, r, c]`.
pub(crate) fn sum(
    ctx: &GpuContext,
    s: Batched,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
    cols: bool,
) -> Result<()> {
    let entry = if cols { "sum_cols" } else { "sum_rows" };
    let key = PipelineKey {
        shader: Shader::Reduce,
        entry,
        slots: slots![read(1), write(3)],
        constants: Constants::NONE,
    };
    let member = s.rows * s.cols;
    let out_member = if cols { s.cols } else { s.rows };
    let chunk = members_per_window(ctx, entry, member)?;
    let mut e0 = 0;
    while e0 < s.batch {
        let eb = chunk.min(s.batch - e0);
        let wx = ctx.window(entry, e0 * member, eb * member)?;
        let wo = ctx.window(entry, e0 * out_member, eb * out_member)?;
        let params = ReduceParams {
            batch: eb as u32,
            rows: s.rows as u32,
            cols: s.cols as u32,
            off_x: wx.shift,
            off_out: wo.shift,
            ..Default::default()
        };
        let views = [
            View {
                buffer: x,
                offset: wx.offset,
                size: wx.size,
            },
            View {
                buffer: out,
                offset: wo.offset,
                size: wo.size,
            },
        ];
        ctx.dispatch(
            &key,
            &params,
            &views,
            [groups_for(ctx, out_member, 64), eb as u32, 1],
        )?;
        e0 += eb;
    }
    Ok(())
}

/// `dst[r, :] = src[idx[r], :]`; source, indices and destination each fit one binding.
pub(crate) fn gather_rows(
    ctx: &GpuContext,
    src: (&wgpu::Buffer, usize),
    cols: usize,
    idx: (&wgpu::Buffer, usize),
    dst: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "gather_rows";
    let key = PipelineKey {
        shader: Shader::Elementwise,
        entry: "gather_rows",
        slots: slots![read(1), read(2), write(3)],
        constants: Constants::NONE,
    };
    let len = idx.1 * cols;
    let (ws, wi, wd) = (
        ctx.window(OP, 0, src.1)?,
        ctx.window(OP, 0, idx.1)?,
        ctx.window(OP, 0, len)?,
    );
    let views = [
        View {
            buffer: src.0,
            offset: ws.offset,
            size: ws.size,
        },
        View {
            buffer: idx.0,
            offset: wi.offset,
            size: wi.size,
        },
        View {
            buffer: dst,
            offset: wd.offset,
            size: wd.size,
        },
    ];
    let params = EwParams {
        len: len as u32,
        cols: cols as u32,
        ..Default::default()
    };
    ctx.dispatch(&key, &params, &views, [groups_for(ctx, len, 256), 1, 1])
}
