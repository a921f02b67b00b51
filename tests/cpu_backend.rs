//! The CPU backend's f32 kernels against the f64 reference twins
//! (`widenet::cpu::ops`), as the GPU backend is checked: every product form
//! (batched, transposed, broadcast, alpha and beta, shapes of 1 and primes,
//! sizes on both sides of the thresholds where work is spread over threads),
//! the fused dense layer, elementwise work, reductions, LayerNorm, losses,
//! updates, gathers, and the kernel recursion of every layer kind. Outputs
//! are poisoned with NaN first. Tolerance: relative Frobenius error 1e-5, as
//! for the GPU (f32 sums of at most a few thousand terms stay near 1e-6).

mod common;

use common::{poisoned, randn, rel_err, wide};
use widenet::Activation;
use widenet::backend::{Backend, Batched, Loss, Matmul, index_bits};
use widenet::cpu::{CpuBackend, ops, products};
use widenet::kernel::{Want, kernels_device, kernels_f64};

const TOL: f64 = 1e-5;

fn check_matmul(spec: Matmul, seed: u64) {
    let err = common::matmul_error(&CpuBackend, spec, seed);
    assert!(err < TOL, "{spec:?}: relative error {err}");
}

#[test]
fn matmul_every_form_and_odd_shapes() {
    let mut seed = 10;
    for &m in &[1usize, 7, 33] {
        for &n in &[1usize, 8, 31] {
            for &k in &[0usize, 1, 5, 37] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    seed += 3;
                    let spec = Matmul::new(m, n, k)
                        .trans(ta, tb)
                        .batch(1 + (seed as usize % 3));
                    check_matmul(spec, seed);
                }
            }
        }
    }
}

#[test]
fn matmul_batched_broadcast_alpha_beta_large_and_small() {
    // (batch, m, n, k): below and above the size where members run on
    // threads of their own, fewer and more members than threads.
    for (i, &(batch, m, n, k)) in [
        (1usize, 19usize, 40usize, 23usize),
        (5, 19, 40, 23),
        (1, 130, 257, 64),
        (2, 96, 128, 65),
        (7, 64, 96, 48),
        (3, 1, 200, 300),
    ]
    .iter()
    .enumerate()
    {
        for (ba, bb) in [(false, false), (true, false), (false, true)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (alpha, beta) in [(0.5, 1.5), (-2.0, 0.0), (1.0, 1.0), (0.0, 0.5)] {
                    let spec = Matmul::new(m, n, k)
                        .batch(batch)
                        .broadcast(ba, bb)
                        .trans(ta, tb)
                        .scaled(alpha, beta);
                    check_matmul(spec, 300 + i as u64);
                }
            }
        }
    }
}

#[test]
fn f64_products_match_the_reference_to_rounding() {
    let spec = Matmul::new(37, 61, 129)
        .batch(3)
        .trans(true, false)
        .broadcast(false, true)
        .scaled(0.75, -0.5);
    let a = wide(&randn(1, spec.a_len()));
    let b = wide(&randn(2, spec.b_len()));
    let c0 = wide(&randn(3, spec.c_len()));
    let (mut want, mut got) = (c0.clone(), c0);
    ops::matmul(&spec, &a, &b, &mut want);
    products::matmul(&spec, &a, &b, &mut got);
    let num: f64 = got.iter().zip(&want).map(|(g, w)| (g - w).powi(2)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    assert!((num / den).sqrt() < 1e-13, "{}", (num / den).sqrt());
}

fn activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::RELU,
        Activation::AbRelu { a: -0.5, b: 2.0 },
        Activation::Erf {
            a: 1.7,
            b: 0.6,
            c: -0.3,
        },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Sign,
    ]
}

#[test]
fn fused_dense_forward() {
    for act in activations() {
        for spec in [
            Matmul::new(9, 17, 5).batch(3).trans(false, true),
            Matmul::new(64, 96, 80)
                .batch(4)
                .trans(false, true)
                .broadcast(true, false)
                .scaled(0.3, 0.0),
            Matmul::new(130, 70, 33).scaled(-1.5, 0.0),
        ] {
            let (ez, eh) = common::dense_forward_errors(&CpuBackend, spec, act);
            assert!(ez < TOL && eh < TOL, "{act} {spec:?}: z {ez}, h {eh}");
        }
    }
}

#[test]
fn activations_forward_and_backward() {
    let g = CpuBackend;
    for &n in &[1usize, 7, 1000, 100_003] {
        let mut x = randn(n as u64, n);
        x[0] = 0.0;
        if n > 3 {
            x[1] = 1e-5;
            x[2] = -9.0;
            x[3] = 20.0;
        }
        let dy = randn(7 + n as u64, n);
        let (gx, gdy) = (g.upload(&x).unwrap(), g.upload(&dy).unwrap());
        for act in activations() {
            let mut want = vec![0.0; n];
            ops::activation(act, &wide(&x), &mut want);
            let mut gy = poisoned(&g, n);
            g.activation(act, &gx, &mut gy).unwrap();
            let err = rel_err(&g.read(&gy).unwrap(), &want);
            assert!(err < TOL, "{act} forward n={n}: {err}");

            let mut want = vec![0.0; n];
            ops::activation_grad(act, &wide(&x), &wide(&dy), &mut want);
            let mut gdx = poisoned(&g, n);
            g.activation_grad(act, &gx, &gdy, &mut gdx).unwrap();
            let err = rel_err(&g.read(&gdx).unwrap(), &want);
            assert!(err < TOL, "{act} backward n={n}: {err}");
        }
    }
}

