//! Differential tests: every GPU kernel against the CPU twin in f64, on shapes
//! of 1, primes and sizes across the 32-wide tile boundary, every transpose
//! form, broadcast operands and several batch sizes. Outputs are poisoned with
//! NaN first. Tolerance: relative Frobenius error 1e-5 (f32 accumulation over
//! at most a few hundred terms stays near 1e-6).

mod common;

use common::{gpu, gpu_with_config, gpu_with_kernel, poisoned, randn, rel_err, wide};
use widenet::Activation;
use widenet::backend::{Backend, Batched, Matmul};
use widenet::cpu::ops;
use widenet::gpu::{MatmulKernel, tune};

const TOL: f64 = 1e-5;

fn check_matmul(g: &dyn Backend, spec: Matmul, seed: u64) {
    let err = common::matmul_error(g, spec, seed);
    assert!(err < TOL, "{spec:?}: relative error {err}");
}

#[test]
fn matmul_all_forms_and_odd_shapes() {
    let Some(g) = gpu() else { return };
    let sizes = [1usize, 7, 33, 64];
    let mut seed = 10;
    for &m in &sizes {
        for &n in &[1usize, 8, 31, 33] {
            for &k in &[1usize, 5, 32, 37] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    seed += 3;
                    let spec = Matmul::new(m, n, k)
                        .trans(ta, tb)
                        .batch(1 + (seed as usize % 3));
                    check_matmul(g.as_ref(), spec, seed);
                }
            }
        }
    }
}

#[test]
fn matmul_257_and_tile_boundaries() {
    let Some(g) = gpu() else { return };
    for (i, &(m, n, k)) in [
        (257, 257, 257),
        (31, 65, 129),
        (96, 32, 1),
        (1, 257, 64),
        (65, 1, 33),
    ]
    .iter()
    .enumerate()
    {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            check_matmul(
                g.as_ref(),
                Matmul::new(m, n, k).trans(ta, tb),
                100 + i as u64,
            );
        }
    }
}

#[test]
fn matmul_batched_broadcast_alpha_beta() {
    let Some(g) = gpu() else { return };
    // 19 x 40 runs tiled; 3 x 40 and 19 x 2 run the thin kernel.
    for (i, &(batch, m, n)) in [
        (1usize, 19usize, 40usize),
        (2, 19, 40),
        (5, 19, 40),
        (16, 19, 40),
        (3, 3, 40),
        (4, 19, 2),
    ]
    .iter()
    .enumerate()
    {
        for (ba, bb) in [(false, false), (true, false), (false, true)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let spec = Matmul::new(m, n, 23)
                    .batch(batch)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(0.5, 1.5);
                check_matmul(g.as_ref(), spec, 300 + i as u64);
                let spec = Matmul::new(m, n, 23)
                    .batch(batch)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(-2.0, 0.0);
                check_matmul(g.as_ref(), spec, 400 + i as u64);
            }
        }
    }
}

#[test]
fn every_matmul_kernel_on_aligned_shapes() {
    // Shapes whose k and n are multiples of 4 reach the vec4 and subgroup kernels
    // (directly for NN, after the transposing copy for NT, TN and TT).
    // Every configuration the autotune may choose (kernel, workgroup rows, walk order).
    let Some(g0) = gpu() else { return };
    let kernels = g0.matmul_kernels();
    assert!(kernels.contains(&MatmulKernel::Vec4));
    let configs = tune::candidates(&g0);
    assert!(configs.len() > kernels.len(), "{configs:?}");
    for c in configs {
        let Some(g) = gpu_with_config(c) else {
            panic!("configuration {c:?} listed but not usable")
        };
        let mut seed = 1000;
        for &(m, n, kk) in &[
            (1usize, 4usize, 4usize),
            (7, 8, 32),
            (33, 36, 36),
            (260, 260, 260),
            (300, 4, 8),
            (8, 300, 12),
            (530, 40, 12),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                seed += 1;
                let spec = Matmul::new(m, n, kk).trans(ta, tb);
                check_matmul(&g, spec, seed);
            }
        }
        for (ba, bb) in [(false, false), (true, false), (false, true)] {
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                seed += 1;
                let spec = Matmul::new(40, 24, 16)
                    .batch(3)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(0.5, -1.5);
                check_matmul(&g, spec, seed);
                let spec = Matmul::new(40, 24, 16)
                    .batch(3)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(2.0, 0.0);
                check_matmul(&g, spec, seed);
            }
        }
    }
}

