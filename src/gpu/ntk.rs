//! Host side of `shaders/ntk.wgsl`: the layer recursion of an architecture
//! for every entry of a kernel tile, from its Gram tile. The recursion is
//! generated as WGSL from the architecture's [`KernelProgram`] (one call of a
//! layer-update function of `ntk.wgsl` per layer, runs of identical layers
//! as loops), compiled once per architecture and cached.

use super::context::{GpuContext, PipelineKey, View, Window, read, slots, uniform, write};
use crate::activation::Activation;
use crate::arch::{KernelOp, KernelProgram, Parameterization};
use crate::backend::{DIAG_CAPACITY, KernelTile};
use crate::error::{Error, Result};
use crate::quadrature::GaussHermite;
use std::fmt::Write as _;

/// Rows per invocation (`ROWS` in the shader, written from here): 16 for
/// closed forms (fewer, longer workgroups: lavapipe pays per workgroup), one
/// where a quadrature activation makes each entry 14,400 evaluations long.
/// With 16 rows of quadrature entries per invocation, lavapipe (Mesa 22.3)
/// returned wrong values and zeros for the rows after the fourth; with one
/// row per invocation they match the f64 path to 1e-7.
fn rows_per_invocation(program: &KernelProgram) -> usize {
    let numeric = program
        .ops
        .iter()
        .any(|op| matches!(op, KernelOp::Activation { act, .. } if !act.has_closed_form()));
    if numeric { 1 } else { 16 }
}

/// Gauss-Hermite degree of the device's quadrature activations (tanh,
/// sigmoid): neural-tangents' degree 120, the same rule as the f64 path, so
/// that the two agree to f32 precision. Gauss-Hermite converges slowly for
/// tanh at large variance (its poles at i pi / 2 come close relative to the
/// Gaussian's width; tanh' = sech^2 narrows): at degree 48 the device's NTK
/// of a tanh layer was off by 3% at W_std 2, at 120 it matches the f64 path.
/// A quadrature layer costs 120^2 = 14,400 evaluations of the activation and
/// its derivative per kernel entry.
pub(crate) const DEVICE_GH_DEGREE: usize = crate::quadrature::DEFAULT_DEGREE;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct NtkParams {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) flags: u32,
    pub(crate) stride: u32,
    pub(crate) cols_at: u32,
    pub(crate) _pad: [u32; 3],
}

fn params(t: &KernelTile<'_>) -> NtkParams {
    let flags =
        u32::from(t.want.nngp) | (u32::from(t.want.ntk) << 1) | (u32::from(t.same_diag) << 3);
    NtkParams {
        rows: t.rows as u32,
        cols: t.cols as u32,
        flags,
        stride: t.table_stride() as u32,
        cols_at: t.table_cols_at() as u32,
        ..Default::default()
    }
}

