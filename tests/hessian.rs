//! Hessian-vector products and spectra of ensembles' training losses:
//! against the dense Hessian of an independent f64 loss (second differences
//! in f64) and central differences of the gradient, symmetry, Lanczos
//! against a dense eigendecomposition, device against CPU, the linear model
//! whose Hessian is X'X/N, and gradient descent on a quadratic diverging
//! exactly above 2/lambda.

mod common;

use common::reference::{flat64, hessian_at};
use widenet::backend::{Backend, Loss};
use widenet::matrix::Matrix;
use widenet::net::direction::Direction;
use widenet::net::hvp::Hvp;
use widenet::net::spectrum::{SpectrumConfig, spectrum};
use widenet::net::train::{TrainConfig, targets, train};
use widenet::net::{Ensemble, NetSpec, Params};
use widenet::rng::Rng;
use widenet::{Arch, Parameterization};

/// Small compositions on 3 inputs with 2 outputs: fused and unfused
/// nonlinearities of every kind, residual blocks, LayerNorm, bias-free layers.
const ARCHS: [&str; 4] = [
    "Dense(4, W_std=1.3, b_std=0.3), Tanh, Dense(4, W_std=1.2, b_std=0.2), Gelu, Dense(2, b_std=0.1)",
    "Dense(4, b_std=0.2), Erf(1.2, 0.7, 0.1), Dense(3), Sigmoid, Dense(4), LeakyRelu(0.2), Dense(2, b_std=0.1)",
    "Dense(4, W_std=1.4, b_std=0.2), Residual(Gelu, Dense(4, W_std=1.1, b_std=0.1)), LayerNorm, Tanh, Dense(2, b_std=0.3)",
    "Dense(5, b_std=0.1), LayerNorm, Gelu, Residual(Dense(5, b_std=0.1), LayerNorm, Abs, Dense(5)), Dense(2, b_std=0.1)",
];

fn net(arch: &str, e: usize, p: Option<Parameterization>) -> NetSpec {
    NetSpec {
        arch: Arch::parse(arch).unwrap(),
        d_in: 3,
        ensemble: e,
        parameterization: p,
        base_width: 2,
    }
}

fn data(seed: u64, n: usize, d: usize) -> Matrix<f32> {
    Matrix::from_vec(n, d, Rng::new(seed).normals_f32(n * d)).unwrap()
}

/// Class labels 0 or 1 as one column.
fn labels(seed: u64, n: usize) -> Matrix<f32> {
    let mut r = Rng::new(seed);
    Matrix::from_vec(n, 1, (0..n).map(|_| r.below(2) as f32).collect()).unwrap()
}

fn backends() -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![Box::new(widenet::cpu::CpuBackend)];
    if common::gpu().is_some() {
        v.push(Box::new(common::open_test_gpu().unwrap()));
    }
    v
}

/// Member `e`'s slice of a direction's host tensors, flattened in file order.
fn member(t: &[Vec<f32>], e: usize, members: usize) -> Vec<f64> {
    t.iter()
        .flat_map(|v| {
            let n = v.len() / members;
            v[e * n..(e + 1) * n].iter().map(|&x| x as f64)
        })
        .collect()
}

