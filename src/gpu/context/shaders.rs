//! The WGSL source of each kernel family, assembled from `shaders/` (shared
//! pieces prepended), and the host-side check that every family compiles.

/// A WGSL kernel family, one file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Matmul,
    MatmulVec4,
    MatmulSg8,
    /// `matmul_vec4.wgsl` and `matmul_sg8.wgsl` reading f16 operands.
    MatmulVec4F16,
    MatmulSg8F16,
    /// `matmul_coop.wgsl` on cooperative-matrix tiles of one shape.
    MatmulCoop(crate::backend::CoopShape),
    Elementwise,
    Reduce,
    Loss,
    Optimizer,
    /// `layer_norm.wgsl`.
    LayerNorm,
    /// `chaos.wgsl` (signal-propagation theory).
    Chaos,
    /// `hessian.wgsl`: the Hessian-vector product's tangent kernels and the
    /// spectra's per-member dot products.
    Hessian,
    /// `sparse_features.wgsl`.
    SparseFeatures,
    /// Generated source (the kernel recursion of one architecture, built on
    /// `ntk.wgsl`), registered with the context under this id.
    Generated(u64),
}

const ACTIVATION_BODY: &str = include_str!("../../../shaders/activation.wgsl");

/// `activation.wgsl` with the activation codes it switches on, written from
/// their one source (`crate::activation::code`).
pub(crate) fn activation_wgsl() -> String {
    use crate::activation::code::*;
    let consts: String = [
        ("IDENTITY", IDENTITY),
        ("ABRELU", ABRELU),
        ("ERF", ERF),
        ("TANH", TANH),
        ("GELU", GELU),
        ("SIGN", SIGN),
        ("SIGMOID", SIGMOID),
    ]
    .iter()
    .map(|(n, v)| format!("const ACT_{n}: u32 = {v}u;\n"))
    .collect();
    format!("{consts}{ACTIVATION_BODY}")
}
const MATMUL_PARAMS_WGSL: &str = include_str!("../../../shaders/matmul_params.wgsl");

