//! Every kernel's parameter struct has a Rust twin that the host writes into
//! the uniform slot; this test reads each WGSL struct's size and member
//! offsets with naga's reflection and compares them with the Rust layout, so
//! that the two cannot drift apart.

use super::chaos::ChaosParams;
use super::context::Shader;
use super::elementwise::{EwParams, ReduceParams};
use super::hessian::TangentParams;
use super::layer_norm::NormParams;
use super::matmul::MatmulParams;
use super::ntk::NtkParams;
use super::optimizer::{LossParams, OptParams};
use super::sparse_features::DrawParams;
use wgpu::naga;

/// A struct's size and its named fields' byte offsets.
type Layout = (usize, Vec<(&'static str, usize)>);

/// `(size, [(field name, byte offset)])` of the named fields of a Rust struct.
macro_rules! offsets {
    ($t:ty; $($f:ident),*) => {
        (std::mem::size_of::<$t>(), vec![$((stringify!($f), std::mem::offset_of!($t, $f))),*])
    };
}

/// The size and member offsets of struct `name` in a WGSL source.
fn wgsl_layout(src: &str, name: &str) -> (usize, Vec<(String, usize)>) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name) {
            if let naga::TypeInner::Struct { members, span } = &ty.inner {
                let m = members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect();
                return (*span as usize, m);
            }
        }
    }
    panic!("struct {name} not found");
}

#[test]
fn uniform_structs_match_their_rust_twins() {
    let ntk = super::ntk::program_source(
        &crate::arch::Arch::parse("Dense(4), Relu, Dense(1)")
            .and_then(|a| a.kernel_program(2))
            .expect("program"),
    );
    let cases: Vec<(&str, String, Layout)> = vec![
        (
            "EwParams",
            Shader::Elementwise.source(),
            offsets!(EwParams; len, off0, off1, off_out, code, rows, cols, alpha, pa, pb, pc),
        ),
        (
            "ReduceParams",
            Shader::Reduce.source(),
            offsets!(ReduceParams; batch, rows, cols, off_x, off_out),
        ),
        (
            "NormParams",
            Shader::LayerNorm.source(),
            offsets!(NormParams; rows, cols, eps),
        ),
        (
            "TangentParams",
            Shader::Hessian.source(),
            offsets!(TangentParams; len, rows, cols, pa, pb, scale),
        ),
        (
            "MatmulParams",
            Shader::Matmul.source(),
            offsets!(MatmulParams; m, n, k, a_si, a_sp, b_sp, b_sj, a_off, b_off, c_off, a_bs, b_bs, c_bs, alpha, beta, bias_off, code, mult_b, pa, pb, pc),
        ),
        (
            "NtkParams",
            ntk,
            offsets!(NtkParams; rows, cols, flags, stride, cols_at),
        ),
        (
            "OptParams",
            Shader::Optimizer.source(),
            offsets!(OptParams; len, member_len, member0, shift, scale, mu, b1, b2, eps, bc1, bc2),
        ),
        (
            "ChaosParams",
            Shader::Chaos.source(),
            offsets!(ChaosParams; count, degree, terms, pa, pb, pc),
        ),
        (
            "LossParams",
            Shader::Loss.source(),
            offsets!(LossParams; members, rows, cols, kind, step),
        ),
        (
            "DrawParams",
            Shader::SparseFeatures.source(),
            offsets!(DrawParams; per, member0, off_x, seed, step),
        ),
    ];
    for (name, src, (size, fields)) in cases {
        let (wsize, members) = wgsl_layout(&src, name);
        assert_eq!(wsize, size, "{name}: WGSL size {wsize}, Rust size {size}");
        for (f, off) in &fields {
            let w = members
                .iter()
                .find(|(n, _)| n == f)
                .unwrap_or_else(|| panic!("{name}: WGSL has no member {f}"));
            assert_eq!(
                w.1, *off,
                "{name}.{f}: WGSL offset {}, Rust offset {off}",
                w.1
            );
        }
        // Every WGSL member that is not padding has a Rust twin.
        for (n, _) in &members {
            assert!(
                n.starts_with('_') || fields.iter().any(|(f, _)| f == n),
                "{name}: WGSL member {n} is not checked against Rust"
            );
        }
    }
}
