//! The f16-storage matrix product (f32 sums) against f64 products of the same
//! f16-rounded operands, on every configuration that runs it.

mod common;

use common::{gpu, gpu_with_config, randn};
use widenet::backend::{Backend, Matmul};
use widenet::gpu::{MatmulKernel, tune};

/// Relative Frobenius error allowed against f64 (the bar for every
/// tuned variant); only f32 summation separates the two.
const TOL: f64 = 1e-4;

#[test]
fn f16_products_match_f64_on_every_configuration() {
    let Some(g0) = gpu() else { return };
    let name = "f16_products_match_f64_on_every_configuration";
    if !common::has_feature(name, "f16", g0.has_f16()) {
        return;
    }
    let mut configs = 0;
    for c in tune::candidates(&g0) {
        let Some(g) = gpu_with_config(c) else {
            panic!("{c:?}")
        };
        let mut seed = 50;
        let mut shapes = vec![
            Matmul::new(4, 4, 4),
            Matmul::new(33, 36, 36),
            Matmul::new(260, 132, 68),
            Matmul::new(19, 40, 24).batch(3).broadcast(true, false),
            Matmul::new(19, 40, 24).batch(2).scaled(0.5, -1.5),
        ];
        if c.kernel == MatmulKernel::Sg8 {
            shapes.push(Matmul::new(130, 40, 64).trans(false, true));
            shapes.push(
                Matmul::new(19, 8, 12)
                    .batch(3)
                    .trans(false, true)
                    .broadcast(false, true),
            );
            shapes.push(Matmul::new(132, 40, 64).trans(true, false));
            shapes.push(
                Matmul::new(20, 8, 12)
                    .batch(3)
                    .trans(true, true)
                    .broadcast(true, false),
            );
        }
        for spec in shapes {
            seed += 3;
            let result = common::matmul_f16_errors(&g, spec, seed);
            if c.kernel == MatmulKernel::Generic && spec.trans_b {
                continue;
            }
            let (err, err_exact) = result.unwrap();
            assert!(err < TOL, "{c:?} {spec:?}: {err:e}");
            // The rounding is real: the f32 product differs by far more.
            assert!(err_exact > 1e-5, "{spec:?}");
        }
        configs += 1;
    }
    assert!(configs >= 2);
}

#[test]
fn f16_refuses_what_it_cannot_do() {
    let Some(g0) = gpu() else { return };
    if !common::has_feature("f16_refuses_what_it_cannot_do", "f16", g0.has_f16()) {
        return;
    }
    // The vec4 kernel takes row-major operands only.
    let Some(g) = gpu_with_config(widenet::gpu::MatmulConfig::default_for(MatmulKernel::Vec4))
    else {
        panic!("vec4")
    };
    let check = |spec: Matmul, want: &str| {
        let a = g.upload_f16(&randn(1, spec.a_len())).unwrap();
        let b = g.upload_f16(&randn(2, spec.b_len())).unwrap();
        let mut c = g.zeros(spec.c_len()).unwrap();
        let err = g.matmul_f16(&spec, &a, &b, &mut c).unwrap_err().to_string();
        assert!(err.contains(want), "{spec:?}: {err}");
    };
    check(Matmul::new(2, 8, 8), "f16 products need");
    check(Matmul::new(8, 8, 6), "f16 products need");
    check(Matmul::new(8, 8, 8).trans(true, false), "f16 products need");
    // Wrong lengths.
    let a = g.upload_f16(&randn(1, 10)).unwrap();
    let mut c = g.zeros(64).unwrap();
    assert!(g.matmul_f16(&Matmul::new(8, 8, 8), &a, &a, &mut c).is_err());
    // Beyond f16's range.
    let err = g.upload_f16(&[1.0, 7e4]).err().unwrap().to_string();
    assert!(
        err.contains("does not fit in f16") && err.contains("index 1"),
        "{err}"
    );
}
