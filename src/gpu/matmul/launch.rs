//! Launching a product: choosing the kernel the plan and the shapes allow,
//! copying transposed operands into row-major scratch where that reaches a
//! fast kernel, and dispatching over the batch in windows that fit a binding.

use super::{
    Epilogue, MatmulConfig, MatmulKernel, MatmulParams, THIN, planned_for, runs_directly,
    thin_setup,
};
use crate::backend::Matmul;
use crate::error::{Error, Result};
use crate::gpu::context::{
    Constants, GpuContext, PipelineKey, Shader, View, Window, read, slots, write,
};

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::invalid(format!("{op}: {what} = {v} does not fit in 32 bits")))
}

/// Runs the product with the fastest kernel the device and shapes allow.
/// Transposed operands are first copied into row-major scratch buffers when
/// that lets a fast kernel run (the copy is O(mk + kn) against O(mnk)).
pub(crate) fn matmul(
    ctx: &GpuContext,
    spec: &Matmul,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    scratch: &mut [Option<wgpu::Buffer>; 2],
    epi: Option<Epilogue<'_>>,
) -> Result<()> {
    let kernel = planned_for(ctx, spec, false).kernel;
    let worth = spec.m >= 8 && spec.n >= 8 && spec.k >= 8;
    let canonical = Matmul {
        trans_a: false,
        trans_b: false,
        ..*spec
    };
    // As it is when the planned kernel takes it that way, or when copying the
    // transposed operands into row-major scratch would not reach a fast kernel.
    let copy_helps = worth && (spec.trans_a || spec.trans_b) && runs_directly(&canonical, kernel);
    if runs_directly(spec, kernel) || !copy_helps {
        return run(ctx, spec, a, b, c, epi, Operands::F32);
    }
    let [sa, sb] = scratch;
    let a_use = if spec.trans_a {
        let members = if spec.broadcast_a { 1 } else { spec.batch };
        transpose_into(ctx, sa, members, spec.k, spec.m, a)?
    } else {
        a
    };
    let b_use = if spec.trans_b {
        let members = if spec.broadcast_b { 1 } else { spec.batch };
        transpose_into(ctx, sb, members, spec.n, spec.k, b)?
    } else {
        b
    };
    run(ctx, &canonical, a_use, b_use, c, epi, Operands::F32)
}

/// Transposes `members` of `rows x cols` from `src` into a scratch buffer grown as needed.
fn transpose_into<'a>(
    ctx: &GpuContext,
    scratch: &'a mut Option<wgpu::Buffer>,
    members: usize,
    rows: usize,
    cols: usize,
    src: &wgpu::Buffer,
) -> Result<&'a wgpu::Buffer> {
    let need = (members * rows * cols) as u64 * 4;
    if scratch.as_ref().is_none_or(|s| s.size() < need) {
        *scratch = Some(ctx.create_storage("matmul scratch", members * rows * cols)?);
    }
    match scratch.as_ref() {
        Some(t) => {
            transpose(ctx, members, rows, cols, src, t)?;
            Ok(t)
        }
        None => Err(Error::Gpu {
            op: "matmul",
            message: "scratch buffer missing".into(),
        }),
    }
}

/// How A and B are stored (C is always f32).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operands {
    F32,
    /// IEEE binary16, accumulated in f32 (adapters with SHADER_F16).
    F16,
}

/// The product with A and B stored as f16 and f32 accumulation: on the
/// adapter's f16 cooperative-matrix tiles where it has them, the plan says so
/// ([`MatmulPlan::f16_coop`]) and m, n and k are multiples of
/// [`COOP_MULTIPLE`]; otherwise through the vec4 or subgroup kernel
/// the plan chooses (the vec4 one where it chooses the generic kernel): k and n
/// multiples of 4, m and n at least 4, A and B row-major, or transposed where
/// the subgroup kernel runs them.
pub(crate) fn matmul_f16(
    ctx: &GpuContext,
    spec: &Matmul,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
) -> Result<()> {
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        return Err(Error::invalid(format!(
            "f16 matrix products need an adapter with SHADER_F16; {} has none",
            ctx.info.name
        )));
    }
    run(ctx, spec, a, b, c, None, Operands::F16)
}

