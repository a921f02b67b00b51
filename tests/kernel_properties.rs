//! Properties of the infinite-width kernels beyond the golden file: symmetry,
//! positive semi-definiteness, closed forms, Monte Carlo expectations for every
//! activation, and agreement of the tiled f32 device path with the f64 path.

mod common;

use widenet::activation::kernel::{diag as activation_diag, pair as activation_pair};
use widenet::kernel::{Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;
use widenet::rng::Rng;
use widenet::{Activation, Arch, Mlp, Parameterization};

fn points(seed: u64, n: usize, d: usize) -> Matrix {
    let mut r = Rng::new(seed);
    Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap()
}

fn arch(act: Activation, depth: usize, w: f64, b: f64, p: Parameterization, _d_in: usize) -> Arch {
    Arch::mlp(&Mlp {
        depth,
        activation: act,
        w_std: w,
        b_std: Some(b),
        parameterization: p,
        width: 128,
        d_out: 1,
    })
}

fn activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::RELU,
        Activation::AbRelu { a: 0.2, b: 1.0 },
        Activation::AbRelu { a: -1.0, b: 1.0 },
        Activation::AbRelu { a: 0.7, b: -1.3 },
        Activation::Erf {
            a: 1.0,
            b: 1.0,
            c: 0.0,
        },
        Activation::Erf {
            a: 1.5,
            b: 0.5,
            c: 0.3,
        },
        Activation::Gelu,
        Activation::Sign,
    ]
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-300)).sqrt()
}

#[test]
fn kernels_of_a_set_are_symmetric_and_psd() {
    let x = points(1, 20, 7);
    for act in activations() {
        for p in [Parameterization::Ntk, Parameterization::Standard] {
            let a = arch(act, 3, 1.3, 0.2, p, 7);
            let k = kernels_f64(&a, &x, None, Want::BOTH).unwrap();
            for (name, m) in [("nngp", k.nngp.unwrap()), ("ntk", k.ntk.unwrap())] {
                for i in 0..m.rows() {
                    for j in 0..m.cols() {
                        assert_eq!(m.at(i, j), m.at(j, i), "{act} {p:?} {name} not symmetric");
                    }
                }
                let ev = m
                    .to_faer()
                    .self_adjoint_eigenvalues(faer::Side::Lower)
                    .unwrap();
                let max = ev.iter().cloned().fold(0.0f64, f64::max);
                let min = ev.iter().cloned().fold(f64::INFINITY, f64::min);
                if name == "ntk" && act == Activation::Sign {
                    // The sign's derivative is zero: only the readout contributes.
                    assert!(max > 0.0);
                }
                assert!(
                    min > -1e-10 * max,
                    "{act} {p:?} {name}: eigenvalue {min} (max {max})"
                );
            }
        }
    }
}

#[test]
fn relu_matches_the_arc_cosine_kernel_of_cho_and_saul() {
    // One hidden ReLU layer, W_std = 1, b_std = 0, ntk parameterization:
    // nngp = |x||y|/d / (2 pi) (sin t + (pi - t) cos t), t the angle between x and y;
    // ntk = nngp + (x.y/d) (pi - t) / (2 pi).
    let (x1, x2) = (points(2, 9, 5), points(3, 11, 5));
    let a = arch(Activation::RELU, 1, 1.0, 0.0, Parameterization::Ntk, 5);
    let k = kernels_f64(&a, &x1, Some(&x2), Want::BOTH).unwrap();
    let (nngp, ntk) = (k.nngp.unwrap(), k.ntk.unwrap());
    for i in 0..9 {
        for j in 0..11 {
            let (u, v) = (x1.row(i), x2.row(j));
            let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / 5.0;
            let nu = (u.iter().map(|a| a * a).sum::<f64>() / 5.0).sqrt();
            let nv = (v.iter().map(|a| a * a).sum::<f64>() / 5.0).sqrt();
            let t = (dot / (nu * nv)).clamp(-1.0, 1.0).acos();
            let pi = std::f64::consts::PI;
            let want = nu * nv / (2.0 * pi) * (t.sin() + (pi - t) * t.cos());
            assert!(
                (nngp.at(i, j) - want).abs() < 1e-12 * want.abs().max(1.0),
                "nngp ({i},{j})"
            );
            let want_ntk = want + dot * (pi - t) / (2.0 * pi);
            assert!(
                (ntk.at(i, j) - want_ntk).abs() < 1e-12 * want_ntk.abs().max(1.0),
                "ntk ({i},{j})"
            );
        }
    }
}