fn matvec(h: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    h.iter()
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn rel(got: &[f64], want: &[f64]) -> f64 {
    let d: Vec<f64> = got.iter().zip(want).map(|(a, b)| a - b).collect();
    norm(&d) / norm(want)
}

/// H v of every member on `dev`, as host tensors.
fn hvp_on(
    dev: &dyn Backend,
    p: &Params,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    loss: Loss,
    v: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    let ens = Ensemble::new(dev, p).unwrap();
    let mut hvp = Hvp::new(&ens, x, y, loss).unwrap();
    hvp.prepare().unwrap();
    let dv = Direction::upload(&ens, v).unwrap();
    let mut out = Direction::zeros(&ens).unwrap();
    hvp.apply(&dv, &mut out).unwrap();
    out.read(dev).unwrap()
}

fn random_direction(p: &Params, seed: u64) -> Vec<Vec<f32>> {
    let ens = Ensemble::new(&widenet::cpu::CpuBackend, p).unwrap();
    Direction::random(&ens, seed)
        .unwrap()
        .read(&widenet::cpu::CpuBackend)
        .unwrap()
}

#[test]
fn hvp_equals_the_dense_hessian_of_the_f64_loss() {
    let x = data(1, 5, 3);
    for (k, arch) in ARCHS.iter().enumerate() {
        for (loss, y) in [(Loss::Mse, data(2, 5, 2)), (Loss::Xent, labels(3, 5))] {
            let par = if k % 2 == 0 {
                None
            } else {
                Some(Parameterization::Mup)
            };
            let p = Params::init(&net(arch, 2, par), 5 + k as u64).unwrap();
            let rows = targets(loss, y.view(), 2).unwrap();
            let v = random_direction(&p, 9);
            for dev in backends() {
                let got = hvp_on(dev.as_ref(), &p, &x, &y, loss, &v);
                for e in 0..2 {
                    // A step small against every pre-activation's distance to
                    // the kinks of Abs and LeakyRelu (1e-3 straddles one here).
                    let h = hessian_at(&p, &flat64(&p, e), &x, &rows, loss == Loss::Xent, 1e-4);
                    let want = matvec(&h, &member(&v, e, 2));
                    let err = rel(&member(&got, e, 2), &want);
                    // f32 products against f64 second differences (error ~1e-6).
                    assert!(
                        err < 1e-4,
                        "{arch} {loss:?} member {e} on {}: relative error {err:e}",
                        dev.describe()
                    );
                }
            }
        }
    }
}

#[test]
fn hvp_matches_central_differences_of_the_gradient() {
    let (x, y) = (data(4, 6, 3), data(5, 6, 2));
    for arch in [ARCHS[0], ARCHS[2]] {
        let p = Params::init(&net(arch, 2, None), 3).unwrap();
        let v = random_direction(&p, 4);
        let h = 1e-3f32;
        let shifted = |s: f32| {
            let mut q = p.clone();
            let mut k = 0;
            for l in 0..q.weights.len() {
                q.weights[l]
                    .iter_mut()
                    .zip(&v[k])
                    .for_each(|(a, b)| *a += s * b);
                k += 1;
                if let Some(b) = q.biases[l].as_mut() {
                    b.iter_mut().zip(&v[k]).for_each(|(a, d)| *a += s * d);
                    k += 1;
                }
            }
            q
        };
        for dev in backends() {
            let grad = |q: &Params| {
                let ens = Ensemble::new(dev.as_ref(), q).unwrap();
                let mut hvp = Hvp::new(&ens, &x, &y, Loss::Mse).unwrap();
                hvp.prepare().unwrap();
                hvp.gradient().unwrap()
            };
            let (up, down) = (grad(&shifted(h)), grad(&shifted(-h)));
            let got = hvp_on(dev.as_ref(), &p, &x, &y, Loss::Mse, &v);
            for e in 0..2 {
                let fd: Vec<f64> = member(&up, e, 2)
                    .iter()
                    .zip(member(&down, e, 2))
                    .map(|(a, b)| (a - b) / (2.0 * h as f64))
                    .collect();
                let err = rel(&member(&got, e, 2), &fd);
                // Truncation ~h^2 |v|^2 (2.8e-3 at h = 1e-2) and f32 gradients
                // differenced over 2h.
                assert!(
                    err < 2e-3,
                    "{arch} member {e} on {}: {err:e}",
                    dev.describe()
                );
            }
        }
    }
}

#[test]
fn hvp_is_symmetric() {
    let (x, y) = (data(6, 6, 3), labels(7, 6));
    let p = Params::init(&net(ARCHS[3], 3, None), 8).unwrap();
    let (v, w) = (random_direction(&p, 1), random_direction(&p, 2));
    for dev in backends() {
        let hv = hvp_on(dev.as_ref(), &p, &x, &y, Loss::Xent, &v);
        let hw = hvp_on(dev.as_ref(), &p, &x, &y, Loss::Xent, &w);
        for e in 0..3 {
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(s, t)| s * t).sum::<f64>();
            let (ve, we) = (member(&v, e, 3), member(&w, e, 3));
            let (hve, hwe) = (member(&hv, e, 3), member(&hw, e, 3));
            let (a, b) = (dot(&ve, &hwe), dot(&we, &hve));
            let scale = norm(&ve) * norm(&hwe);
            assert!(
                (a - b).abs() < 1e-5 * scale,
                "member {e} on {}: v'Hw {a} vs w'Hv {b}",
                dev.describe()
            );
        }
    }
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a dense symmetric matrix.
fn dense_eigen(h: &[Vec<f64>]) -> (Vec<f64>, faer::Mat<f64>) {
    let n = h.len();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| h[i][j]);
    let eig = m.self_adjoint_eigen(faer::Side::Lower).unwrap();
    ((0..n).map(|i| eig.S()[i]).collect(), eig.U().to_owned())
}

