//! Host wrappers of `shaders/optimizer.wgsl` (parameter updates) and
//! `shaders/loss.wgsl` (losses, gradients, divergence).

use super::context::{Constants, GpuContext, PipelineKey, Shader, View, read, slots, write};
use crate::backend::{Batched, Loss, Rule, Update};
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct OptParams {
    pub(crate) len: u32,
    pub(crate) member_len: u32,
    pub(crate) member0: u32,
    pub(crate) shift: u32,
    pub(crate) scale: f32,
    pub(crate) mu: f32,
    pub(crate) b1: f32,
    pub(crate) b2: f32,
    pub(crate) eps: f32,
    pub(crate) bc1: f32,
    pub(crate) bc2: f32,
    pub(crate) _pad: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LossParams {
    pub(crate) members: u32,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) kind: u32,
    pub(crate) step: u32,
    pub(crate) _pad: [u32; 3],
}

fn whole<'a>(
    ctx: &GpuContext,
    op: &'static str,
    b: &'a wgpu::Buffer,
    len: usize,
) -> Result<View<'a>> {
    let w = ctx.window(op, 0, len)?;
    Ok(View {
        buffer: b,
        offset: w.offset,
        size: w.size,
    })
}

fn at(buffer: &wgpu::Buffer, w: super::context::Window) -> View<'_> {
    View {
        buffer,
        offset: w.offset,
        size: w.size,
    }
}

/// One optimizer step; tensors larger than a binding go in windows of whole members.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update(
    ctx: &GpuContext,
    up: &Update,
    member_len: usize,
    grad: &wgpu::Buffer,
    lr: &wgpu::Buffer,
    alive: &wgpu::Buffer,
    param: &wgpu::Buffer,
    m: Option<&wgpu::Buffer>,
    v: Option<&wgpu::Buffer>,
    members: usize,
) -> Result<()> {
    const OP: &str = "update";
    // Members of a multiple of 4 values run the vec4 forms (whole members per
    // window keep every window's shift a multiple of 4).
    let vector = member_len.is_multiple_of(4);
    // Binding 6 holds the members' alive flags.
    let (entry, slots) = match (up.rule, vector) {
        (Rule::Sgd, false) => ("sgd", slots![read(1), read(2), write(3), read(6)]),
        (Rule::Sgd, true) => ("sgd4", slots![read(1), read(2), write(3), read(6)]),
        (Rule::Momentum { .. }, false) => (
            "momentum",
            slots![read(1), read(2), write(3), write(4), read(6)],
        ),
        (Rule::Momentum { .. }, true) => (
            "momentum4",
            slots![read(1), read(2), write(3), write(4), read(6)],
        ),
        (Rule::Adam { .. }, false) => (
            "adam",
            slots![read(1), read(2), write(3), write(4), write(5), read(6)],
        ),
        (Rule::Adam { .. }, true) => (
            "adam4",
            slots![read(1), read(2), write(3), write(4), write(5), read(6)],
        ),
    };
    let lanes = if vector { 4 } else { 1 };
    let key = PipelineKey {
        shader: Shader::Optimizer,
        entry,
        slots,
        constants: Constants::NONE,
    };
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let per = ((ctx.max_binding() / 4) as usize).saturating_sub(align) / member_len.max(1);
    if per == 0 {
        return Err(Error::DeviceLimit {
            op: OP,
            what: "max_storage_buffer_binding_size (one member of a parameter tensor)",
            needed: member_len as u64 * 4,
            limit: ctx.max_binding(),
            device: ctx.info.name.clone(),
        });
    }
    let (mu, b1, b2, eps) = match up.rule {
        Rule::Sgd => (0.0, 0.0, 0.0, 0.0),
        Rule::Momentum { mu } => (mu, 0.0, 0.0, 0.0),
        Rule::Adam { b1, b2, eps } => (0.0, b1, b2, eps),
    };
    let t = up.step.max(1) as i32;
    // One row of workgroups per member: at most as many rows as a dispatch
    // may have, and columns enough to cover a member within the flat cap.
    let max_rows = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let per = per.min(max_rows);
    let mut e0 = 0;
    while e0 < members {
        let eb = per.min(members - e0);
        let w = ctx.window(OP, e0 * member_len, eb * member_len)?;
        let mut views = vec![at(grad, w), whole(ctx, OP, lr, members)?, at(param, w)];
        if let Some(m) = m {
            views.push(at(m, w));
        }
        if let Some(v) = v {
            views.push(at(v, w));
        }
        views.push(whole(ctx, OP, alive, members)?);
        let params = OptParams {
            len: (eb * member_len / lanes) as u32,
            member_len: (member_len / lanes) as u32,
            member0: e0 as u32,
            shift: w.shift / lanes as u32,
            scale: up.scale,
            mu,
            b1,
            b2,
            eps,
            bc1: 1.0 - (b1 as f64).powi(t) as f32,
            bc2: 1.0 - (b2 as f64).powi(t) as f32,
            _pad: 0.0,
        };
        let columns = (member_len / lanes)
            .div_ceil(256)
            .clamp(1, (super::elementwise::max_flat_groups(ctx) / eb).max(1))
            as u32;
        ctx.dispatch(&key, &params, &views, [columns, eb as u32, 1])?;
        e0 += eb;
    }
    Ok(())
}

/// Loss, gradient and per-row losses.
pub(crate) fn loss_grad(
    ctx: &GpuContext,
    loss: Loss,
    s: Batched,
    f: &wgpu::Buffer,
    y: &wgpu::Buffer,
    df: &wgpu::Buffer,
    rows: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "loss_grad";
    let key = PipelineKey {
        shader: Shader::Loss,
        entry: "loss_grad",
        slots: slots![read(1), read(2), write(3), write(4)],
        constants: Constants::NONE,
    };
    let views = [
        whole(ctx, OP, f, s.len())?,
        whole(ctx, OP, y, s.rows * s.cols)?,
        whole(ctx, OP, df, s.len())?,
        whole(ctx, OP, rows, s.batch * s.rows)?,
    ];
    let params = LossParams {
        members: s.batch as u32,
        rows: s.rows as u32,
        cols: s.cols as u32,
        kind: match loss {
            Loss::Mse => 0,
            Loss::Xent => 1,
        },
        ..Default::default()
    };
    ctx.dispatch(
        &key,
        &params,
        &views,
        [s.rows.div_ceil(64) as u32, s.batch as u32, 1],
    )
}

/// Marks members whose loss is not finite.
pub(crate) fn mark_diverged(
    ctx: &GpuContext,
    step: u32,
    loss: &wgpu::Buffer,
    alive: &wgpu::Buffer,
    diverged_at: &wgpu::Buffer,
    members: usize,
) -> Result<()> {
    const OP: &str = "mark_diverged";
    let key = PipelineKey {
        shader: Shader::Loss,
        entry: "mark_diverged",
        slots: slots![read(1), write(3), write(4)],
        constants: Constants::NONE,
    };
    let views = [
        whole(ctx, OP, loss, members)?,
        whole(ctx, OP, alive, members)?,
        whole(ctx, OP, diverged_at, members)?,
    ];
    let params = LossParams {
        members: members as u32,
        step,
        ..Default::default()
    };
    ctx.dispatch(&key, &params, &views, [members.div_ceil(64) as u32, 1, 1])
}