/// A WGSL f32 literal of `v` that round-trips.
fn lit(v: f64) -> String {
    let s = format!("{:?}", v as f32);
    if s.contains(['.', 'e', 'E', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// The WGSL statement of one layer update, with `slot` the WGSL expression of
/// its variance slot and `depth` the nesting level of the residual block a
/// push opens or a pop closes.
fn op_source(op: &KernelOp, slot: &str, depth: usize) -> String {
    match *op {
        KernelOp::Dense { dense, fan_in } => {
            let w2 = lit(dense.w_std * dense.w_std);
            let b2 = lit(dense.b_std.map_or(0.0, |b| b * b));
            if dense.parameterization == Parameterization::Standard {
                let bias = if dense.has_bias() { "1.0" } else { "0.0" };
                format!(
                    "s = dense_standard(s, {w2}, {b2}, {}, {bias});",
                    lit(fan_in as f64)
                )
            } else {
                format!("s = dense_ntk(s, {w2}, {b2});")
            }
        }
        KernelOp::Activation { act, .. } => {
            let call = match act {
                Activation::AbRelu { a, b } => {
                    format!("act_abrelu(s, c1, c2, same, {}, {})", lit(a), lit(b))
                }
                Activation::Erf { a, b, c } => {
                    format!(
                        "act_erf(s, c1, c2, same, {}, {}, {})",
                        lit(a),
                        lit(b),
                        lit(c)
                    )
                }
                Activation::Gelu => "act_gelu(s, c1, c2, same)".into(),
                Activation::Sign => "act_sign(s, c1, c2, same)".into(),
                Activation::Identity => return String::new(),
                Activation::Tanh | Activation::Sigmoid => {
                    format!("act_numeric(s, c1, c2, same, {}u)", act.shader_code().0)
                }
            };
            format!(
                "{{ let c1 = row_var({slot}, i); let c2 = col_var({slot}, j0); \
                 s.q = select(s.q, vec4<f32>(c1), same); s = {call}; }}"
            )
        }
        KernelOp::LayerNorm { eps, .. } => {
            format!("s = layer_norm(s, {slot}, i, j0, same, {});", lit(eps))
        }
        KernelOp::Push => format!("{{ let saved{depth} = s;"),
        KernelOp::PopAdd => format!("s = State(s.q + saved{depth}.q, s.t + saved{depth}.t); }}"),
    }
}

fn slot_of(op: &KernelOp) -> Option<usize> {
    match *op {
        KernelOp::Activation { slot, .. } | KernelOp::LayerNorm { slot, .. } => Some(slot),
        _ => None,
    }
}

/// `b` is `a` with every slot moved by `shift`.
fn same_but_slots(a: &KernelOp, b: &KernelOp, shift: usize) -> bool {
    let strip = |op: &KernelOp| match *op {
        KernelOp::Activation { act, .. } => KernelOp::Activation { act, slot: 0 },
        KernelOp::LayerNorm { eps, .. } => KernelOp::LayerNorm { eps, slot: 0 },
        o => o,
    };
    strip(a) == strip(b)
        && match (slot_of(a), slot_of(b)) {
            (Some(x), Some(y)) => y == x + shift,
            (None, None) => true,
            _ => false,
        }
}

/// The longest run starting at `ops[0]` of a pattern of `p` operations
/// repeated, with balanced residual pushes: `(p, repeats)`.
fn best_run(ops: &[KernelOp]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for p in 1..=8.min(ops.len() / 3) {
        let pat = &ops[..p];
        let mut level = 0i64;
        let balanced = pat.iter().all(|op| {
            level += match op {
                KernelOp::Push => 1,
                KernelOp::PopAdd => -1,
                _ => 0,
            };
            level >= 0
        }) && level == 0;
        if !balanced {
            continue;
        }
        let per = pat.iter().filter(|o| slot_of(o).is_some()).count();
        let mut k = 1;
        while (k + 1) * p <= ops.len()
            && (0..p).all(|j| same_but_slots(&pat[j], &ops[k * p + j], k * per))
        {
            k += 1;
        }
        if k >= 3 && best.is_none_or(|(bp, bk)| p * k > bp * bk) {
            best = Some((p, k));
        }
    }
    best
}

/// The WGSL `fn recursion` of a program.
pub(crate) fn recursion_source(program: &KernelProgram) -> String {
    let mut out = String::from(
        "fn recursion(s0: State, i: u32, j0: u32, same: vec4<bool>) -> State {\n    var s = s0;\n",
    );
    let ops = &program.ops;
    let mut depth = 0usize;
    let mut k = 0;
    let mut loops = 0;
    while k < ops.len() {
        if let Some((p, reps)) = best_run(&ops[k..]) {
            let base = ops[k..k + p].iter().find_map(slot_of);
            let per = ops[k..k + p]
                .iter()
                .filter(|o| slot_of(o).is_some())
                .count();
            let var = format!("l{loops}");
            loops += 1;
            let _ = writeln!(out, "    for (var {var} = 0u; {var} < {reps}u; {var}++) {{");
            let mut off = 0;
            for op in &ops[k..k + p] {
                let slot = match (base, slot_of(op)) {
                    (Some(b), Some(_)) => {
                        let e = format!("({}u + {var} * {per}u)", b + off);
                        off += 1;
                        e
                    }
                    _ => "0u".into(),
                };
                if matches!(op, KernelOp::Push) {
                    depth += 1;
                }
                let _ = writeln!(out, "        {}", op_source(op, &slot, depth));
                if matches!(op, KernelOp::PopAdd) {
                    depth -= 1;
                }
            }
            out.push_str("    }\n");
            k += p * reps;
            continue;
        }
        let op = &ops[k];
        let slot = slot_of(op).map_or("0u".to_string(), |s| format!("{s}u"));
        if matches!(op, KernelOp::Push) {
            depth += 1;
        }
        let _ = writeln!(out, "    {}", op_source(op, &slot, depth));
        if matches!(op, KernelOp::PopAdd) {
            depth -= 1;
        }
        k += 1;
    }
    out.push_str("    return s;\n}\n");
    out
}

/// Values in the quadrature rule's uniform buffer: the nodes, then the
/// weights, as vec4s (binding 5 of `ntk.wgsl`).
pub(crate) const RULE_VALUES: usize = 2 * DEVICE_GH_DEGREE.next_multiple_of(4);

/// The rule's buffer contents (a large constant array in the shader source
/// itself miscompiled on lavapipe: entries came out wrong or zero).
pub(crate) fn rule_values() -> Vec<f32> {
    let r = GaussHermite::cached(DEVICE_GH_DEGREE);
    let mut v = vec![0.0f32; RULE_VALUES];
    let half = RULE_VALUES / 2;
    for (i, (&x, &w)) in r.nodes.iter().zip(&r.weights).enumerate() {
        v[i] = x as f32;
        v[half + i] = w as f32;
    }
    v
}

/// The degree and layout constants of the quadrature rule.
fn quadrature_source() -> String {
    format!(
        "const GH_DEG: u32 = {}u;\nconst GH_VEC4: u32 = {}u;\n",
        DEVICE_GH_DEGREE,
        RULE_VALUES / 4
    )
}

/// The whole WGSL module of a program's tile kernel, with the constants it
/// shares with the host written from their Rust source.
pub(crate) fn program_source(program: &KernelProgram) -> String {
    format!(
        "const ROWS: u32 = {}u;\nconst DIAG_VEC4: u32 = {}u;\n{}\n{}\n{}\n{}",
        rows_per_invocation(program),
        DIAG_CAPACITY / 4,
        super::context::activation_wgsl(),
        quadrature_source(),
        include_str!("../../shaders/ntk.wgsl"),
        recursion_source(program)
    )
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
    t: &KernelTile<'_>,
    gram: &wgpu::Buffer,
    diag: &wgpu::Buffer,
    rule: &wgpu::Buffer,
    nngp: &wgpu::Buffer,
    ntk: &wgpu::Buffer,
) -> Result<()> {
    let n = t.rows * t.cols;
    let shader = ctx.register_generated(program_source(t.program));
    let key = PipelineKey {
        shader,
        entry: "ntk_tile",
        slots: slots![read(1), uniform(2), write(3), write(4), uniform(5)],
        constants: super::context::Constants::NONE,
    };
    let whole = |len| ctx.window("kernel_tile", 0, len);
    let views = [
        view(gram, whole(n)?),
        table(diag)?,
        view(nngp, whole(n)?),
        view(ntk, whole(n)?),
        View {
            buffer: rule,
            offset: 0,
            size: (RULE_VALUES * 4) as u64,
        },
    ];
    let groups = [
        dim((t.cols / 4).div_ceil(64), "columns")?,
        dim(t.rows.div_ceil(rows_per_invocation(t.program)), "rows")?,
        1,
    ];
    ctx.dispatch(&key, &params(t), &views, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, Mlp};

    #[test]
    fn deep_networks_become_loops() {
        let arch = Arch::mlp(&Mlp {
            depth: 50,
            ..Mlp::default()
        });
        let p = arch.kernel_program(5).unwrap();
        let src = recursion_source(&p);
        // The first Dense reads the inputs (another fan-in): the loop covers
        // (activation, Dense) 49 times, then the last pair.
        assert!(src.contains("for (var l0 = 0u; l0 < 49u; l0++)"), "{src}");
        assert!(src.lines().count() < 12, "{src}");
        let res = Arch::parse(
            "Dense(8), 4*(Residual(Relu, Dense(8), Relu, Dense(8))), LayerNorm, Relu, Dense(1)",
        )
        .unwrap();
        let src = recursion_source(&res.kernel_program(3).unwrap());
        assert!(src.contains("< 4u"), "{src}");
        assert!(src.contains("(1u + l0 * 2u)"), "{src}");
        assert!(src.contains("saved1"), "{src}");
    }

    #[test]
    fn generated_kernels_compile_to_spirv() {
        for spec in [
            "Dense(8), Relu, Dense(1)",
            "Dense(8, W_std=1.5, b_std=0.1, parameterization=standard), Erf, Dense(3, parameterization=standard), Gelu, Dense(1)",
            "Dense(8), Residual(Relu, Dense(8), Residual(Tanh, Dense(8))), LayerNorm, Sigmoid, Dense(8), Sign, Dense(1)",
        ] {
            let p = Arch::parse(spec).unwrap().kernel_program(4).unwrap();
            let src = program_source(&p);
            crate::gpu::context::tests::spirv(&src, &[]).unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    }
}
