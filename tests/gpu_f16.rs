//! The f16-storage matrix product (f32 sums) against f64 products of the same
//! f16-rounded operands, on every configuration that runs it.

mod common;

use common::{gpu, gpu_with_config, poisoned, randn, rel_err, wide};
use widenet::backend::{Backend, Matmul};
use widenet::cpu::ops;
use widenet::gpu::{MatmulKernel, tune};

/// Relative Frobenius error allowed against f64 (the bar for every
/// tuned variant); only f32 summation separates the two.
const TOL: f64 = 1e-4;

fn rounded(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f64()).collect()
}

#[test]
fn f16_products_match_f64_on_every_configuration() {
    let Some(g0) = gpu() else { return };
    if !g0.has_f16() {
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
            let a = randn(seed, spec.a_len());
            let b = randn(seed + 1, spec.b_len());
            let c0 = randn(seed + 2, spec.c_len());
            let mut want = wide(&c0);
            ops::matmul(&spec, &rounded(&a), &rounded(&b), &mut want);
            let mut gc = if spec.beta == 0.0 {
                poisoned(&g, spec.c_len())
            } else {
                g.upload(&c0).unwrap()
            };
            let (ga, gb) = (g.upload_f16(&a).unwrap(), g.upload_f16(&b).unwrap());
            let result = g.matmul_f16(&spec, &ga, &gb, &mut gc);
            if c.kernel == MatmulKernel::Generic && spec.trans_b {
                continue;
            }
            result.unwrap();
            let err = rel_err(&g.read(&gc).unwrap(), &want);
            assert!(err < TOL, "{c:?} {spec:?}: {err:e}");
            // The rounding is real: the f32 product differs by far more.
            let mut exact = wide(&c0);
            ops::matmul(&spec, &wide(&a), &wide(&b), &mut exact);
            assert!(rel_err(&g.read(&gc).unwrap(), &exact) > 1e-5, "{spec:?}");
        }
        configs += 1;
    }
    assert!(configs >= 2);
}

#[test]
fn f16_refuses_what_it_cannot_do() {
    let Some(g0) = gpu() else { return };
    if !g0.has_f16() {
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