/// Members of the batch per dispatch: each operand's window must fit one
/// binding, and the batch one dispatch dimension.
fn members_per_dispatch(ctx: &GpuContext, spec: &Matmul) -> Result<usize> {
    let (a_member, b_member, c_member) = (spec.m * spec.k, spec.k * spec.n, spec.m * spec.n);
    let max_b = ctx.max_binding() / 4;
    let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let per = |member: usize, bcast: bool| -> usize {
        if bcast {
            usize::MAX
        } else {
            (max_b as usize).saturating_sub(align) / member.max(1)
        }
    };
    let chunk = per(a_member, spec.broadcast_a)
        .min(per(b_member, spec.broadcast_b))
        .min(per(c_member, false))
        .min(ctx.limits.max_compute_workgroups_per_dimension as usize)
        .min(spec.batch);
    if chunk > 0 {
        return Ok(chunk);
    }
    let (what, elems) = [
        (
            "max_storage_buffer_binding_size (operand A of one member)",
            a_member,
        ),
        (
            "max_storage_buffer_binding_size (operand B of one member)",
            b_member,
        ),
        (
            "max_storage_buffer_binding_size (output C of one member)",
            c_member,
        ),
    ]
    .into_iter()
    .max_by_key(|&(_, e)| e)
    .unwrap_or(("max_storage_buffer_binding_size", c_member));
    Err(Error::DeviceLimit {
        op: OP,
        what,
        needed: elems as u64 * 4,
        limit: ctx.max_binding(),
        device: ctx.info.name.clone(),
    })
}

/// The configuration a product runs with: the plan's, where the shapes
/// allow it, else the generic kernel (f16 operands have no generic kernel).
fn choose_config(ctx: &GpuContext, spec: &Matmul, half: bool, thin: bool) -> Result<MatmulConfig> {
    let mut planned = planned_for(ctx, spec, half);
    if half && planned.kernel == MatmulKernel::Generic {
        planned = MatmulConfig::default_for(MatmulKernel::Vec4);
    }
    if runs_directly(spec, planned.kernel) && !thin {
        Ok(planned)
    } else if half {
        Err(Error::invalid(format!(
            "f16 products need k and n multiples of 4, m and n >= {THIN}, and A and B \
             row-major unless the subgroup kernel runs them (it takes B transposed, and A \
             transposed when m is a multiple of 4); got {spec:?}"
        )))
    } else {
        Ok(MatmulConfig::default_for(MatmulKernel::Generic))
    }
}

/// The pipeline of a product and its grid: the key, the (rows, columns) of C
/// one workgroup covers, and whether workgroup x runs along the rows.
fn pipeline_for(
    ctx: &GpuContext,
    spec: &Matmul,
    config: MatmulConfig,
    half: bool,
    thin: bool,
    fused: Option<Epilogue<'_>>,
) -> Result<(PipelineKey, usize, usize, bool)> {
    let kernel = config.kernel;
    let coop = ctx
        .coop_shape(half)
        .map(|shape| (shape, ctx.info.subgroup_sizes.1.max(1)));
    let (mut key, tile_rows, tile_cols) = if thin {
        thin_setup(spec.m > spec.n)
    } else {
        config.setup(coop)?
    };
    if half {
        key.shader = match key.shader {
            Shader::MatmulSg8 => Shader::MatmulSg8F16,
            Shader::MatmulCoop(c) => Shader::MatmulCoop(c),
            _ => Shader::MatmulVec4F16,
        };
    }
    let walk_m = if thin {
        spec.m > spec.n
    } else {
        kernel != MatmulKernel::Generic && config.walk_m
    };
    if let Some(e) = fused {
        key.constants.push("EPILOGUE", 1.0);
        key.constants
            .push("ACT_CODE", f64::from(e.act.shader_code().0));
    }
    if kernel == MatmulKernel::Sg8 && spec.trans_b {
        key.constants.push("TRANS_B", 1.0);
    }
    if kernel == MatmulKernel::Sg8 && spec.trans_a {
        key.constants.push("TRANS_A", 1.0);
    }
    Ok((key, tile_rows, tile_cols, walk_m))
}

/// The parameters of the dispatch of members `e0..e0 + eb`, with the windows
/// of A, B, C and the bias it binds.
fn params_of(spec: &Matmul, epi: Option<Epilogue<'_>>, w: [&Window; 4]) -> Result<MatmulParams> {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let (a_si, a_sp) = spec.a_strides();
    let (b_sp, b_sj) = spec.b_strides();
    let (code, [pa, pb, pc]) = epi.map_or((0, [0.0; 3]), |e| e.act.shader_code());
    let [wa, wb, wc, wbias] = w;
    Ok(MatmulParams {
        bias_off: wbias.shift,
        code,
        mult_b: epi.map_or(0.0, |e| e.mult_b),
        pa,
        pb,
        pc,
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
        a_bs: if spec.broadcast_a {
            0
        } else {
            u32_of(OP, "m*k", m * k)?
        },
        b_bs: if spec.broadcast_b {
            0
        } else {
            u32_of(OP, "k*n", k * n)?
        },
        c_bs: u32_of(OP, "m*n", m * n)?,
        alpha: spec.alpha,
        beta: spec.beta,
        ..Default::default()
    })
}