#[test]
fn closed_form_diagonals() {
    let x = points(4, 6, 3);
    let (w, b) = (1.4f64, 0.3f64);
    let (w2, b2) = (w * w, b * b);
    // Depth 1 ReLU, ntk parameterization: q1 = W^2 c + b^2; nngp = W^2 q1 / 2 + b^2;
    // ntk = nngp + W^2 q1 / 2.
    let a = arch(Activation::RELU, 1, w, b, Parameterization::Ntk, 3);
    let k = kernels_f64(&a, &x, None, Want::BOTH).unwrap();
    // Depth 1 identity, standard parameterization with fan-ins d and width:
    // nngp = W^2 (W^2 c + b^2) + b^2; ntk = d c + 1 (first layer) times W^2, plus width * q1 + 1.
    let s = arch(Activation::Identity, 1, w, b, Parameterization::Standard, 3);
    let ks = kernels_f64(&s, &x, None, Want::BOTH).unwrap();
    for i in 0..6 {
        let c: f64 = x.row(i).iter().map(|v| v * v).sum::<f64>() / 3.0;
        let q1 = w2 * c + b2;
        let nngp = w2 * q1 / 2.0 + b2;
        assert!((k.nngp.as_ref().unwrap().at(i, i) - nngp).abs() < 1e-13 * nngp);
        let ntk = nngp + w2 * q1 / 2.0;
        assert!((k.ntk.as_ref().unwrap().at(i, i) - ntk).abs() < 1e-13 * ntk);
        let nngp_s = w2 * q1 + b2;
        assert!((ks.nngp.as_ref().unwrap().at(i, i) - nngp_s).abs() < 1e-13 * nngp_s);
        let theta1 = 3.0 * c + 1.0;
        let ntk_s = 128.0 * q1 + w2 * theta1 + 1.0;
        assert!((ks.ntk.as_ref().unwrap().at(i, i) - ntk_s).abs() < 1e-12 * ntk_s);
    }
}

#[test]
fn activation_kernels_match_monte_carlo() {
    // E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for (u, v) Gaussian with variances
    // c1, c2 and covariance q, estimated from 400,000 samples: agreement within
    // 5 standard errors of the estimate.
    let (c1, c2, q) = (1.3f64, 0.6f64, 0.5f64);
    let n = 400_000;
    let mut r = Rng::new(11);
    let samples: Vec<(f64, f64)> = (0..n)
        .map(|_| {
            let (z1, z2) = (r.normal(), r.normal());
            let u = c1.sqrt() * z1;
            let rho = q / (c1 * c2).sqrt();
            let v = c2.sqrt() * (rho * z1 + (1.0 - rho * rho).sqrt() * z2);
            (u, v)
        })
        .collect();
    for act in activations() {
        let (qn, dot) = activation_pair(act, q, c1, c2, false);
        let check = |f: &dyn Fn(f64, f64) -> f64, want: f64, what: &str| {
            let vals: Vec<f64> = samples.iter().map(|&(u, v)| f(u, v)).collect();
            let mean = vals.iter().sum::<f64>() / n as f64;
            let var = vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let se = (var / n as f64).sqrt();
            assert!(
                (mean - want).abs() < 5.0 * se + 1e-9,
                "{act} {what}: Monte Carlo {mean} +- {se}, closed form {want}"
            );
        };
        check(&|u, v| act.apply(u) * act.apply(v), qn, "E[phi phi]");
        if act != Activation::Sign {
            check(
                &|u, v| act.derivative(u) * act.derivative(v),
                dot,
                "E[phi' phi']",
            );
        }
        let diag = activation_diag(act, c1);
        check(&|u, _| act.apply(u) * act.apply(u), diag, "E[phi^2]");
    }
}

