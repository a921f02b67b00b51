//! Host wrapper of `shaders/ntk.wgsl`: the layer recursion for every entry of
//! a kernel tile, from its Gram tile.

use super::context::{GpuContext, PipelineKey, Shader, Slot, View, Window, read, uniform, write};
use crate::error::{Error, Result};
use crate::kernel::{DIAG_CAPACITY, KernelTile, Parameterization};

/// Rows per invocation, `ROWS` in the shader.
const ROWS: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct NtkParams {
    rows: u32,
    cols: u32,
    _k: u32,
    flags: u32,
    stride: u32,
    cols_at: u32,
    _pad: [u32; 2],
    w_var: f32,
    b_var: f32,
    d_in: f32,
    width: f32,
    pa: f32,
    pb: f32,
    pc: f32,
    _inv_d: f32,
}

fn params(t: &KernelTile) -> NtkParams {
    let (_, [pa, pb, pc]) = t.arch.activation.shader_code();
    let flags =
        u32::from(t.want.nngp) | (u32::from(t.want.ntk) << 1) | (u32::from(t.same_diag) << 3);
    NtkParams {
        rows: t.rows as u32,
        cols: t.cols as u32,
        flags,
        stride: t.table_stride() as u32,
        cols_at: t.table_cols_at() as u32,
        w_var: (t.arch.w_std * t.arch.w_std) as f32,
        b_var: (t.arch.b_std * t.arch.b_std) as f32,
        d_in: t.arch.d_in as f32,
        width: t.arch.width as f32,
        pa,
        pb,
        pc,
        ..Default::default()
    }
}

fn key(t: &KernelTile, entry: &'static str, slots: Vec<Slot>) -> PipelineKey {
    let (code, _) = t.arch.activation.shader_code();
    let standard = t.arch.parameterization == Parameterization::Standard;
    PipelineKey {
        shader: Shader::Ntk,
        entry,
        slots,
        constants: vec![
            ("CODE", f64::from(code).to_bits()),
            ("DEPTH", (t.arch.depth as f64).to_bits()),
            ("STANDARD", f64::from(u8::from(standard)).to_bits()),
        ],
    }
}

fn whole(ctx: &GpuContext, len: usize) -> Result<Window> {
    ctx.window("kernel_tile", 0, len)
}

fn view(buffer: &wgpu::Buffer, w: Window) -> View<'_> {
    View {
        buffer,
        offset: w.offset,
        size: w.size,
    }
}

fn table(diag: &wgpu::Buffer) -> Result<View<'_>> {
    let bytes = (DIAG_CAPACITY * 4) as u64;
    if diag.size() < bytes {
        return Err(Error::invalid(format!(
            "kernel_tile: the variance table must hold {DIAG_CAPACITY} values"
        )));
    }
    Ok(View {
        buffer: diag,
        offset: 0,
        size: bytes,
    })
}

fn dim(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(format!("kernel tile: {what} too large")))
}

/// The recursion from a Gram tile `[rows, cols]`.
pub(crate) fn tile(
    ctx: &GpuContext,
    t: &KernelTile,
    gram: &wgpu::Buffer,
    diag: &wgpu::Buffer,
    nngp: &wgpu::Buffer,
    ntk: &wgpu::Buffer,
) -> Result<()> {
    let n = t.rows * t.cols;
    let key = key(t, "ntk_tile", vec![read(1), uniform(2), write(3), write(4)]);
    let views = [
        view(gram, whole(ctx, n)?),
        table(diag)?,
        view(nngp, whole(ctx, n)?),
        view(ntk, whole(ctx, n)?),
    ];
    let groups = [
        dim((t.cols / 4).div_ceil(64), "columns")?,
        dim(t.rows.div_ceil(ROWS), "rows")?,
        1,
    ];
    ctx.dispatch(&key, &params(t), &views, groups)
}