#[test]
fn bias_add_reductions_and_elementwise() {
    let g = CpuBackend;
    for &(batch, rows, cols) in &[
        (1usize, 1usize, 1usize),
        (3, 7, 33),
        (16, 64, 100),
        (2, 40_000, 1),
    ] {
        let s = Batched::new(batch, rows, cols);
        let x = randn(batch as u64 * 31 + rows as u64, s.len());
        let y = randn(5, s.len());
        let bias = randn(99, batch * cols);
        let mut want = wide(&x);
        ops::bias_add(s, &mut want, &wide(&bias), -0.5);
        let mut gy = g.upload(&x).unwrap();
        g.bias_add(s, &mut gy, &g.upload(&bias).unwrap(), -0.5)
            .unwrap();
        assert!(
            rel_err(&g.read(&gy).unwrap(), &want) < TOL,
            "bias_add {s:?}"
        );

        let gx = g.upload(&x).unwrap();
        let mut want = vec![0.0; batch * cols];
        ops::sum_cols(s, &wide(&x), &mut want);
        let mut go = poisoned(&g, batch * cols);
        g.sum_cols(s, &gx, &mut go).unwrap();
        assert!(
            rel_err(&g.read(&go).unwrap(), &want) < TOL,
            "sum_cols {s:?}"
        );

        let mut want = vec![0.0; batch * rows];
        ops::sum_rows(s, &wide(&x), &mut want);
        let mut go = poisoned(&g, batch * rows);
        g.sum_rows(s, &gx, &mut go).unwrap();
        assert!(
            rel_err(&g.read(&go).unwrap(), &want) < TOL,
            "sum_rows {s:?}"
        );

        let gyy = g.upload(&y).unwrap();
        let mut want = wide(&x);
        ops::scale(&mut want, -0.75);
        let mut t = g.upload(&x).unwrap();
        g.scale(&mut t, -0.75).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "scale {s:?}");
        let mut want = wide(&y);
        ops::axpy(0.3, &wide(&x), &mut want);
        let mut t = g.upload(&y).unwrap();
        g.axpy(0.3, &gx, &mut t).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "axpy {s:?}");
        let mut want = vec![0.0; s.len()];
        ops::mul(&wide(&x), &wide(&y), &mut want);
        let mut t = poisoned(&g, s.len());
        g.mul(&gx, &gyy, &mut t).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "mul {s:?}");
        let mut t = poisoned(&g, s.len());
        g.copy(&gx, &mut t).unwrap();
        assert_eq!(g.read(&t).unwrap(), x, "copy {s:?}");
    }
}

#[test]
fn layer_norm_forward_and_backward() {
    let g = CpuBackend;
    for &(batch, rows, cols) in &[(1usize, 1usize, 5usize), (3, 17, 33), (4, 64, 300)] {
        let s = Batched::new(batch, rows, cols);
        let x: Vec<f32> = randn(3, s.len()).iter().map(|v| 2.0 * v + 0.7).collect();
        let dy = randn(4, s.len());
        let (mut y, mut inv) = (vec![0.0; s.len()], vec![0.0; batch * rows]);
        ops::layer_norm(s, 1e-5, &wide(&x), &mut y, &mut inv);
        let mut dx = vec![0.0; s.len()];
        ops::layer_norm_grad(s, &y, &inv, &wide(&dy), &mut dx);
        let (mut gy, mut ginv) = (poisoned(&g, s.len()), poisoned(&g, batch * rows));
        g.layer_norm(s, 1e-5, &g.upload(&x).unwrap(), &mut gy, &mut ginv)
            .unwrap();
        assert!(rel_err(&g.read(&gy).unwrap(), &y) < TOL, "y {s:?}");
        assert!(
            rel_err(&g.read(&ginv).unwrap(), &inv) < TOL,
            "inv_std {s:?}"
        );
        let mut gdx = poisoned(&g, s.len());
        g.layer_norm_grad(s, &gy, &ginv, &g.upload(&dy).unwrap(), &mut gdx)
            .unwrap();
        assert!(rel_err(&g.read(&gdx).unwrap(), &dx) < TOL, "dx {s:?}");
    }
}

