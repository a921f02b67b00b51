//! Host wrapper of `shaders/matmul.wgsl`: the batched product and the batched
//! transpose it uses to give the kernel a row-major B.

use super::adapter::CoopShape;
use super::context::{GpuContext, PipelineKey, Shader, View, read, write};
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
    bias_off: u32,
    _pad4: u32,
    code: u32,
    mult_b: f32,
    pa: f32,
    pb: f32,
    pc: f32,
    _pad5: [u32; 3],
}

/// The fused end of a dense layer: `C += mult_b * bias` (bias `[batch, n]`,
/// broadcast over rows), then `h = act(C)`.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub bias: &'a wgpu::Buffer,
    pub h: &'a wgpu::Buffer,
    pub act: crate::activation::Activation,
    pub mult_b: f32,
}

/// The matrix-product kernels, from the most general to the most specialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatmulKernel {
    /// `matmul.wgsl`: any strides and shapes; 4 x 4 outputs per invocation.
    Generic,
    /// `matmul_vec4.wgsl`: row-major A and B with k and n multiples of 4; an
    /// 8 x 8 register block per invocation, vec4 loads.
    Vec4,
    /// `matmul_sg8.wgsl`: as `Vec4`, for adapters with 8-lane subgroups
    /// (lavapipe): rows of A shared through subgroupBroadcast.
    Sg8,
    /// `matmul_coop.wgsl`: cooperative-matrix tiles (tensor cores, simdgroup
    /// matrices) on adapters that report them; row-major A and B with m, n
    /// and k multiples of [`COOP_MULTIPLE`].
    Coop,
}

/// What m, n and k must be multiples of for the cooperative-matrix kernel
/// (the larger tile side wgpu offers; 8-wide tiles divide it too).
pub const COOP_MULTIPLE: usize = 16;

impl MatmulKernel {
    /// Parses `generic`, `vec4`, `sg8` or `coop`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "generic" => Some(MatmulKernel::Generic),
            "vec4" => Some(MatmulKernel::Vec4),
            "sg8" => Some(MatmulKernel::Sg8),
            "coop" => Some(MatmulKernel::Coop),
            _ => None,
        }
    }
}

/// One configuration of a matrix-product kernel: the kernel, the rows of
/// invocations in a workgroup (`WG_Y` in the shaders: subgroups for `Sg8`), and
/// the order in which workgroups walk the tiles of C. The generic kernel has
/// no settings (`wg_y` and `walk_m` are ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MatmulConfig {
    pub kernel: MatmulKernel,
    pub wg_y: u32,
    /// Consecutive workgroups go down the rows of C (a strip of B stays in
    /// cache) rather than along its columns.
    pub walk_m: bool,
}

impl MatmulConfig {
    /// The values of `WG_Y` a configuration may take.
    pub const WG_Y: [u32; 4] = [2, 4, 8, 16];

    /// The kernel with the settings used before any tuning.
    pub fn default_for(kernel: MatmulKernel) -> Self {
        MatmulConfig {
            kernel,
            wg_y: 8,
            walk_m: kernel == MatmulKernel::Sg8,
        }
    }

    /// Whether the settings are among those the kernels accept.
    pub fn is_valid(&self) -> bool {
        Self::WG_Y.contains(&self.wg_y)
    }

    /// The kernel's pipeline and the (rows, columns) of C one workgroup covers.
    /// The cooperative-matrix kernel takes its tiles from `coop` (f32 or f16
    /// operands, as the product asks) and `lanes`, one subgroup per workgroup.
    fn setup(self, coop: Option<(CoopShape, u32)>) -> Result<(PipelineKey, usize, usize)> {
        if self.kernel == MatmulKernel::Coop {
            let Some((shape, lanes)) = coop else {
                return Err(Error::invalid(
                    "the cooperative-matrix kernel needs an adapter that reports cooperative matrices",
                ));
            };
            let side = 2 * shape.side as usize;
            let key = PipelineKey {
                shader: Shader::MatmulCoop(shape),
                entry: "matmul_coop",
                slots: vec![read(1), read(2), write(3), read(4), write(5)],
                constants: vec![
                    ("WG", f64::from(lanes).to_bits()),
                    ("WALK_M", f64::from(u8::from(self.walk_m)).to_bits()),
                ],
            };
            return Ok((key, side, side));
        }
        // The fast kernels declare the epilogue's bindings 4 and 5 (bound to
        // dummies when it is off).
        let slots = match self.kernel {
            MatmulKernel::Generic => vec![read(1), read(2), write(3)],
            _ => vec![read(1), read(2), write(3), read(4), write(5)],
        };
        let wg = self.wg_y as usize;
        let (shader, entry, rows, cols) = match self.kernel {
            MatmulKernel::Generic => (Shader::Matmul, "matmul", 32, 32),
            MatmulKernel::Vec4 => (Shader::MatmulVec4, "matmul_vec4", 8 * wg, 64),
            _ => (Shader::MatmulSg8, "matmul_sg8", 32 * wg, 32),
        };
        let constants = match self.kernel {
            MatmulKernel::Generic => vec![],
            _ => vec![
                ("WG_Y", f64::from(self.wg_y).to_bits()),
                ("WALK_M", f64::from(u8::from(self.walk_m)).to_bits()),
            ],
        };
        Ok((
            PipelineKey {
                shader,
                entry,
                slots,
                constants,
            },
            rows,
            cols,
        ))
    }
}

