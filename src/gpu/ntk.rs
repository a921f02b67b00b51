//! Host wrapper of `shaders/ntk.wgsl`: one dispatch runs the whole layer
//! recursion for every entry of a kernel tile.

use super::context::{GpuContext, PipelineKey, Shader, View, read, write};
use crate::error::{Error, Result};
use crate::kernel::{KernelTile, Parameterization};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct NtkParams {
    rows: u32,
    cols: u32,
    depth: u32,
    flags: u32,
    code: u32,
    _pad: [u32; 3],
    w_var: f32,
    b_var: f32,
    d_in: f32,
    width: f32,
    pa: f32,
    pb: f32,
    pc: f32,
    _pad1: f32,
}

pub(crate) fn tile(
    ctx: &GpuContext,
    t: &KernelTile,
    gram: &wgpu::Buffer,
    diag: &wgpu::Buffer,
    nngp: &wgpu::Buffer,
    ntk: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "kernel_tile";
    let n = t.rows * t.cols;
    let full = |len: usize| ctx.window(OP, 0, len);
    let (wg, wd, wn, wt) = (
        full(n)?,
        full((t.arch.depth * (t.rows + t.cols)).max(1))?,
        full(n)?,
        full(n)?,
    );
    let (code, [pa, pb, pc]) = t.arch.activation.shader_code();
    let mut flags = 0;
    if t.want.nngp {
        flags |= 1;
    }
    if t.want.ntk {
        flags |= 2;
    }
    if t.arch.parameterization == Parameterization::Standard {
        flags |= 4;
    }
    if t.same_diag {
        flags |= 8;
    }
    let params = NtkParams {
        rows: t.rows as u32,
        cols: t.cols as u32,
        depth: t.arch.depth as u32,
        flags,
        code,
        w_var: (t.arch.w_std * t.arch.w_std) as f32,
        b_var: (t.arch.b_std * t.arch.b_std) as f32,
        d_in: t.arch.d_in as f32,
        width: t.arch.width as f32,
        pa,
        pb,
        pc,
        ..Default::default()
    };
    let key = PipelineKey {
        shader: Shader::Ntk,
        entry: "ntk_tile",
        slots: vec![read(1), read(2), write(3), write(4)],
        constants: vec![],
    };
    let views = [
        View {
            buffer: gram,
            offset: wg.offset,
            size: wg.size,
        },
        View {
            buffer: diag,
            offset: wd.offset,
            size: wd.size,
        },
        View {
            buffer: nngp,
            offset: wn.offset,
            size: wn.size,
        },
        View {
            buffer: ntk,
            offset: wt.offset,
            size: wt.size,
        },
    ];
    let gx =
        u32::try_from(t.cols.div_ceil(64)).map_err(|_| Error::invalid("kernel tile too wide"))?;
    let gy = u32::try_from(t.rows).map_err(|_| Error::invalid("kernel tile too tall"))?;
    ctx.dispatch(&key, &params, &views, [gx, gy, 1])
}
