//! Host wrapper of `shaders/matmul.wgsl`: the batched product and the batched
//! transpose it uses to give the kernel a row-major B.

use super::context::{read, write, GpuContext, PipelineKey, Shader, View};
use crate::backend::Matmul;
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    _pad0: u32,
    a_si: u32,
    a_sp: u32,
    b_sp: u32,
    b_sj: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    _pad1: u32,
    a_bs: u32,
    b_bs: u32,
    c_bs: u32,
    _pad2: u32,
    alpha: f32,
    beta: f32,
    _pad3: u32,
    _pad4: u32,
}

/// Rows and columns of C that one workgroup covers.
const TILE: usize = 32;

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(format!("{op}: {what} = {v} does not fit in 32 bits")))
}

/// Runs the product. B is transposed into a scratch buffer first when it is
/// stored `[n, k]` and wide enough for the gather to cost more than the copy.
pub(crate) fn matmul(
    ctx: &GpuContext,
    spec: &Matmul,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    scratch: &mut Option<wgpu::Buffer>,
) -> Result<()> {
    if spec.trans_b && spec.n >= 8 && spec.k >= 8 {
        let members = if spec.broadcast_b { 1 } else { spec.batch };
        let need = members * spec.k * spec.n;
        if scratch.as_ref().is_none_or(|s| s.size() < need as u64 * 4) {
            *scratch = Some(ctx.create_storage("matmul scratch", need)?);
        }
        if let Some(bt) = scratch.as_ref() {
            transpose(ctx, members, spec.n, spec.k, b, bt)?;
            let s = Matmul { trans_b: false, ..*spec };
            return run(ctx, &s, a, bt, c);
        }
    }
    run(ctx, spec, a, b, c)
}

fn run(ctx: &GpuContext, spec: &Matmul, a: &wgpu::Buffer, b: &wgpu::Buffer, c: &wgpu::Buffer) -> Result<()> {
    const OP: &str = "matmul";
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let a_member = m * k;
    let b_member = k * n;
    let c_member = m * n;
    // Members per dispatch: each operand's window must fit one binding.
    let max_b = ctx.max_binding() / 4;
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let per = |member: usize, bcast: bool| -> usize {
        if bcast { usize::MAX } else { (max_b as usize).saturating_sub(align) / member.max(1) }
    };
    let chunk = per(a_member, spec.broadcast_a)
        .min(per(b_member, spec.broadcast_b))
        .min(per(c_member, false))
        .min(ctx.limits.max_compute_workgroups_per_dimension as usize)
        .min(spec.batch);
    if chunk == 0 {
        let (what, elems) = [
            ("max_storage_buffer_binding_size (operand A of one member)", a_member),
            ("max_storage_buffer_binding_size (operand B of one member)", b_member),
            ("max_storage_buffer_binding_size (output C of one member)", c_member),
        ]
        .into_iter()
        .max_by_key(|&(_, e)| e)
        .unwrap_or(("max_storage_buffer_binding_size", c_member));
        return Err(Error::DeviceLimit {
            op: OP,
            what,
            needed: elems as u64 * 4,
            limit: ctx.max_binding(),
            device: ctx.info.name.clone(),
        });
    }
    let (a_si, a_sp) = spec.a_strides();
    let (b_sp, b_sj) = spec.b_strides();
    let key = PipelineKey { shader: Shader::Matmul, entry: "matmul", slots: vec![read(1), read(2), write(3)], constants: vec![] };
    let groups_x = u32_of(OP, "workgroups along n", n.div_ceil(TILE))?;
    let groups_y = u32_of(OP, "workgroups along m", m.div_ceil(TILE))?;
    let mut e0 = 0;
    while e0 < spec.batch {
        let eb = chunk.min(spec.batch - e0);
        let wa = if spec.broadcast_a { ctx.window(OP, 0, a_member)? } else { ctx.window(OP, e0 * a_member, eb * a_member)? };
        let wb = if spec.broadcast_b { ctx.window(OP, 0, b_member)? } else { ctx.window(OP, e0 * b_member, eb * b_member)? };
        let wc = ctx.window(OP, e0 * c_member, eb * c_member)?;
        let params = MatmulParams {
            m: u32_of(OP, "m", m)?,
            n: u32_of(OP, "n", n)?,
            k: u32_of(OP, "k", k)?,
            a_si: u32_of(OP, "stride", a_si)?,
            a_sp: u32_of(OP, "stride", a_sp)?,
            b_sp: u32_of(OP, "stride", b_sp)?,
            b_sj: u32_of(OP, "stride", b_sj)?,
            a_off: wa.shift,
            b_off: wb.shift,
            c_off: wc.shift,
            a_bs: if spec.broadcast_a { 0 } else { u32_of(OP, "m*k", a_member)? },
            b_bs: if spec.broadcast_b { 0 } else { u32_of(OP, "k*n", b_member)? },
            c_bs: u32_of(OP, "m*n", c_member)?,
            alpha: spec.alpha,
            beta: spec.beta,
            ..Default::default()
        };
        let views = [
            View { buffer: a, offset: wa.offset, size: wa.size },
            View { buffer: b, offset: wb.offset, size: wb.size },
            View { buffer: c, offset: wc.offset, size: wc.size },
        ];
        ctx.dispatch(&key, &params, &views, [groups_x, groups_y, eb as u32])?;
        e0 += eb;
    }
    Ok(())
}

/// `dst[e] = src[e]^T` for `batch` members of `rows x cols`.
pub(crate) fn transpose(
    ctx: &GpuContext,
    batch: usize,
    rows: usize,
    cols: usize,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "transpose";
    let member = rows * cols;
    let chunk = ((ctx.max_binding() / 4) as usize / member.max(1))
        .min(ctx.limits.max_compute_workgroups_per_dimension as usize)
        .max(1);
    let key = PipelineKey { shader: Shader::Matmul, entry: "transpose", slots: vec![read(1), write(3)], constants: vec![] };
    let mut e0 = 0;
    while e0 < batch {
        let eb = chunk.min(batch - e0);
        let ws = ctx.window(OP, e0 * member, eb * member)?;
        let wd = ctx.window(OP, e0 * member, eb * member)?;
        let params = MatmulParams {
            m: u32_of(OP, "rows", rows)?,
            n: u32_of(OP, "cols", cols)?,
            a_off: ws.shift,
            c_off: wd.shift,
            a_bs: u32_of(OP, "rows*cols", member)?,
            c_bs: u32_of(OP, "rows*cols", member)?,
            ..Default::default()
        };
        let views = [
            View { buffer: src, offset: ws.offset, size: ws.size },
            View { buffer: dst, offset: wd.offset, size: wd.size },
        ];
        let gx = u32_of(OP, "workgroups", rows.div_ceil(8))?;
        let gy = u32_of(OP, "workgroups", cols.div_ceil(8))?;
        ctx.dispatch(&key, &params, &views, [gx, gy, eb as u32])?;
        e0 += eb;
    }
    Ok(())
}