#[test]
fn lanczos_finds_the_top_of_the_dense_spectrum_and_the_trace() {
    let (x, y) = (data(9, 8, 3), data(10, 8, 2));
    let p = Params::init(&net(ARCHS[2], 2, None), 12).unwrap();
    let n_params = flat64(&p, 0).len();
    for dev in backends() {
        let ens = Ensemble::new(dev.as_ref(), &p).unwrap();
        let mut hvp = Hvp::new(&ens, &x, &y, Loss::Mse).unwrap();
        hvp.prepare().unwrap();
        // A partial Krylov space (the trace by Hutchinson on the rest), then
        // the whole one (every eigenvalue asked for: every step runs).
        for (iters, top) in [(24, 3), (n_params, n_params)] {
            let cfg = SpectrumConfig {
                top,
                max_iters: iters,
                tol: 1e-5,
                probes: 30,
                seed: 1,
            };
            let s = spectrum(&mut hvp, &cfg, None, true).unwrap();
            let top_vectors = s.eigenvectors.as_ref().unwrap()[0]
                .members(dev.as_ref())
                .unwrap();
            for (e, m) in s.members.iter().enumerate() {
                let h = hessian_at(&p, &flat64(&p, e), &x, &y, false, 1e-4);
                let (vals, u) = dense_eigen(&h);
                let want: Vec<f64> = vals.iter().rev().take(cfg.top).cloned().collect();
                assert_eq!(m.eigenvalues.len(), cfg.top);
                let scale = vals.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                for (got, want) in m.eigenvalues.iter().zip(&want) {
                    assert!(
                        (got - want).abs() < 1e-4 * scale,
                        "{} iters {iters} member {e}: {got} vs {want}",
                        dev.describe(),
                    );
                }
                assert!(m.converged && m.hvps <= iters + cfg.probes, "{m:?}");
                // The top Ritz vector is the top eigenvector (up to sign).
                let n = n_params;
                let y0 = &top_vectors[e];
                let overlap: f64 = (0..n).map(|i| y0[i] as f64 * u[(i, n - 1)]).sum();
                assert!((overlap.abs() - 1.0).abs() < 1e-3, "overlap {overlap}");
                let trace: f64 = vals.iter().sum();
                let (t, se) = (m.trace.unwrap(), m.trace_stderr.unwrap());
                let tol = if iters == n {
                    1e-4 * scale
                } else {
                    4.0 * se + 1e-4 * scale
                };
                assert!(
                    (t - trace).abs() < tol,
                    "{} iters {iters}: trace {t} +- {se} vs {trace}",
                    dev.describe()
                );
            }
        }
    }
}