#[test]
fn matmul_rejects_wrong_lengths() {
    let Some(g) = gpu() else { return };
    let a = g.upload(&[1.0; 6]).unwrap();
    let b = g.upload(&[1.0; 6]).unwrap();
    let mut c = g.zeros(5).unwrap();
    let err = g.matmul(&Matmul::new(2, 2, 3), &a, &b, &mut c).unwrap_err();
    assert!(
        err.to_string().contains("operand C has 5 elements"),
        "{err}"
    );
}

fn activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::RELU,
        Activation::AbRelu { a: 0.1, b: 1.0 },
        Activation::AbRelu { a: -0.5, b: 2.0 },
        Activation::Erf {
            a: 1.0,
            b: 1.0,
            c: 0.0,
        },
        Activation::Erf {
            a: 1.7,
            b: 0.6,
            c: -0.3,
        },
        Activation::Tanh,
        Activation::Gelu,
        Activation::Sign,
    ]
}

#[test]
fn activations_forward_and_backward() {
    let Some(g) = gpu() else { return };
    for &n in &[1usize, 7, 257, 1000, 300_000] {
        let mut x = randn(n as u64, n);
        // Include exact zeros, tiny and large values.
        x[0] = 0.0;
        if n > 3 {
            x[1] = 1e-5;
            x[2] = -9.0;
            x[3] = 20.0;
        }
        let dy = randn(7 + n as u64, n);
        let gx = g.upload(&x).unwrap();
        let gdy = g.upload(&dy).unwrap();
        for act in activations() {
            let mut want = vec![0.0; n];
            ops::activation(act, &wide(&x), &mut want);
            let mut gy = poisoned(g.as_ref(), n);
            g.activation(act, &gx, &mut gy).unwrap();
            let err = rel_err(&g.read(&gy).unwrap(), &want);
            assert!(err < TOL, "{act} forward n={n}: {err}");

            let mut want = vec![0.0; n];
            ops::activation_grad(act, &wide(&x), &wide(&dy), &mut want);
            let mut gdx = poisoned(g.as_ref(), n);
            g.activation_grad(act, &gx, &gdy, &mut gdx).unwrap();
            let err = rel_err(&g.read(&gdx).unwrap(), &want);
            assert!(err < TOL, "{act} backward n={n}: {err}");
        }
    }
}

#[test]
fn erf_is_accurate_pointwise() {
    let Some(g) = gpu() else { return };
    let x: Vec<f32> = (0..2001).map(|i| (i as f32 - 1000.0) / 250.0).collect();
    let act = Activation::Erf {
        a: 1.0,
        b: 1.0,
        c: 0.0,
    };
    let gx = g.upload(&x).unwrap();
    let mut gy = poisoned(g.as_ref(), x.len());
    g.activation(act, &gx, &mut gy).unwrap();
    let got = g.read(&gy).unwrap();
    for (&xi, &yi) in x.iter().zip(&got) {
        let want = libm::erf(xi as f64);
        let tol = 3e-7 + 1e-6 * want.abs();
        assert!(
            (yi as f64 - want).abs() < tol,
            "erf({xi}) = {yi}, want {want}"
        );
    }
}

