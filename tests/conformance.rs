//! Backend conformance: every operation of the `Backend` interface, written
//! once and run on the CPU backend (`NAME::cpu`) and on the GPU under test
//! (`NAME::gpu`, see `WIDENET_TEST_ADAPTER` in `tests/common/mod.rs`), against
//! the f64 twins in `src/cpu/ops.rs`, and for kernel tiles against the f64
//! kernels of `widenet::kernel`. Outputs are poisoned with NaN first, so that
//! an element a kernel forgets to write shows.
//!
//! Tolerances (relative Frobenius error against f64): 1e-5 for products of at
//! most a few hundred terms, elementwise kernels, reductions, LayerNorm and
//! the training kernels (f32 against f64 stays near 1e-6 there); 1e-4 for
//! kernel tiles (f32 through a recursion of a dozen layers, the bar of the
//! golden tests); exact for copies, gathers and divergence flags.
//! GPU-specific behaviour (kernel choice, binding windows, device loss,
//! timestamps) is tested in `gpu_kernels.rs` and `gpu_training_ops.rs`.

mod common;

use common::{check_updates, poisoned, randn, rel_err, wide};
use widenet::backend::{
    Backend, Batched, DIAG_CAPACITY, KernelTile, Loss, Matmul, Rule, Update, index_bits,
};
use widenet::cpu::ops;
use widenet::kernel::{Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::{Activation, Arch};

const TOL: f64 = 1e-5;
const KERNEL_TOL: f64 = 1e-4;

fn check_matmul(b: &dyn Backend, spec: Matmul, seed: u64) {
    let err = common::matmul_error(b, spec, seed);
    assert!(err < TOL, "{spec:?}: relative error {err}");
}

/// Every activation, with parameters off their defaults.
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
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Sign,
    ]
}

/// `x` of `n` normals with zero, tiny, large and huge values among them.
fn activation_inputs(n: usize) -> Vec<f32> {
    let mut x = randn(n as u64, n);
    for (v, s) in x.iter_mut().zip([0.0, 1e-5, -9.0, 20.0, -60.0, 1e3, -1e3]) {
        *v = s;
    }
    x
}

/// One kernel tile of `arch` for x1 of `n1` points against x2 of `n2` (x1
/// itself when `None`), both of `d` features, on `b`, against the f64
/// kernels of the same points: `(error of the NNGP, error of the NTK)`,
/// NaN for a kernel not asked for.
fn tile_errors(
    b: &dyn Backend,
    arch: &Arch,
    n1: usize,
    n2: Option<usize>,
    d: usize,
    want: Want,
) -> (f64, f64) {
    let program = arch.kernel_program(d).unwrap();
    let points = |seed, n| {
        let v: Vec<f32> = randn(seed, n * d).iter().map(|x| 0.8 * x).collect();
        Matrix::from_vec(n, d, v).unwrap()
    };
    let x1 = points(1, n1);
    let x2 = n2.map(|n| points(2, n));
    let same = x2.is_none();
    let x2m = x2.as_ref().unwrap_or(&x1);
    let (k, cols) = (d.next_multiple_of(4), x2m.rows().next_multiple_of(4));
    let mut a = vec![0.0f32; n1 * k];
    for i in 0..n1 {
        a[i * k..i * k + d].copy_from_slice(x1.row(i));
    }
    let mut bt = vec![0.0f32; k * cols];
    for j in 0..x2m.rows() {
        for (f, &v) in x2m.row(j).iter().enumerate() {
            bt[f * cols + j] = v;
        }
    }
    let tile = KernelTile {
        program: &program,
        rows: n1,
        cols,
        k,
        same_diag: same,
        want,
    };
    let variances = |x: &Matrix<f32>, i: usize| {
        let c = x.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
        program.variances(c)
    };
    let mut table = vec![0.0f32; DIAG_CAPACITY];
    for l in 0..program.slots {
        let layer = &mut table[l * tile.table_stride()..(l + 1) * tile.table_stride()];
        for (i, v) in layer.iter_mut().enumerate().take(n1) {
            *v = variances(&x1, i)[l] as f32;
        }
        for j in 0..x2m.rows() {
            layer[tile.table_cols_at() + j] = variances(x2m, j)[l] as f32;
        }
    }
    let (mut nngp, mut ntk) = (poisoned(b, n1 * cols), poisoned(b, n1 * cols));
    b.kernel_tile(
        &tile,
        &b.upload(&a).unwrap(),
        &b.upload(&bt).unwrap(),
        &b.upload(&table).unwrap(),
        &mut nngp,
        &mut ntk,
    )
    .unwrap();
    let want64 = kernels_f64(
        arch,
        &x1.to_f64(),
        x2.as_ref().map(|m| m.to_f64()).as_ref(),
        Want::BOTH,
    )
    .unwrap();
    let n2 = x2m.rows();
    // The entries a tile must get right: all of them, or on a tile on the
    // diagonal those on and above it.
    let pick = |at: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        let mut v = Vec::new();
        for i in 0..n1 {
            for j in (if same { i } else { 0 })..n2 {
                v.push(at(i, j));
            }
        }
        v
    };
    let err = |asked: bool, got: &widenet::backend::Buffer, exact: Option<Matrix<f64>>| {
        if !asked {
            return f64::NAN;
        }
        let got = b.read(got).unwrap();
        let got: Vec<f32> = pick(&|i, j| got[i * cols + j] as f64)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let exact = exact.unwrap();
        rel_err(&got, &pick(&|i, j| exact.at(i, j)))
    };
    (
        err(want.nngp, &nngp, want64.nngp),
        err(want.ntk, &ntk, want64.ntk),
    )
}