#[test]
fn device_products_and_spectra_match_the_cpu() {
    let Some(g) = common::gpu() else { return };
    let x = data(13, 16, 3);
    for (arch, loss, y) in [
        (ARCHS[2], Loss::Mse, data(14, 16, 2)),
        (ARCHS[3], Loss::Xent, labels(15, 16)),
    ] {
        let p = Params::init(&net(arch, 4, Some(Parameterization::Mup)), 16).unwrap();
        let v = random_direction(&p, 17);
        let cpu = hvp_on(&widenet::cpu::CpuBackend, &p, &x, &y, loss, &v);
        let dev = hvp_on(g.as_ref(), &p, &x, &y, loss, &v);
        for e in 0..4 {
            let err = rel(&member(&dev, e, 4), &member(&cpu, e, 4));
            assert!(err < 1e-5, "{arch} {loss:?} member {e}: {err:e}");
        }
        let cfg = SpectrumConfig {
            top: 2,
            max_iters: 40,
            tol: 1e-5,
            probes: 4,
            seed: 3,
        };
        let spectra: Vec<Vec<f64>> = [g.as_ref() as &dyn Backend, &widenet::cpu::CpuBackend]
            .iter()
            .map(|d| {
                let ens = Ensemble::new(*d, &p).unwrap();
                let mut hvp = Hvp::new(&ens, &x, &y, loss).unwrap();
                hvp.prepare().unwrap();
                let s = spectrum(&mut hvp, &cfg, None, false).unwrap();
                s.members
                    .iter()
                    .flat_map(|m| m.eigenvalues.clone())
                    .collect()
            })
            .collect();
        for (a, b) in spectra[0].iter().zip(&spectra[1]) {
            assert!((a - b).abs() < 1e-4 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
}

/// A linear network without bias: `f = m_w x W^T`, `d_out` outputs.
fn linear(d_in: usize, d_out: usize, p: Parameterization) -> NetSpec {
    NetSpec {
        arch: Arch::parse(&format!("Dense({d_out}, W_std=1.5)")).unwrap(),
        d_in,
        ensemble: 2,
        parameterization: Some(p),
        base_width: 64,
    }
}

#[test]
fn the_hessian_of_a_linear_model_under_mse_is_xtx_over_n() {
    let (n, d, o) = (7, 5, 3);
    let x = data(20, n, d);
    let y = data(21, n, o);
    let gram: Vec<Vec<f64>> = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| (0..n).map(|r| x.at(r, i) as f64 * x.at(r, j) as f64).sum())
                .collect()
        })
        .collect();
    for (par, mult) in [
        (Parameterization::Standard, 1.0),
        (Parameterization::Ntk, 1.5 / (d as f64).sqrt()),
    ] {
        let p = Params::init(&linear(d, o, par), 22).unwrap();
        let v = random_direction(&p, 23);
        for dev in backends() {
            let got = hvp_on(dev.as_ref(), &p, &x, &y, Loss::Mse, &v);
            for e in 0..2 {
                let ve = member(&v, e, 2);
                // H = mult^2 (I_o kron X'X) / (n o): each output row of W on its own.
                let want: Vec<f64> = (0..o * d)
                    .map(|k| {
                        let (row, i) = (k / d, k % d);
                        (0..d).map(|j| gram[i][j] * ve[row * d + j]).sum::<f64>() * mult * mult
                            / (n * o) as f64
                    })
                    .collect();
                let err = rel(&member(&got, e, 2), &want);
                assert!(
                    err < 1e-5,
                    "{par:?} member {e} on {}: {err:e}",
                    dev.describe()
                );
            }
        }
    }
}

#[test]
fn gradient_descent_on_a_quadratic_diverges_above_two_over_lambda() {
    let (n, d) = (16, 6);
    let x = data(30, n, d);
    let y = data(31, n, 1);
    let p = Params::init(&linear(d, 1, Parameterization::Standard), 32).unwrap();
    for dev in backends() {
        let lambda = {
            let ens = Ensemble::new(dev.as_ref(), &p).unwrap();
            let mut hvp = Hvp::new(&ens, &x, &y, Loss::Mse).unwrap();
            hvp.prepare().unwrap();
            let cfg = SpectrumConfig {
                top: 1,
                max_iters: d,
                tol: 1e-6,
                probes: 0,
                seed: 0,
            };
            spectrum(&mut hvp, &cfg, None, false).unwrap().members[0].eigenvalues[0]
        };
        // Member 0 at 0.9 (2 / lambda), member 1 at 1.1 (2 / lambda).
        let mut ens = Ensemble::new(dev.as_ref(), &p).unwrap();
        let mut cfg = TrainConfig::gd(1.0, 60);
        cfg.lr = vec![0.9 * 2.0 / lambda, 1.1 * 2.0 / lambda];
        cfg.log_every = 1;
        let log = train(&mut ens, &x, &y, &cfg, |_, _| {}).unwrap();
        let l = |s: usize, e: usize| log.loss[s][e];
        assert!(
            log.final_loss[0] < l(0, 0) && l(59, 0) <= l(58, 0),
            "below 2/lambda the loss falls: {} -> {}",
            l(0, 0),
            log.final_loss[0]
        );
        // Above it the top mode grows by |1 - eta lambda| = 1.2 per step: the loss by 1.44.
        let ratio = l(59, 1) / l(58, 1);
        assert!(
            (ratio - 1.44).abs() < 0.01,
            "{}: loss ratio per step {ratio} (theory 1.44)",
            dev.describe()
        );
    }
}