#[test]
fn bias_add_and_reductions() {
    let Some(g) = gpu() else { return };
    for &(batch, rows, cols) in &[
        (1usize, 1usize, 1usize),
        (3, 7, 33),
        (2, 257, 5),
        (5, 1, 300),
    ] {
        let s = Batched::new(batch, rows, cols);
        let x = randn(batch as u64 * 31 + rows as u64, s.len());
        let bias = randn(99, batch * cols);
        let mut want = wide(&x);
        ops::bias_add(s, &mut want, &wide(&bias), -0.5);
        let mut gy = g.upload(&x).unwrap();
        g.bias_add(s, &mut gy, &g.upload(&bias).unwrap(), -0.5)
            .unwrap();
        let err = rel_err(&g.read(&gy).unwrap(), &want);
        assert!(err < TOL, "bias_add {s:?}: {err}");

        let gx = g.upload(&x).unwrap();
        let mut want = vec![0.0; batch * cols];
        ops::sum_cols(s, &wide(&x), &mut want);
        let mut go = poisoned(g.as_ref(), batch * cols);
        g.sum_cols(s, &gx, &mut go).unwrap();
        let err = rel_err(&g.read(&go).unwrap(), &want);
        assert!(err < TOL, "sum_cols {s:?}: {err}");

        let mut want = vec![0.0; batch * rows];
        ops::sum_rows(s, &wide(&x), &mut want);
        let mut go = poisoned(g.as_ref(), batch * rows);
        g.sum_rows(s, &gx, &mut go).unwrap();
        let err = rel_err(&g.read(&go).unwrap(), &want);
        assert!(err < TOL, "sum_rows {s:?}: {err}");
    }
}

#[test]
fn scale_axpy_mul() {
    let Some(g) = gpu() else { return };
    for &n in &[1usize, 7, 33, 257, 70_000, 300_001] {
        let x = randn(n as u64, n);
        let y = randn(n as u64 + 1, n);
        let gx = g.upload(&x).unwrap();
        let gy = g.upload(&y).unwrap();

        let mut want = wide(&x);
        ops::scale(&mut want, -0.75);
        let mut t = g.upload(&x).unwrap();
        g.scale(&mut t, -0.75).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "scale n={n}");

        let mut want = wide(&y);
        ops::axpy(0.3, &wide(&x), &mut want);
        let mut t = g.upload(&y).unwrap();
        g.axpy(0.3, &gx, &mut t).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "axpy n={n}");

        let mut want = vec![0.0; n];
        ops::mul(&wide(&x), &wide(&y), &mut want);
        let mut t = poisoned(g.as_ref(), n);
        g.mul(&gx, &gy, &mut t).unwrap();
        assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL, "mul n={n}");
    }
}

#[test]
fn queued_work_runs_in_order() {
    // A write after queued kernels must not overtake them.
    let Some(g) = gpu() else { return };
    let mut x = g.upload(&[1.0, 2.0, 3.0]).unwrap();
    g.scale(&mut x, 2.0).unwrap();
    let y = g.upload(&[10.0, 10.0, 10.0]).unwrap();
    g.axpy(1.0, &y, &mut x).unwrap();
    assert_eq!(g.read(&x).unwrap(), vec![12.0, 14.0, 16.0]);
    g.write(&mut x, &[0.0, 0.0, 1.0]).unwrap();
    g.scale(&mut x, 3.0).unwrap();
    assert_eq!(g.read(&x).unwrap(), vec![0.0, 0.0, 3.0]);
}

#[test]
fn operands_above_the_binding_limit_are_split_or_refused() {
    let Some(g0) = gpu() else { return };
    let _ = g0;
    let Some(g) = gpu_with_kernel(MatmulKernel::Generic) else {
        return;
    };
    // 4 KiB per binding: a batch of 6 members of 24 x 20 (1920 bytes) must be
    // split into dispatches of 1 member, and flat arrays of 5000 elements into windows.
    widenet::testing::cap_binding_size(&g, 4096).unwrap();
    for (ta, tb) in [(false, false), (true, true)] {
        check_matmul(
            &g,
            Matmul::new(24, 20, 16)
                .batch(6)
                .trans(ta, tb)
                .scaled(1.0, 0.5),
            77,
        );
    }
    let x = randn(5, 5000);
    let mut want = wide(&x);
    ops::scale(&mut want, 3.0);
    let mut t = g.upload(&x).unwrap();
    g.scale(&mut t, 3.0).unwrap();
    assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL);
    // The vec4 form of the activation gradient in windows (5000 = 4 x 1250)
    // and the scalar form (4999).
    for n in [5000usize, 4999] {
        let (z, dy) = (randn(11, n), randn(12, n));
        let mut want = vec![0.0; n];
        ops::activation_grad(Activation::Gelu, &wide(&z), &wide(&dy), &mut want);
        let mut dx = poisoned(&g, n);
        let (gz, gdy) = (g.upload(&z).unwrap(), g.upload(&dy).unwrap());
        g.activation_grad(Activation::Gelu, &gz, &gdy, &mut dx)
            .unwrap();
        assert!(rel_err(&g.read(&dx).unwrap(), &want) < TOL, "n={n}");
    }
    let s = Batched::new(7, 9, 30);
    let xs = randn(6, s.len());
    let mut want = vec![0.0; 7 * 30];
    ops::sum_cols(s, &wide(&xs), &mut want);
    let mut out = poisoned(&g, 7 * 30);
    g.sum_cols(s, &g.upload(&xs).unwrap(), &mut out).unwrap();
    assert!(rel_err(&g.read(&out).unwrap(), &want) < TOL);
    // One member larger than a binding cannot be split: a clear error names the limit.
    let a = g.upload(&randn(7, 40 * 40)).unwrap();
    let b = g.upload(&randn(8, 40 * 40)).unwrap();
    let mut c = g.zeros(40 * 40).unwrap();
    let err = g
        .matmul(&Matmul::new(40, 40, 40), &a, &b, &mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_storage_buffer_binding_size") && err.contains("4096"),
        "{err}"
    );
}