backend_tests! {
    /// Buffers: zeros, upload, write, read, copy, and lengths checked.
    fn buffers(b: &dyn Backend) {
        let z = b.zeros(5).unwrap();
        assert_eq!(z.len(), 5);
        assert_eq!(b.read(&z).unwrap(), vec![0.0; 5]);
        let x = randn(3, 1001);
        let gx = b.upload(&x).unwrap();
        assert_eq!(b.read(&gx).unwrap(), x);
        let mut y = poisoned(b, 1001);
        b.copy(&gx, &mut y).unwrap();
        assert_eq!(b.read(&y).unwrap(), x);
        let x2 = randn(4, 1001);
        b.write(&mut y, &x2).unwrap();
        assert_eq!(b.read(&y).unwrap(), x2);
        assert_eq!(b.read(&gx).unwrap(), x, "the copy's source changed");
        let err = b.write(&mut y, &x2[..1000]).unwrap_err().to_string();
        assert!(err.contains("1000 elements, expected 1001"), "{err}");
        let mut short = b.zeros(3).unwrap();
        assert!(b.copy(&gx, &mut short).is_err());
        let empty = b.upload(&[]).unwrap();
        assert_eq!(b.read(&empty).unwrap(), Vec::<f32>::new());
    }

    /// A write after queued kernels does not overtake them.
    fn queued_work_runs_in_order(b: &dyn Backend) {
        let mut x = b.upload(&[1.0, 2.0, 3.0]).unwrap();
        b.scale(&mut x, 2.0).unwrap();
        let y = b.upload(&[10.0, 10.0, 10.0]).unwrap();
        b.axpy(1.0, &y, &mut x).unwrap();
        assert_eq!(b.read(&x).unwrap(), vec![12.0, 14.0, 16.0]);
        b.write(&mut x, &[0.0, 0.0, 1.0]).unwrap();
        b.scale(&mut x, 3.0).unwrap();
        assert_eq!(b.read(&x).unwrap(), vec![0.0, 0.0, 3.0]);
        b.sync().unwrap();
    }

    /// A read begun sees the work queued before it, not the work after.
    fn reads_in_flight_see_only_the_work_queued_before_them(b: &dyn Backend) {
        let mut x = b.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        b.scale(&mut x, 2.0).unwrap();
        let h = b.read_begin(&x).unwrap();
        b.scale(&mut x, 10.0).unwrap();
        let h2 = b.read_begin(&x).unwrap();
        assert_eq!(b.read_end(h).unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
        let mut seen = Vec::new();
        b.read_end_with(h2, &mut |v| seen = v.to_vec()).unwrap();
        assert_eq!(seen, vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(b.read(&x).unwrap(), vec![20.0, 40.0, 60.0, 80.0]);
    }

    /// Every transpose form on shapes of 1, primes and sizes across the
    /// 32-wide tile boundary, with batches of 1 to 3.
    fn matmul_all_forms_and_odd_shapes(b: &dyn Backend) {
        let mut seed = 10;
        for &m in &[1usize, 7, 33, 64] {
            for &n in &[1usize, 8, 31, 33] {
                for &k in &[1usize, 5, 32, 37] {
                    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                        seed += 3;
                        let spec = Matmul::new(m, n, k)
                            .trans(ta, tb)
                            .batch(1 + (seed as usize % 3));
                        check_matmul(b, spec, seed);
                    }
                }
            }
        }
    }

    /// 257 and other shapes one past a tile, in every transpose form.
    fn matmul_tile_boundaries(b: &dyn Backend) {
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
                check_matmul(b, Matmul::new(m, n, k).trans(ta, tb), 100 + i as u64);
            }
        }
    }

    /// Batches, broadcast operands, alpha and beta (beta 0 over a poisoned C).
    fn matmul_batched_broadcast_alpha_beta(b: &dyn Backend) {
        // 19 x 40 runs tiled on the GPU; 3 x 40 and 19 x 2 run the thin kernel.
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
                    let spec = Matmul::new(m, n, 23).batch(batch).broadcast(ba, bb).trans(ta, tb);
                    check_matmul(b, spec.scaled(0.5, 1.5), 300 + i as u64);
                    check_matmul(b, spec.scaled(-2.0, 0.0), 400 + i as u64);
                }
            }
        }
    }

    /// Operands of the wrong length are refused with the operand named.
    fn matmul_rejects_wrong_lengths(b: &dyn Backend) {
        let a = b.upload(&[1.0; 6]).unwrap();
        let bm = b.upload(&[1.0; 6]).unwrap();
        let mut c = b.zeros(5).unwrap();
        let err = b.matmul(&Matmul::new(2, 2, 3), &a, &bm, &mut c).unwrap_err();
        assert!(err.to_string().contains("operand C has 5 elements"), "{err}");
    }

    /// The dense layer's forward pass (fused on the GPU) with every activation.
    fn dense_forward_with_every_activation(b: &dyn Backend) {
        for act in activations() {
            for &(batch, m, n, k, bcast) in &[
                (3usize, 33usize, 40usize, 12usize, true),
                (2, 300, 8, 16, false),
                (1, 7, 4, 4, true),
                (2, 5, 6, 3, false),
            ] {
                let spec = Matmul::new(m, n, k)
                    .batch(batch)
                    .trans(false, true)
                    .broadcast(bcast, false)
                    .scaled(0.7, 0.0);
                let (ez, eh) = common::dense_forward_errors(b, spec, act);
                assert!(ez < TOL, "{spec:?} z: {ez:e}");
                assert!(eh < TOL, "{spec:?} {act} h: {eh:e}");
            }
        }
    }

    /// Every activation and its gradient, on sizes from 1 to more values than
    /// one dispatch has invocations.
    fn activations_forward_and_backward(b: &dyn Backend) {
        for &n in &[1usize, 7, 257, 1000, 300_000] {
            let x = activation_inputs(n);
            let dy = randn(7 + n as u64, n);
            let (gx, gdy) = (b.upload(&x).unwrap(), b.upload(&dy).unwrap());
            for act in activations() {
                let mut want = vec![0.0; n];
                ops::activation(act, &wide(&x), &mut want);
                let mut y = poisoned(b, n);
                b.activation(act, &gx, &mut y).unwrap();
                let err = rel_err(&b.read(&y).unwrap(), &want);
                assert!(err < TOL, "{act} forward n={n}: {err:e}");

                let mut want = vec![0.0; n];
                ops::activation_grad(act, &wide(&x), &wide(&dy), &mut want);
                let mut dx = poisoned(b, n);
                b.activation_grad(act, &gx, &gdy, &mut dx).unwrap();
                let err = rel_err(&b.read(&dx).unwrap(), &want);
                assert!(err < TOL, "{act} backward n={n}: {err:e}");
            }
        }
    }

    /// The transcendental activations value by value on [-8, 8], against
    /// libm in f64: within 3e-7 + 1e-6 |f(x)| (erf's polynomial is good to
    /// 1.5e-7; tanh and exp are the driver's, which a Frobenius norm over
    /// many values could hide).
    fn transcendental_activations_pointwise(b: &dyn Backend) {
        let x: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 250.0).collect();
        let gx = b.upload(&x).unwrap();
        let erf = Activation::Erf { a: 1.0, b: 1.0, c: 0.0 };
        type Exact = (Activation, fn(f64) -> f64);
        let exact: [Exact; 3] = [
            (erf, libm::erf),
            (Activation::Tanh, libm::tanh),
            (Activation::Sigmoid, |x| 1.0 / (1.0 + libm::exp(-x))),
        ];
        for (act, f) in exact {
            let mut y = poisoned(b, x.len());
            b.activation(act, &gx, &mut y).unwrap();
            for (&xi, &yi) in x.iter().zip(&b.read(&y).unwrap()) {
                let want = f(xi as f64);
                let tol = 3e-7 + 1e-6 * want.abs();
                assert!((yi as f64 - want).abs() < tol, "{act}({xi}) = {yi}, want {want}");
            }
        }
    }

    /// `bias_add`, `sum_rows` and `sum_cols` on batches of odd shapes.
    fn bias_add_and_reductions(b: &dyn Backend) {
        for &(batch, rows, cols) in &[
            (1usize, 1usize, 1usize),
            (3, 7, 33),
            (2, 257, 5),
            (5, 1, 300),
            (2, 1030, 3),
        ] {
            let s = Batched::new(batch, rows, cols);
            let x = randn(batch as u64 * 31 + rows as u64, s.len());
            let bias = randn(99, batch * cols);
            let mut want = wide(&x);
            ops::bias_add(s, &mut want, &wide(&bias), -0.5);
            let mut y = b.upload(&x).unwrap();
            b.bias_add(s, &mut y, &b.upload(&bias).unwrap(), -0.5).unwrap();
            let err = rel_err(&b.read(&y).unwrap(), &want);
            assert!(err < TOL, "bias_add {s:?}: {err:e}");

            let gx = b.upload(&x).unwrap();
            let mut want = vec![0.0; batch * cols];
            ops::sum_cols(s, &wide(&x), &mut want);
            let mut out = poisoned(b, batch * cols);
            b.sum_cols(s, &gx, &mut out).unwrap();
            let err = rel_err(&b.read(&out).unwrap(), &want);
            assert!(err < TOL, "sum_cols {s:?}: {err:e}");

            let mut want = vec![0.0; batch * rows];
            ops::sum_rows(s, &wide(&x), &mut want);
            let mut out = poisoned(b, batch * rows);
            b.sum_rows(s, &gx, &mut out).unwrap();
            let err = rel_err(&b.read(&out).unwrap(), &want);
            assert!(err < TOL, "sum_rows {s:?}: {err:e}");
        }
    }

    /// `scale`, `axpy` and `mul`, on lengths that are and are not multiples
    /// of 4, up to more values than one dispatch has invocations.
    fn scale_axpy_mul(b: &dyn Backend) {
        for &n in &[1usize, 7, 33, 257, 70_000, 300_001] {
            let (x, y) = (randn(n as u64, n), randn(n as u64 + 1, n));
            let (gx, gy) = (b.upload(&x).unwrap(), b.upload(&y).unwrap());

            let mut want = wide(&x);
            ops::scale(&mut want, -0.75);
            let mut t = b.upload(&x).unwrap();
            b.scale(&mut t, -0.75).unwrap();
            assert!(rel_err(&b.read(&t).unwrap(), &want) < TOL, "scale n={n}");

            let mut want = wide(&y);
            ops::axpy(0.3, &wide(&x), &mut want);
            let mut t = b.upload(&y).unwrap();
            b.axpy(0.3, &gx, &mut t).unwrap();
            assert!(rel_err(&b.read(&t).unwrap(), &want) < TOL, "axpy n={n}");

            let mut want = vec![0.0; n];
            ops::mul(&wide(&x), &wide(&y), &mut want);
            let mut t = poisoned(b, n);
            b.mul(&gx, &gy, &mut t).unwrap();
            assert!(rel_err(&b.read(&t).unwrap(), &want) < TOL, "mul n={n}");
        }
    }

    /// LayerNorm and its gradient on rows of 1 to 4100 values with a large
    /// common offset (the mean must be taken out before the variance).
    fn layer_norm_forward_and_backward(b: &dyn Backend) {
        for &(batch, rows, cols, eps) in &[
            (1usize, 1usize, 1usize, 1e-5f32),
            (2, 3, 7, 1e-5),
            (1, 5, 257, 0.5),
            (3, 4, 1000, 1e-12),
            (1, 2, 4100, 1e-5),
        ] {
            let s = Batched::new(batch, rows, cols);
            let x: Vec<f32> = randn(cols as u64, s.len()).iter().map(|v| 3.0 * v + 5.0).collect();
            let (mut y64, mut inv64) = (vec![0.0; s.len()], vec![0.0; batch * rows]);
            ops::layer_norm(s, f64::from(eps), &wide(&x), &mut y64, &mut inv64);
            let (mut y, mut inv) = (poisoned(b, s.len()), poisoned(b, batch * rows));
            b.layer_norm(s, eps, &b.upload(&x).unwrap(), &mut y, &mut inv).unwrap();
            let ey = rel_err(&b.read(&y).unwrap(), &y64);
            let ei = rel_err(&b.read(&inv).unwrap(), &inv64);
            assert!(ey < TOL && ei < TOL, "layer_norm {s:?}: y {ey:e}, inv_std {ei:e}");

            let yf: Vec<f32> = y64.iter().map(|&v| v as f32).collect();
            let invf: Vec<f32> = inv64.iter().map(|&v| v as f32).collect();
            let dy = randn(cols as u64 + 1, s.len());
            let mut want = vec![0.0; s.len()];
            ops::layer_norm_grad(s, &wide(&yf), &wide(&invf), &wide(&dy), &mut want);
            let mut dx = poisoned(b, s.len());
            let (gy, ginv, gdy) = (b.upload(&yf).unwrap(), b.upload(&invf).unwrap(), b.upload(&dy).unwrap());
            b.layer_norm_grad(s, &gy, &ginv, &gdy, &mut dx).unwrap();
            let err = rel_err(&b.read(&dx).unwrap(), &want);
            assert!(err < TOL, "layer_norm_grad {s:?}: {err:e}");
        }
    }

    /// MSE and softmax cross-entropy: gradients and per-row losses, with
    /// logits up to about 40 for the cross-entropy's log-sum-exp.
    fn losses_and_gradients(b: &dyn Backend) {
        for &(e, n, c, spread) in &[
            (1usize, 1usize, 1usize, 1.0f32),
            (3, 17, 1, 1.0),
            (2, 33, 5, 1.0),
            (4, 8, 10, 1.0),
            (2, 300, 10, 10.0),
        ] {
            let s = Batched::new(e, n, c);
            let f: Vec<f32> = randn(e as u64, s.len()).iter().map(|v| spread * v).collect();
            let mut y = randn(9, n * c);
            for loss in [Loss::Mse, Loss::Xent] {
                if loss == Loss::Xent {
                    // Rows of probabilities.
                    for row in y.chunks_mut(c) {
                        let z: f32 = row.iter().map(|v| v.exp()).sum();
                        row.iter_mut().for_each(|v| *v = v.exp() / z);
                    }
                }
                let (mut wdf, mut wrows) = (vec![0.0; s.len()], vec![0.0; e * n]);
                ops::loss_grad(loss, s, &wide(&f), &wide(&y), &mut wdf, &mut wrows);
                let (mut df, mut rows) = (poisoned(b, s.len()), poisoned(b, e * n));
                let (gf, gy) = (b.upload(&f).unwrap(), b.upload(&y).unwrap());
                b.loss_grad(loss, s, &gf, &gy, &mut df, &mut rows).unwrap();
                let eg = rel_err(&b.read(&df).unwrap(), &wdf);
                let er = rel_err(&b.read(&rows).unwrap(), &wrows);
                assert!(eg < TOL, "{loss:?} {s:?} grad: {eg:e}");
                assert!(er < TOL, "{loss:?} {s:?} rows: {er:e}");
            }
        }
    }

    /// Members whose loss is not finite are frozen at the step; frozen ones
    /// stay as they were.
    fn divergence_marks(b: &dyn Backend) {
        let loss = b.upload(&[1.0, f32::NAN, f32::INFINITY, 2.0, f32::NEG_INFINITY]).unwrap();
        let mut alive = b.upload(&[1.0, 1.0, 1.0, 1.0, 0.0]).unwrap();
        let mut at = b.upload(&[-1.0; 5]).unwrap();
        b.mark_diverged(7, &loss, &mut alive, &mut at).unwrap();
        assert_eq!(b.read(&alive).unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(b.read(&at).unwrap(), vec![-1.0, 7.0, 7.0, -1.0, -1.0]);
        // More members than a workgroup: every 7th diverges, every 5th was frozen.
        let n = 1000;
        let l: Vec<f32> = (0..n).map(|i| if i % 7 == 0 { f32::NAN } else { i as f32 }).collect();
        let a0: Vec<f32> = (0..n).map(|i| if i % 5 == 0 { 0.0 } else { 1.0 }).collect();
        let (mut a, mut d) = (b.upload(&a0).unwrap(), b.upload(&vec![-1.0; n]).unwrap());
        b.mark_diverged(3, &b.upload(&l).unwrap(), &mut a, &mut d).unwrap();
        let (mut wa, mut wd) = (wide(&a0), vec![-1.0; n]);
        ops::mark_diverged(3, &wide(&l), &mut wa, &mut wd);
        assert_eq!(wide(&b.read(&a).unwrap()), wa);
        assert_eq!(wide(&b.read(&d).unwrap()), wd);
    }

    /// SGD, momentum and Adam over four steps, with a frozen member and one
    /// of learning rate 0; members of 37 values (scalar kernels), 40 (vec4),
    /// and more values than one dispatch has invocations.
    fn optimizer_updates(b: &dyn Backend) {
        for per in [37, 40, 70_000, 70_001] {
            check_updates(b, per);
        }
    }

    /// Rows gathered by index, repeats and the last row included.
    fn gather_rows_by_index(b: &dyn Backend) {
        for &(rows, cols, picks) in &[(11usize, 7usize, 5usize), (1000, 33, 700), (3, 1, 9)] {
            let src = randn(rows as u64, rows * cols);
            let mut idx: Vec<u32> = (0..picks).map(|i| ((i * 7919 + 3) % rows) as u32).collect();
            idx[0] = rows as u32 - 1;
            let mut want = vec![0.0; picks * cols];
            ops::gather_rows(&wide(&src), cols, &idx, &mut want);
            let mut dst = poisoned(b, picks * cols);
            let gidx = b.upload(&index_bits(&idx)).unwrap();
            b.gather_rows(&b.upload(&src).unwrap(), cols, &gidx, &mut dst).unwrap();
            assert_eq!(wide(&b.read(&dst).unwrap()), want, "{rows} x {cols}");
        }
    }

    /// Tiles of the NNGP and NTK of composed architectures (residual blocks,
    /// nested ones, LayerNorm, every activation, both parameterizations), off
    /// and on the diagonal, each kernel alone and both, against the f64
    /// kernels; rows not a multiple of 4, padded columns and features.
    fn kernel_tiles_of_composed_programs(b: &dyn Backend) {
        let archs = [
            "Dense(64, W_std=1.3, b_std=0.1), Residual(Relu, Dense(64, W_std=1.3, b_std=0.1)), \
             LayerNorm, Erf, Dense(1, W_std=1.3, b_std=0.1)",
            "Dense(32, W_std=1.5, b_std=0.05), Tanh, Dense(32, W_std=1.2), Sigmoid, \
             Dense(32, W_std=1.4, b_std=0.2, parameterization=standard), Gelu, Dense(32), \
             Residual(LeakyRelu(0.1), Dense(32), Residual(Erf(1.5, 0.7, 0.1), Dense(32))), \
             Dense(16, W_std=1.1), Sign, Dense(16), ABRelu(-0.4, 1.2), Dense(16), Abs, \
             Dense(16), LayerNorm, Identity, Dense(1, W_std=1.1, b_std=0.3)",
        ];
        for text in archs {
            let arch = Arch::parse(text).unwrap();
            for (n2, want) in [
                (Some(18), Want::BOTH),
                (None, Want::BOTH),
                (Some(9), Want::NNGP),
                (None, Want::NTK),
            ] {
                let (eq, et) = tile_errors(b, &arch, 13, n2, 5, want);
                let ok = |e: f64, asked: bool| if asked { e < KERNEL_TOL } else { e.is_nan() };
                assert!(
                    ok(eq, want.nngp) && ok(et, want.ntk),
                    "{text}, x2 {n2:?}, {want:?}: nngp {eq:e}, ntk {et:e}"
                );
            }
        }
    }

    /// `time` waits for the work it times, and gives a positive duration.
    fn time_measures_queued_work(b: &dyn Backend) {
        let spec = Matmul::new(64, 64, 64);
        let a = b.upload(&randn(1, spec.a_len())).unwrap();
        let bm = b.upload(&randn(2, spec.b_len())).unwrap();
        let mut c = poisoned(b, spec.c_len());
        let (secs, _) = b.time(&mut || b.matmul(&spec, &a, &bm, &mut c)).unwrap();
        assert!(secs > 0.0 && secs < 60.0, "{secs}");
        assert!(b.read(&c).unwrap().iter().all(|v| v.is_finite()));
    }

    /// Arguments no operation can run with are refused, with what is wrong.
    fn bad_arguments_are_refused(b: &dyn Backend) {
        let x = b.upload(&[1.0; 8]).unwrap();
        let mut y = b.zeros(8).unwrap();
        let mut short = b.zeros(7).unwrap();
        let s = Batched::new(1, 2, 4);
        let finite = |r: widenet::Result<()>| {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("must be finite"), "{e}");
        };
        finite(b.scale(&mut y, f32::NAN));
        finite(b.axpy(f32::INFINITY, &x, &mut y));
        finite(b.bias_add(s, &mut y, &b.zeros(4).unwrap(), f32::NAN));
        let mut inv = b.zeros(2).unwrap();
        finite(b.layer_norm(s, f32::NAN, &x, &mut y, &mut inv));
        let lengths = |r: widenet::Result<()>| {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("has 7 elements"), "{e}");
        };
        lengths(b.activation(Activation::Tanh, &x, &mut short));
        lengths(b.activation_grad(Activation::Gelu, &x, &x, &mut short));
        lengths(b.mul(&x, &x, &mut short));
        lengths(b.axpy(1.0, &x, &mut short));
        lengths(b.sum_rows(Batched::new(1, 1, 8), &x, &mut short));
        let mut df = b.zeros(8).unwrap();
        lengths(b.loss_grad(Loss::Mse, s, &x, &x, &mut df, &mut short));
        let alive = b.upload(&[1.0; 7]).unwrap();
        lengths(b.mark_diverged(1, &x, &mut y, &mut short));
        let up = Update {
            rule: Rule::Sgd,
            scale: 1.0,
            step: 1,
        };
        let e = b.update(&up, 3, &x, &alive, &alive, &mut y, None, None).unwrap_err();
        assert!(e.to_string().contains("whole members of 3"), "{e}");
    }
}