#[test]
fn device_kernels_agree_with_f64_over_many_tiles() {
    let Some(g) = common::gpu() else { return };
    // depth 40 makes tiles of 204 points, so 450 x 301 points cross several
    // tiles (and the mirror of the symmetric case), with odd sizes and d = 7.
    let (x1, x2) = (points(5, 450, 7), points(6, 301, 7));
    for (act, depth) in [
        (Activation::RELU, 40),
        (
            Activation::Erf {
                a: 1.2,
                b: 0.8,
                c: 0.1,
            },
            3,
        ),
        (Activation::Gelu, 2),
        (Activation::Sign, 2),
        (Activation::AbRelu { a: 0.3, b: 1.0 }, 5),
    ] {
        for p in [Parameterization::Ntk, Parameterization::Standard] {
            let a = arch(act, depth, 1.2, 0.1, p, 7);
            for x2o in [None, Some(&x2)] {
                let want = kernels_f64(&a, &x1, x2o, Want::BOTH).unwrap();
                let x2f = x2o.map(|m| m.to_f32());
                let got = kernels_device(
                    g.as_ref(),
                    &a,
                    &x1.to_f32(),
                    x2f.as_ref(),
                    Want::BOTH,
                    |_, _| {},
                )
                .unwrap();
                let e1 = rel(got.nngp.unwrap().to_f64().data(), want.nngp.unwrap().data());
                let e2 = rel(got.ntk.unwrap().to_f64().data(), want.ntk.unwrap().data());
                assert!(
                    e1 < 1e-4 && e2 < 1e-4,
                    "{act} depth {depth} {p:?} sym={}: nngp {e1:e}, ntk {e2:e}",
                    x2o.is_none()
                );
            }
        }
    }
}

#[test]
fn cpu_backend_tiles_agree_with_f64() {
    let cpu = widenet::cpu::CpuBackend;
    let x = points(7, 37, 6);
    let a = arch(Activation::Gelu, 3, 1.1, 0.05, Parameterization::Ntk, 6);
    let want = kernels_f64(&a, &x, None, Want::NTK).unwrap().ntk.unwrap();
    let got = kernels_device(&cpu, &a, &x.to_f32(), None, Want::NTK, |_, _| {})
        .unwrap()
        .ntk
        .unwrap();
    assert!(rel(got.to_f64().data(), want.data()) < 1e-5);
}

#[test]
fn bad_architectures_are_refused() {
    let x = points(8, 4, 3);
    let bad = [
        // A nonlinearity on the inputs: its kernel needs a Gaussian input.
        Arch::parse("Relu, Dense(1)").unwrap(),
        Arch::parse("LayerNorm, Dense(1)").unwrap(),
        arch(Activation::RELU, 1, -1.0, 0.0, Parameterization::Ntk, 3),
        arch(Activation::RELU, 1, f64::NAN, 0.0, Parameterization::Ntk, 3),
    ];
    for a in bad {
        assert!(
            kernels_f64(&a, &x, None, Want::BOTH).is_err(),
            "{a:?} accepted"
        );
    }
    let mut xn = x.clone();
    xn.data_mut()[5] = f64::NAN;
    let a = arch(Activation::RELU, 1, 1.0, 0.0, Parameterization::Ntk, 3);
    let e = kernels_f64(&a, &xn, None, Want::BOTH)
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-finite") && e.contains("row 1"), "{e}");
}