impl Shader {
    pub(crate) fn source(self) -> String {
        let activation = activation_wgsl();
        match self {
            Shader::Matmul => format!(
                "{MATMUL_PARAMS_WGSL}\n{}",
                include_str!("../../../shaders/matmul.wgsl")
            ),
            Shader::MatmulVec4
            | Shader::MatmulSg8
            | Shader::MatmulVec4F16
            | Shader::MatmulSg8F16 => {
                // The operands' element type; `enable` must open the module.
                let operand = match self {
                    Shader::MatmulVec4F16 | Shader::MatmulSg8F16 => {
                        "enable f16;\nalias Operand4 = vec4<f16>;"
                    }
                    _ => "alias Operand4 = vec4<f32>;",
                };
                let body = match self {
                    Shader::MatmulVec4 | Shader::MatmulVec4F16 => {
                        include_str!("../../../shaders/matmul_vec4.wgsl")
                    }
                    _ => include_str!("../../../shaders/matmul_sg8.wgsl"),
                };
                format!("{operand}\n{activation}\n{MATMUL_PARAMS_WGSL}\n{body}")
            }
            Shader::MatmulCoop(c) => {
                let t = c.side;
                let (enable, operand) = if c.f16 {
                    ("enable f16;\n", "f16")
                } else {
                    ("", "f32")
                };
                format!(
                    "{enable}enable wgpu_cooperative_matrix;\n\
                     alias Operand = {operand};\n\
                     alias TileA = coop_mat{t}x{t}<Operand, A>;\n\
                     alias TileB = coop_mat{t}x{t}<Operand, B>;\n\
                     alias TileC = coop_mat{t}x{t}<f32, C>;\n\
                     const T: u32 = {t}u;\n\
                     {activation}\n{MATMUL_PARAMS_WGSL}\n{}",
                    include_str!("../../../shaders/matmul_coop.wgsl")
                )
            }
            Shader::Elementwise => format!(
                "{activation}\n{}",
                include_str!("../../../shaders/elementwise.wgsl")
            ),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl").to_string(),
            Shader::Loss => include_str!("../../../shaders/loss.wgsl").to_string(),
            Shader::Optimizer => include_str!("../../../shaders/optimizer.wgsl").to_string(),
            Shader::LayerNorm => include_str!("../../../shaders/layer_norm.wgsl").to_string(),
            Shader::Chaos => format!(
                "{activation}\n{}",
                include_str!("../../../shaders/chaos.wgsl")
            ),
            Shader::Hessian => format!(
                "{activation}\n{}",
                include_str!("../../../shaders/hessian.wgsl")
            ),
            Shader::SparseFeatures => {
                include_str!("../../../shaders/sparse_features.wgsl").to_string()
            }
            // Registered with the context; see `GpuContext::module`.
            Shader::Generated(_) => String::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Every kernel family through naga on the host, as wgpu compiles it for
    //! Vulkan: parsed, validated and written as SPIR-V. This runs without an
    //! adapter, so it also covers the kernels that only some adapters run (the
    //! cooperative-matrix tiles, f16 operands).
    use super::Shader;
    use crate::backend::CoopShape;
    use wgpu::naga;

    fn all_shaders() -> Vec<Shader> {
        let mut v = vec![
            Shader::Matmul,
            Shader::MatmulVec4,
            Shader::MatmulSg8,
            Shader::MatmulVec4F16,
            Shader::MatmulSg8F16,
            Shader::Elementwise,
            Shader::Reduce,
            Shader::Loss,
            Shader::Optimizer,
            Shader::LayerNorm,
            Shader::Chaos,
            Shader::Hessian,
            Shader::SparseFeatures,
        ];
        for side in [8, 16] {
            for f16 in [false, true] {
                v.push(Shader::MatmulCoop(CoopShape { side, f16 }));
            }
        }
        v
    }

    /// A WGSL module through naga as wgpu compiles it for Vulkan: parsed,
    /// validated, constants applied, written as SPIR-V.
    pub(crate) fn spirv(src: &str, constants: &[(&str, f64)]) -> Result<Vec<u32>, String> {
        let shader = "module";
        let module = naga::front::wgsl::parse_str(src)
            .map_err(|e| format!("{shader:?}: {}", e.emit_to_string(src)))?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| format!("{shader:?}: {}", e.emit_to_string(src)))?;
        let constants = constants
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect::<naga::back::PipelineConstants>();
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .map_err(|e| format!("{shader:?}: overrides: {e}"))?;
        let options = naga::back::spv::Options {
            lang_version: (1, 6),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &options, None)
            .map_err(|e| format!("{shader:?}: SPIR-V: {e}"))
    }

    #[test]
    fn every_kernel_family_compiles_to_spirv() {
        for shader in all_shaders() {
            let words = spirv(&shader.source(), &[]).unwrap_or_else(|e| panic!("{shader:?}: {e}"));
            // The SPIR-V magic number opens a real module.
            assert_eq!(words.first(), Some(&0x0723_0203), "{shader:?}");
            assert!(words.len() > 100, "{shader:?}: {} words", words.len());
        }
    }

    #[test]
    fn cooperative_kernel_uses_cooperative_matrices_in_spirv() {
        // OpTypeCooperativeMatrixKHR (4456), OpCooperativeMatrixLoadKHR
        // (4457), ...StoreKHR (4458) and ...MulAddKHR (4459) must appear: the
        // tiles are not emulated in the shader.
        let shape = CoopShape {
            side: 16,
            f16: true,
        };
        let words = spirv(
            &Shader::MatmulCoop(shape).source(),
            &[("WG", 32.0), ("WALK_M", 0.0), ("EPILOGUE", 1.0)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut ops = std::collections::HashSet::new();
        let mut i = 5;
        while i < words.len() {
            let (count, op) = (words[i] >> 16, words[i] & 0xffff);
            ops.insert(op);
            i += (count as usize).max(1);
        }
        for op in [4456, 4457, 4458, 4459] {
            assert!(ops.contains(&op), "SPIR-V opcode {op} missing");
        }
    }

    #[test]
    fn cooperative_source_declares_the_tiles_it_is_asked_for() {
        let src = Shader::MatmulCoop(CoopShape {
            side: 8,
            f16: false,
        })
        .source();
        assert!(src.contains("coop_mat8x8<Operand, A>"), "{src}");
        assert!(src.contains("alias Operand = f32;"));
        assert!(!src.contains("enable f16;"));
    }
}