/// Tests of the test harness itself: a run asked for an adapter that is not
/// there fails under `WIDENET_REQUIRE_GPU=1` (naming it) and skips visibly
/// without; `WIDENET_REQUIRE` is read as a comma-separated list in any case.
#[test]
fn a_missing_adapter_asked_for_fails_under_require_gpu() {
    assert!(common::required(Some("f16, Subgroup8"), "subgroup8"));
    assert!(common::required(Some("coop"), "COOP"));
    assert!(!common::required(Some("f16,subgroup8"), "coop"));
    assert!(!common::required(None, "f16"));
    let run = |require: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([
            "--exact",
            "queued_work_runs_in_order::gpu",
            "--test-threads=1",
        ])
        .env("WIDENET_TEST_ADAPTER", "no-such-adapter-7b3f");
        if require {
            c.env("WIDENET_REQUIRE_GPU", "1");
        } else {
            c.env_remove("WIDENET_REQUIRE_GPU");
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(true);
    assert!(!ok, "{text}");
    assert!(
        text.contains("WIDENET_TEST_ADAPTER=no-such-adapter-7b3f")
            && text.contains("adapters found"),
        "{text}"
    );
    let (ok, text) = run(false);
    assert!(ok, "{text}");
    assert!(
        text.contains("SKIP every GPU test: no adapter named like no-such-adapter-7b3f"),
        "{text}"
    );
    assert!(text.contains("1 passed"), "{text}");
}