#[test]
fn a_buffer_larger_than_the_device_allows_is_refused_with_the_limit() {
    let Some(g) = gpu() else { return };
    let max = widenet::Backend::info(&*g).max_buffer_size;
    let err = g.zeros((max / 4 + 1) as usize).unwrap_err().to_string();
    assert!(
        err.contains("max_buffer_size") && err.contains(&max.to_string()),
        "{err}"
    );
}

#[test]
fn fused_dense_forward_on_every_kernel() {
    let Some(g0) = gpu() else { return };
    for k in tune::candidates(&g0) {
        let Some(g) = gpu_with_config(k) else {
            panic!("{k:?}")
        };
        for &(batch, m, n, kk, bcast) in &[
            (3usize, 33usize, 40usize, 12usize, true),
            (2, 300, 8, 16, false),
            (1, 7, 4, 4, true),
            (2, 5, 6, 3, false),
        ] {
            for act in [
                Activation::RELU,
                Activation::Gelu,
                Activation::Erf {
                    a: 1.5,
                    b: 0.5,
                    c: 0.1,
                },
            ] {
                let spec = Matmul::new(m, n, kk)
                    .batch(batch)
                    .trans(false, true)
                    .broadcast(bcast, false)
                    .scaled(0.7, 0.0);
                let (ez, eh) = common::dense_forward_errors(&g, spec, act);
                assert!(ez < TOL, "{k:?} {spec:?} z");
                assert!(eh < TOL, "{k:?} {spec:?} {act} h");
            }
        }
    }
}

#[test]
fn reads_in_flight_see_the_work_queued_before_them_only() {
    let Some(g) = gpu() else { return };
    let mut x = g.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    g.scale(&mut x, 2.0).unwrap();
    let h = g.read_begin(&x).unwrap();
    // Work queued after the read started does not change what it returns.
    g.scale(&mut x, 10.0).unwrap();
    let h2 = g.read_begin(&x).unwrap();
    assert_eq!(g.read_end(h).unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
    assert_eq!(g.read_end(h2).unwrap(), vec![20.0, 40.0, 60.0, 80.0]);
    assert_eq!(g.read(&x).unwrap(), vec![20.0, 40.0, 60.0, 80.0]);
}

#[test]
fn a_lost_device_gives_errors_not_hangs_or_panics() {
    let Some(_) = gpu() else { return };
    let Some(g) = gpu_with_kernel(MatmulKernel::Generic) else {
        return;
    };
    let a = g.upload(&[1.0; 16]).unwrap();
    let mut c = g.zeros(16).unwrap();
    widenet::testing::lose_device(&g).unwrap();
    let spec = Matmul::new(4, 4, 4);
    let results = [
        g.matmul(&spec, &a, &a, &mut c)
            .and_then(|_| g.sync())
            .map(|_| ()),
        g.read(&c).map(|_| ()),
        g.upload(&[1.0; 4]).and_then(|b| g.read(&b)).map(|_| ()),
    ];
    for r in &results {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(e.contains("GPU error"), "{e}");
    }
}