fn view<'a>(buffer: &'a wgpu::Buffer, w: &Window) -> View<'a> {
    View {
        buffer,
        offset: w.offset,
        size: w.size,
    }
}

const OP: &str = "matmul";

/// One product: the kernel the plan and shapes allow, dispatched over the
/// batch in chunks whose windows fit the binding limit; an epilogue runs
/// fused in the fast kernels and as separate passes after the generic one.
fn run(
    ctx: &GpuContext,
    spec: &Matmul,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    epi: Option<Epilogue<'_>>,
    operands: Operands,
) -> Result<()> {
    let half = operands == Operands::F16;
    let operand_bytes = if half { 2 } else { 4 };
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let chunk = members_per_dispatch(ctx, spec)?;
    let thin = m < THIN || n < THIN;
    let config = choose_config(ctx, spec, half, thin)?;
    let fused = if config.kernel == MatmulKernel::Generic {
        None
    } else {
        epi
    };
    let (key, tile_rows, tile_cols, walk_m) = pipeline_for(ctx, spec, config, half, thin, fused)?;
    let tiles_m = u32_of(OP, "workgroups along m", m.div_ceil(tile_rows))?;
    let tiles_n = u32_of(OP, "workgroups along n", n.div_ceil(tile_cols))?;
    let (groups_x, groups_y) = if walk_m {
        (tiles_m, tiles_n)
    } else {
        (tiles_n, tiles_m)
    };
    let mut e0 = 0;
    while e0 < spec.batch {
        let eb = chunk.min(spec.batch - e0);
        let member = |len: usize, bcast: bool| {
            if bcast {
                ctx.window_of(OP, 0, len, operand_bytes)
            } else {
                ctx.window_of(OP, e0 * len, eb * len, operand_bytes)
            }
        };
        let wa = member(m * k, spec.broadcast_a)?;
        let wb = member(k * n, spec.broadcast_b)?;
        let wc = ctx.window(OP, e0 * m * n, eb * m * n)?;
        let wbias = ctx.window(OP, e0 * n, eb * n)?;
        let params = params_of(spec, epi, [&wa, &wb, &wc, &wbias])?;
        let mut views = vec![view(a, &wa), view(b, &wb), view(c, &wc)];
        if config.kernel != MatmulKernel::Generic {
            // The fast kernels declare the epilogue's bindings 4 and 5,
            // bound to dummies when it is off.
            let (dr, dw) = ctx.dummies();
            match fused {
                Some(e) => views.extend([view(e.bias, &wbias), view(e.h, &wc)]),
                None => views.extend([
                    View {
                        buffer: dr,
                        offset: 0,
                        size: dr.size(),
                    },
                    View {
                        buffer: dw,
                        offset: 0,
                        size: dw.size(),
                    },
                ]),
            }
        }
        ctx.dispatch(&key, &params, &views, [groups_x, groups_y, eb as u32])?;
        e0 += eb;
    }
    if let (Some(e), None) = (epi, fused) {
        let shape = crate::backend::Batched::new(spec.batch, m, n);
        super::super::elementwise::bias_add(ctx, shape, c, e.bias, e.mult_b)?;
        super::super::elementwise::flat(
            ctx,
            super::super::elementwise::Flat::ActForward(e.act),
            spec.batch * m * n,
            &[c, e.h],
        )?;
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
    let key = PipelineKey {
        shader: Shader::Matmul,
        entry: "transpose",
        slots: slots![read(1), write(3)],
        constants: Constants::NONE,
    };
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
            View {
                buffer: src,
                offset: ws.offset,
                size: ws.size,
            },
            View {
                buffer: dst,
                offset: wd.offset,
                size: wd.size,
            },
        ];
        let gx = u32_of(OP, "workgroups", rows.div_ceil(8))?;
        let gy = u32_of(OP, "workgroups", cols.div_ceil(8))?;
        ctx.dispatch(&key, &params, &views, [gx, gy, eb as u32])?;
        e0 += eb;
    }
    Ok(())
}