/// Products with fewer rows or columns than this run `matmul_thin`, one
/// invocation per output (matrix-vector products, such as a readout layer's).
const THIN: usize = 4;

/// `matmul_thin`'s pipeline and the (rows, columns) of C one workgroup covers:
/// 64 invocations along the longer side of C.
fn thin_setup(lanes_on_rows: bool) -> (PipelineKey, usize, usize) {
    let key = PipelineKey {
        shader: Shader::Matmul,
        entry: "matmul_thin",
        slots: vec![read(1), read(2), write(3)],
        constants: vec![(
            "LANES_ON_ROWS",
            f64::from(u8::from(lanes_on_rows)).to_bits(),
        )],
    };
    if lanes_on_rows {
        (key, 64, 1)
    } else {
        (key, 1, 64)
    }
}

/// Products with fewer rows than this use [`MatmulPlan::small`].
pub const SMALL_M: usize = 128;

/// Which configuration runs which products: short ones (m below [`SMALL_M`],
/// as in training on small batches) and the rest. Shapes that no fast kernel
/// accepts always run the generic kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatmulPlan {
    pub large: MatmulConfig,
    pub small: MatmulConfig,
    /// f16 operands run on the adapter's f16 cooperative-matrix tiles where
    /// the shapes allow (else on the register kernels). The tune measures
    /// both: on lavapipe the tiles are emulated and slower.
    #[serde(default)]
    pub f16_coop: bool,
}

impl MatmulPlan {
    /// One configuration for every product.
    pub fn uniform(c: MatmulConfig) -> Self {
        MatmulPlan {
            large: c,
            small: c,
            f16_coop: c.kernel == MatmulKernel::Coop,
        }
    }

    /// The configuration for a product with `m` rows.
    pub fn for_rows(&self, m: usize) -> MatmulConfig {
        if m < SMALL_M { self.small } else { self.large }
    }
}

/// Whether the row-major (NN) product of these shapes suits the vec4 kernels:
/// every row stride, member size and offset a multiple of 4 elements.
fn vec4_shapes(spec: &Matmul) -> bool {
    !spec.trans_a && !spec.trans_b && spec.k.is_multiple_of(4) && spec.n.is_multiple_of(4)
}

/// Whether `kernel` runs this product as it is: the vec4 shapes, and for the
/// subgroup kernel also B transposed (`TRANS_B`) and A transposed with m a
/// multiple of 4 (`TRANS_A`).
fn runs_directly(spec: &Matmul, kernel: MatmulKernel) -> bool {
    let plain = Matmul {
        trans_a: false,
        trans_b: false,
        ..*spec
    };
    match kernel {
        MatmulKernel::Generic => false,
        MatmulKernel::Vec4 => vec4_shapes(spec),
        MatmulKernel::Sg8 => vec4_shapes(&plain) && (!spec.trans_a || spec.m.is_multiple_of(4)),
        MatmulKernel::Coop => {
            vec4_shapes(spec)
                && [spec.m, spec.n, spec.k]
                    .iter()
                    .all(|v| v.is_multiple_of(COOP_MULTIPLE))
        }
    }
}