#[test]
fn losses_marks_and_gathers() {
    let g = CpuBackend;
    for &(e, n, c) in &[
        (1usize, 1usize, 1usize),
        (2, 33, 5),
        (16, 4096, 1),
        (3, 700, 10),
    ] {
        let s = Batched::new(e, n, c);
        let f = randn(e as u64, s.len());
        let mut y = randn(9, n * c);
        for loss in [Loss::Mse, Loss::Xent] {
            if loss == Loss::Xent {
                for row in y.chunks_mut(c) {
                    let z: f32 = row.iter().map(|v| v.exp()).sum();
                    row.iter_mut().for_each(|v| *v = v.exp() / z);
                }
            }
            let (mut wdf, mut wrows) = (vec![0.0; s.len()], vec![0.0; e * n]);
            ops::loss_grad(loss, s, &wide(&f), &wide(&y), &mut wdf, &mut wrows);
            let (mut df, mut rows) = (poisoned(&g, s.len()), poisoned(&g, e * n));
            let (gf, gy) = (g.upload(&f).unwrap(), g.upload(&y).unwrap());
            g.loss_grad(loss, s, &gf, &gy, &mut df, &mut rows).unwrap();
            assert!(rel_err(&g.read(&df).unwrap(), &wdf) < TOL, "{loss:?} {s:?}");
            assert!(
                rel_err(&g.read(&rows).unwrap(), &wrows) < TOL,
                "{loss:?} {s:?}"
            );
        }
    }
    let loss = g
        .upload(&[1.0, f32::NAN, f32::INFINITY, 2.0, f32::NEG_INFINITY])
        .unwrap();
    let mut alive = g.upload(&[1.0, 1.0, 1.0, 1.0, 0.0]).unwrap();
    let mut at = g.upload(&[-1.0; 5]).unwrap();
    g.mark_diverged(7, &loss, &mut alive, &mut at).unwrap();
    assert_eq!(g.read(&alive).unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(g.read(&at).unwrap(), vec![-1.0, 7.0, 7.0, -1.0, -1.0]);

    for &(rows, cols) in &[(3usize, 5usize), (5000, 13)] {
        let src = randn(1, 40 * cols);
        let idx: Vec<u32> = (0..rows as u32).map(|r| (r * 7 + 3) % 40).collect();
        let mut want = vec![0.0; rows * cols];
        ops::gather_rows(&wide(&src), cols, &idx, &mut want);
        let mut d = poisoned(&g, rows * cols);
        let gi = g.upload(&index_bits(&idx)).unwrap();
        g.gather_rows(&g.upload(&src).unwrap(), cols, &gi, &mut d)
            .unwrap();
        assert_eq!(rel_err(&g.read(&d).unwrap(), &want), 0.0);
    }
    let bad = g.upload(&index_bits(&[40])).unwrap();
    let mut d = g.zeros(5).unwrap();
    assert!(
        g.gather_rows(&g.upload(&randn(1, 200)).unwrap(), 5, &bad, &mut d)
            .is_err()
    );
}

#[test]
fn optimizer_updates() {
    // Members smaller than a chunk, and members spanning several chunks
    // (chunks that start inside a member): the shared check, on the CPU.
    for per in [37usize, 40_001] {
        common::check_updates(&CpuBackend, per);
    }
}

/// The f32 recursion (with the Gram through the product) against the f64
/// path, for a set with itself (diagonal tiles, the mirror) and against
/// another set, on every layer kind.
#[test]
fn kernel_recursion_of_every_layer_kind() {
    let points = |seed, n| widenet::Matrix::from_vec(n, 5, randn(seed, n * 5)).unwrap();
    for spec in [
        "Dense(8), Relu, Dense(8), Relu, Dense(1)",
        "Dense(8, W_std=1.5, b_std=0.1, parameterization=standard), Erf, Dense(3, parameterization=standard), Gelu, Dense(1)",
        "Dense(8), Residual(Relu, Dense(8), Residual(LeakyRelu, Dense(8))), LayerNorm, Abs, Dense(8), Sign, Dense(1)",
        "Dense(8, b_std=0.2), Tanh, Dense(8), Sigmoid, Dense(1)",
    ] {
        let arch = widenet::Arch::parse(spec).unwrap();
        // Quadrature layers cost 14,400 evaluations per entry: fewer points.
        let quadrature = spec.contains("Tanh");
        let (n1, n2) = if quadrature { (9, 6) } else { (70, 43) };
        let (x1, x2) = (points(1, n1), points(2, n2));
        for other in [None, Some(&x2)] {
            let want = kernels_f64(
                &arch,
                &x1.to_f64(),
                other.map(|m| m.to_f64()).as_ref(),
                Want::BOTH,
            )
            .unwrap();
            let got =
                kernels_device(&CpuBackend, &arch, &x1, other, Want::BOTH, |_, _| {}).unwrap();
            for (name, g, w) in [
                ("nngp", &got.nngp, &want.nngp),
                ("ntk", &got.ntk, &want.ntk),
            ] {
                let (g, w) = (g.as_ref().unwrap(), w.as_ref().unwrap());
                let err = rel_err(g.data(), w.data());
                assert!(
                    err < TOL,
                    "{spec} {name} (x2: {}): {err:e}",
                    other.is_some()
                );
            }
        }
    }
}
