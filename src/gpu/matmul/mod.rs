//! Host wrapper of `shaders/matmul.wgsl`: the batched product and the batched
//! transpose it uses to give the kernel a row-major B.

use super::context::{Constants, GpuContext, PipelineKey, Shader, read, slots, write};
use crate::backend::CoopShape;
use crate::backend::Matmul;
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulParams {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) _pad0: u32,
    pub(crate) a_si: u32,
    pub(crate) a_sp: u32,
    pub(crate) b_sp: u32,
    pub(crate) b_sj: u32,
    pub(crate) a_off: u32,
    pub(crate) b_off: u32,
    pub(crate) c_off: u32,
    pub(crate) _pad1: u32,
    pub(crate) a_bs: u32,
    pub(crate) b_bs: u32,
    pub(crate) c_bs: u32,
    pub(crate) _pad2: u32,
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
    pub(crate) bias_off: u32,
    pub(crate) _pad4: u32,
    pub(crate) code: u32,
    pub(crate) mult_b: f32,
    pub(crate) pa: f32,
    pub(crate) pb: f32,
    pub(crate) pc: f32,
    pub(crate) _pad5: [u32; 3],
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
    /// The kernel.
    pub kernel: MatmulKernel,
    /// Rows of invocations (subgroups) per workgroup.
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
                slots: slots![read(1), read(2), write(3), read(4), write(5)],
                constants: Constants::of(&[
                    ("WG", f64::from(lanes)),
                    ("WALK_M", f64::from(u8::from(self.walk_m))),
                ]),
            };
            return Ok((key, side, side));
        }
        // The fast kernels declare the epilogue's bindings 4 and 5 (bound to
        // dummies when it is off).
        let slots = match self.kernel {
            MatmulKernel::Generic => slots![read(1), read(2), write(3)],
            _ => slots![read(1), read(2), write(3), read(4), write(5)],
        };
        let wg = self.wg_y as usize;
        let (shader, entry, rows, cols) = match self.kernel {
            MatmulKernel::Generic => (Shader::Matmul, "matmul", 32, 32),
            MatmulKernel::Vec4 => (Shader::MatmulVec4, "matmul_vec4", 8 * wg, 64),
            _ => (Shader::MatmulSg8, "matmul_sg8", 32 * wg, 32),
        };
        let constants = match self.kernel {
            MatmulKernel::Generic => Constants::NONE,
            _ => Constants::of(&[
                ("WG_Y", f64::from(self.wg_y)),
                ("WALK_M", f64::from(u8::from(self.walk_m))),
            ]),
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
pub(super) const THIN: usize = 4;

/// `matmul_thin`'s pipeline and the (rows, columns) of C one workgroup covers:
/// 64 invocations along the longer side of C.
pub(super) fn thin_setup(lanes_on_rows: bool) -> (PipelineKey, usize, usize) {
    let key = PipelineKey {
        shader: Shader::Matmul,
        entry: "matmul_thin",
        slots: slots![read(1), read(2), write(3)],
        constants: Constants::of(&[("LANES_ON_ROWS", f64::from(u8::from(lanes_on_rows)))]),
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
    /// Products of at least `SMALL_M` rows.
    pub large: MatmulConfig,
    /// Products of fewer rows.
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
pub(super) fn runs_directly(spec: &Matmul, kernel: MatmulKernel) -> bool {
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
pub(super) fn planned_for(ctx: &GpuContext, spec: &Matmul, half: bool) -> MatmulConfig {
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

mod launch;

pub(crate) use launch::{matmul, matmul_f16};