/// The configuration planned for a product, except that products the
/// cooperative-matrix kernel cannot take (shapes, or f16 operands where the
/// adapter has f32 tiles only) go to the subgroup or vec4 kernel.
fn planned_for(ctx: &GpuContext, spec: &Matmul, half: bool) -> MatmulConfig {
    let planned = ctx.matmul_plan().for_rows(spec.m);
    let canonical = Matmul {
        trans_a: false,
        trans_b: false,
        ..*spec
    };
    // f32 operands reach the kernel transposed through the transposing copy;
    // f16 operands have none.
    let shape = if half { spec } else { &canonical };
    let coop_ok = ctx.coop_shape(half).is_some() && runs_directly(shape, MatmulKernel::Coop);
    if half && coop_ok && ctx.matmul_plan().f16_coop {
        return MatmulConfig::default_for(MatmulKernel::Coop);
    }
    if planned.kernel == MatmulKernel::Coop && !coop_ok {
        let register = if ctx.matmul_kernels().contains(&MatmulKernel::Sg8) {
            MatmulKernel::Sg8
        } else {
            MatmulKernel::Vec4
        };
        return MatmulConfig::default_for(register);
    }
    planned
}

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
    const OP: &str = "matmul";
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let a_member = m * k;
    let b_member = k * n;
    let c_member = m * n;
    // Members per dispatch: each operand's window must fit one binding.
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
    if chunk == 0 {
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
    let thin = m < THIN || n < THIN;
    let mut planned = planned_for(ctx, spec, half);
    if half && planned.kernel == MatmulKernel::Generic {
        planned = MatmulConfig::default_for(MatmulKernel::Vec4);
    }
    let config = if runs_directly(spec, planned.kernel) && !thin {
        planned
    } else if half {
        return Err(Error::invalid(format!(
            "f16 products need k and n multiples of 4, m and n >= {THIN}, and A and B \
             row-major unless the subgroup kernel runs them (it takes B transposed, and A \
             transposed when m is a multiple of 4); got {spec:?}"
        )));
    } else {
        MatmulConfig::default_for(MatmulKernel::Generic)
    };
    let kernel = config.kernel;
    let coop = ctx
        .coop_shape(half)
        .map(|shape| (shape, ctx.info.subgroup_sizes.1.max(1)));
    let (mut key, tile_rows, tile_cols) = if thin {
        thin_setup(m > n)
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
    // Workgroup x runs along the rows of C.
    let walk_m = if thin {
        m > n
    } else {
        kernel != MatmulKernel::Generic && config.walk_m
    };
    // The epilogue runs fused in the fast kernels, as separate passes after the generic one.
    let fused = if kernel == MatmulKernel::Generic {
        None
    } else {
        epi
    };
    if let Some(e) = fused {
        key.constants.push(("EPILOGUE", 1f64.to_bits()));
        let code = e.act.shader_code().0;
        key.constants.push(("ACT_CODE", f64::from(code).to_bits()));
    }
    if kernel == MatmulKernel::Sg8 && spec.trans_b {
        key.constants.push(("TRANS_B", 1f64.to_bits()));
    }
    if kernel == MatmulKernel::Sg8 && spec.trans_a {
        key.constants.push(("TRANS_A", 1f64.to_bits()));
    }
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
        let wa = if spec.broadcast_a {
            ctx.window_of(OP, 0, a_member, operand_bytes)?
        } else {
            ctx.window_of(OP, e0 * a_member, eb * a_member, operand_bytes)?
        };
        let wb = if spec.broadcast_b {
            ctx.window_of(OP, 0, b_member, operand_bytes)?
        } else {
            ctx.window_of(OP, e0 * b_member, eb * b_member, operand_bytes)?
        };
        let wc = ctx.window(OP, e0 * c_member, eb * c_member)?;
        let wbias = ctx.window(OP, e0 * n, eb * n)?;
        let (code, [pa, pb, pc]) = epi.map_or((0, [0.0; 3]), |e| e.act.shader_code());
        let params = MatmulParams {
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
                u32_of(OP, "m*k", a_member)?
            },
            b_bs: if spec.broadcast_b {
                0
            } else {
                u32_of(OP, "k*n", b_member)?
            },
            c_bs: u32_of(OP, "m*n", c_member)?,
            alpha: spec.alpha,
            beta: spec.beta,
            ..Default::default()
        };
        let views = [
            View {
                buffer: a,
                offset: wa.offset,
                size: wa.size,
            },
            View {
                buffer: b,
                offset: wb.offset,
                size: wb.size,
            },
            View {
                buffer: c,
                offset: wc.offset,
                size: wc.size,
            },
        ];
        let mut views = views.to_vec();
        if kernel != MatmulKernel::Generic {
            let (dr, dw) = ctx.dummies();
            match fused {
                Some(e) => {
                    views.push(View {
                        buffer: e.bias,
                        offset: wbias.offset,
                        size: wbias.size,
                    });
                    views.push(View {
                        buffer: e.h,
                        offset: wc.offset,
                        size: wc.size,
                    });
                }
                None => {
                    views.push(View {
                        buffer: dr,
                        offset: 0,
                        size: dr.size(),
                    });
                    views.push(View {
                        buffer: dw,
                        offset: 0,
                        size: dw.size(),
                    });
                }
            }
        }
        ctx.dispatch(&key, &params, &views, [groups_x, groups_y, eb as u32])?;
        e0 += eb;
    }
    if let (Some(e), None) = (epi, fused) {
        let shape = crate::backend::Batched::new(spec.batch, m, n);
        super::elementwise::bias_add(ctx, shape, c, e.bias, e.mult_b)?;
        super::elementwise::flat(
            ctx,
            super::elementwise::Flat::ActForward(e.act),
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
        slots: vec![read(1), write(3)],
        constants: vec![],
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
