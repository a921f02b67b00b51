//! Differential tests of the training kernels (losses, divergence marks,
//! optimizer updates, row gathers) against their CPU twins in f64.

mod common;

use common::{gpu, gpu_with_kernel, poisoned, randn, rel_err, wide};
use widenet::backend::{Backend, Batched, Loss, Rule, Update, index_bits};
use widenet::cpu::ops;
use widenet::gpu::MatmulKernel;

const TOL: f64 = 1e-5;

#[test]
fn losses_and_gradients() {
    let Some(g) = gpu() else { return };
    for &(e, n, c) in &[(1usize, 1usize, 1usize), (3, 17, 1), (2, 33, 5), (4, 8, 10)] {
        let s = Batched::new(e, n, c);
        let f = randn(e as u64, s.len());
        let mut y = randn(9, n * c);
        for loss in [Loss::Mse, Loss::Xent] {
            if loss == Loss::Xent {
                // Rows of probabilities.
                for r in 0..n {
                    let row = &mut y[r * c..(r + 1) * c];
                    let z: f32 = row.iter().map(|v| v.exp()).sum();
                    row.iter_mut().for_each(|v| *v = v.exp() / z);
                }
            }
            let (mut wdf, mut wrows) = (vec![0.0; s.len()], vec![0.0; e * n]);
            ops::loss_grad(loss, s, &wide(&f), &wide(&y), &mut wdf, &mut wrows);
            let (mut df, mut rows) = (poisoned(g.as_ref(), s.len()), poisoned(g.as_ref(), e * n));
            g.loss_grad(
                loss,
                s,
                &g.upload(&f).unwrap(),
                &g.upload(&y).unwrap(),
                &mut df,
                &mut rows,
            )
            .unwrap();
            assert!(
                rel_err(&g.read(&df).unwrap(), &wdf) < TOL,
                "{loss:?} {s:?} grad"
            );
            assert!(
                rel_err(&g.read(&rows).unwrap(), &wrows) < TOL,
                "{loss:?} {s:?} rows"
            );
        }
    }
}

#[test]
fn divergence_marks() {
    let Some(g) = gpu() else { return };
    let loss = g
        .upload(&[1.0, f32::NAN, f32::INFINITY, 2.0, f32::NEG_INFINITY])
        .unwrap();
    let mut alive = g.upload(&[1.0, 1.0, 1.0, 1.0, 0.0]).unwrap();
    let mut at = g.upload(&[-1.0; 5]).unwrap();
    g.mark_diverged(7, &loss, &mut alive, &mut at).unwrap();
    assert_eq!(g.read(&alive).unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(g.read(&at).unwrap(), vec![-1.0, 7.0, 7.0, -1.0, -1.0]);
}

fn check_updates(g: &dyn Backend, per: usize) {
    let members = 5usize;
    let n = members * per;
    let lr = [0.1f32, 0.0, 0.3, 1e-3, 0.2];
    let alive = [1.0f32, 1.0, 0.0, 1.0, 1.0];
    for rule in [
        Rule::Sgd,
        Rule::Momentum { mu: 0.9 },
        Rule::Adam {
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
        },
    ] {
        let mut p64 = wide(&randn(1, n));
        let mut m64 = vec![0.0; n];
        let mut v64 = vec![0.0; n];
        let mut p = g.upload(&randn(1, n)).unwrap();
        let mut m = g.zeros(n).unwrap();
        let mut v = g.zeros(n).unwrap();
        let (glr, galive) = (g.upload(&lr).unwrap(), g.upload(&alive).unwrap());
        for step in 1..=4u32 {
            let grad = randn(10 + step as u64, n);
            let up = Update {
                rule,
                scale: 0.5,
                step,
            };
            let (mo, vo) = match rule {
                Rule::Sgd => (None, None),
                Rule::Momentum { .. } => (Some(&mut m64[..]), None),
                Rule::Adam { .. } => (Some(&mut m64[..]), Some(&mut v64[..])),
            };
            ops::update(
                &up,
                per,
                &wide(&grad),
                &wide(&lr),
                &wide(&alive),
                &mut p64,
                mo,
                vo,
            );
            let gg = g.upload(&grad).unwrap();
            let (mo, vo) = match rule {
                Rule::Sgd => (None, None),
                Rule::Momentum { .. } => (Some(&mut m), None),
                Rule::Adam { .. } => (Some(&mut m), Some(&mut v)),
            };
            g.update(&up, per, &gg, &glr, &galive, &mut p, mo, vo)
                .unwrap();
        }
        let got = g.read(&p).unwrap();
        assert!(rel_err(&got, &p64) < TOL, "{rule:?}");
        // Frozen member 2 and zero-lr member 1 did not move.
        let init = randn(1, n);
        assert_eq!(
            &got[2 * per..3 * per],
            &init[2 * per..3 * per],
            "{rule:?}: frozen member moved"
        );
        assert_eq!(
            &got[per..2 * per],
            &init[per..2 * per],
            "{rule:?}: zero-lr member moved"
        );
    }
}

#[test]
fn optimizer_updates() {
    let Some(g) = gpu() else { return };
    // Members of 37 values run the scalar kernels, of 40 the vec4 ones.
    for per in [37, 40] {
        check_updates(g.as_ref(), per);
        check_updates(&widenet::cpu::CpuBackend, per);
    }
    // More values than one dispatch has invocations (the kernels loop).
    check_updates(g.as_ref(), 70_001);
    check_updates(g.as_ref(), 70_000);
    // Windows of whole members when a tensor exceeds a binding.
    if let Some(small) = gpu_with_kernel(MatmulKernel::Generic) {
        widenet::testing::cap_binding_size(&small, 512).unwrap();
        check_updates(&small, 37);
        check_updates(&small, 36);
    }
}

#[test]
fn gather_rows_by_index() {
    let Some(g) = gpu() else { return };
    let src = randn(3, 11 * 7);
    let idx = [10u32, 0, 3, 3, 9];
    let mut want = vec![0.0; idx.len() * 7];
    ops::gather_rows(&wide(&src), 7, &idx, &mut want);
    let mut dst = poisoned(g.as_ref(), idx.len() * 7);
    g.gather_rows(
        &g.upload(&src).unwrap(),
        7,
        &g.upload(&index_bits(&idx)).unwrap(),
        &mut dst,
    )
    .unwrap();
    assert_eq!(wide(&g.read(&dst).unwrap()), want);
}
