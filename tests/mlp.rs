//! MLP ensembles: gradients against finite differences of an independent f64
//! implementation, GPU against CPU trajectories, batched member against solo
//! run, divergence isolation, determinism, files, and the infinite-width limit
//! at initialization.

mod common;

use widenet::Activation;
use widenet::backend::{Backend, Batched, Loss, Rule};
use widenet::kernel::{Architecture, Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::mlp::ensemble::Ensemble;
use widenet::mlp::params::Params;
use widenet::mlp::train::{Schedule, TrainConfig, forward, train};
use widenet::mlp::{MlpSpec, Parameterization};
use widenet::rng::Rng;

fn spec(p: Parameterization, act: Activation, depth: usize, width: usize, e: usize) -> MlpSpec {
    MlpSpec {
        d_in: 3,
        width,
        depth,
        d_out: 2,
        activation: act,
        parameterization: p,
        w_std: 1.3,
        b_std: 0.4,
        base_width: 4,
        ensemble: e,
    }
}

fn data(seed: u64, n: usize, d: usize) -> Matrix<f32> {
    let mut r = Rng::new(seed);
    Matrix::from_vec(n, d, r.normals_f32(n * d)).unwrap()
}

/// MSE loss of member `e`, from the independent f64 forward pass.
fn loss64(p: &Params, e: usize, x: &Matrix<f32>, y: &Matrix<f32>) -> f64 {
    let f = outputs64(p, e, x);
    let total: f64 = f
        .iter()
        .zip(&y.data)
        .map(|(a, b)| (a - *b as f64).powi(2))
        .sum();
    total / (2.0 * (x.rows * p.spec.d_out) as f64)
}

fn grads_on(
    dev: &dyn Backend,
    p: &Params,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let ens = Ensemble::new(dev, p).unwrap();
    let xs = dev.upload(&x.data).unwrap();
    let ys = dev.upload(&y.data).unwrap();
    let mut act = ens.activations(x.rows).unwrap();
    let mut g = ens.grads(x.rows).unwrap();
    ens.forward(&xs, &mut act).unwrap();
    let e = p.spec.ensemble;
    let mut rows = dev.zeros(e * x.rows).unwrap();
    dev.loss_grad(
        Loss::Mse,
        Batched::new(e, x.rows, p.spec.d_out),
        &act.z[p.spec.depth],
        &ys,
        g.output_grad(),
        &mut rows,
    )
    .unwrap();
    ens.backward(&xs, &act, &mut g).unwrap();
    (
        g.w.iter().map(|b| dev.read(b).unwrap()).collect(),
        g.b.iter().map(|b| dev.read(b).unwrap()).collect(),
    )
}

#[test]
fn gradients_match_central_differences() {
    let (x, y) = (data(1, 4, 3), data(2, 4, 2));
    let g = common::gpu();
    let cpu = widenet::cpu::CpuBackend;
    for p in [
        Parameterization::Ntk,
        Parameterization::Standard,
        Parameterization::Mup,
        Parameterization::MeanField,
    ] {
        for act in [
            Activation::Tanh,
            Activation::Gelu,
            Activation::Erf {
                a: 1.2,
                b: 0.7,
                c: 0.1,
            },
            Activation::AbRelu { a: 0.2, b: 1.0 },
        ] {
            let s = spec(p, act, 2, 5, 2);
            let params = Params::init(&s, 7).unwrap();
            let mut devs: Vec<&dyn Backend> = vec![&cpu];
            if let Some(g) = g.as_ref() {
                devs.push(g.as_ref());
            }
            for dev in devs {
                let (gw, gb) = grads_on(dev, &params, &x, &y);
                for l in 0..=s.depth {
                    for (which, got) in [("weight", &gw[l]), ("bias", &gb[l])] {
                        for idx in 0..got.len() {
                            let e = idx / (got.len() / s.ensemble);
                            let h = 1e-3;
                            let mut pp = params.clone();
                            let t = if which == "weight" {
                                &mut pp.weights[l]
                            } else {
                                &mut pp.biases[l]
                            };
                            t[idx] += h as f32;
                            let up = loss64(&pp, e, &x, &y);
                            let t = if which == "weight" {
                                &mut pp.weights[l]
                            } else {
                                &mut pp.biases[l]
                            };
                            t[idx] -= 2.0 * h as f32;
                            let down = loss64(&pp, e, &x, &y);
                            // The step actually taken in f32.
                            let t = if which == "weight" {
                                &pp.weights[l]
                            } else {
                                &pp.biases[l]
                            };
                            let step = (t[idx] as f64 + 2.0 * h) - t[idx] as f64;
                            let fd = (up - down) / step;
                            let err = (got[idx] as f64 - fd).abs();
                            assert!(
                                err < 2e-3 * fd.abs().max(1e-2),
                                "{p:?} {act} {} layer {l} {which}[{idx}]: {} vs fd {fd}",
                                dev.describe(),
                                got[idx]
                            );
                        }
                    }
                }
            }
        }
    }
}

fn cfg(rule: Rule, lr: f64, steps: usize) -> TrainConfig {
    TrainConfig {
        rule,
        lr: vec![lr],
        steps,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: 5,
        seed: 3,
    }
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let n: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let d: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (n / d).sqrt()
}

#[test]
fn gpu_and_cpu_trajectories_agree_for_tens_of_steps() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = (data(3, 24, 3), data(4, 24, 2));
    for (rule, lr) in [
        (Rule::Sgd, 0.2),
        (Rule::Momentum { mu: 0.9 }, 0.05),
        (
            Rule::Adam {
                b1: 0.9,
                b2: 0.999,
                eps: 1e-8,
            },
            0.01,
        ),
    ] {
        for p in [Parameterization::Ntk, Parameterization::Mup] {
            let s = spec(p, Activation::Tanh, 2, 32, 3);
            let init = Params::init(&s, 11).unwrap();
            let mut runs = Vec::new();
            for dev in [g.as_ref() as &dyn Backend, &widenet::cpu::CpuBackend] {
                let mut ens = Ensemble::new(dev, &init).unwrap();
                let mut c = cfg(rule, lr, 30);
                c.batch_size = Some(8);
                c.schedule = Schedule::Cosine;
                let log = train(&mut ens, &x, &y, &c, |_, _| {}).unwrap();
                runs.push((ens.params().unwrap(), log));
            }
            for l in 0..=s.depth {
                let e = rel(&runs[0].0.weights[l], &runs[1].0.weights[l]);
                assert!(
                    e < 1e-4,
                    "{rule:?} {p:?} layer {l}: GPU and CPU parameters differ by {e:e} after 30 steps"
                );
            }
            let (a, b) = (&runs[0].1.final_loss, &runs[1].1.final_loss);
            for (la, lb) in a.iter().zip(b) {
                assert!(
                    (la - lb).abs() < 1e-4 * lb.abs().max(1e-3),
                    "{rule:?} {p:?}: final loss {la} vs {lb}"
                );
            }
            // Training lowered every member's loss.
            let first = &runs[0].1.loss[0];
            for (f, l) in a.iter().zip(first) {
                assert!(f < l, "{rule:?} {p:?}: loss {l} -> {f}");
            }
        }
    }
}

#[test]
fn a_member_trained_in_the_ensemble_equals_it_trained_alone() {
    let dev: Box<dyn Backend> = match common::gpu() {
        Some(_) => Box::new(
            widenet::gpu::GpuBackend::open(&widenet::DeviceChoice::Gpu(None))
                .unwrap()
                .unwrap(),
        ),
        None => Box::new(widenet::cpu::CpuBackend),
    };
    let (x, y) = (data(5, 16, 3), data(6, 16, 2));
    let s = spec(Parameterization::Standard, Activation::RELU, 2, 24, 4);
    let init = Params::init(&s, 21).unwrap();
    let c = TrainConfig {
        batch_size: Some(4),
        ..cfg(
            Rule::Adam {
                b1: 0.9,
                b2: 0.99,
                eps: 1e-8,
            },
            0.01,
            20,
        )
    };
    let mut ens = Ensemble::new(dev.as_ref(), &init).unwrap();
    train(&mut ens, &x, &y, &c, |_, _| {}).unwrap();
    let all = ens.params().unwrap();
    let mut solo = Ensemble::new(dev.as_ref(), &init.member(2).unwrap()).unwrap();
    train(&mut solo, &x, &y, &c, |_, _| {}).unwrap();
    let solo = solo.params().unwrap();
    assert_eq!(
        all.member(2).unwrap(),
        solo,
        "member 2 of the ensemble differs from its solo run"
    );
}

#[test]
fn a_diverging_member_is_frozen_and_the_others_go_on() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = (data(7, 16, 3), data(8, 16, 2));
    let s = spec(Parameterization::Standard, Activation::RELU, 1, 64, 3);
    let init = Params::init(&s, 5).unwrap();
    let mut ens = Ensemble::new(g.as_ref(), &init).unwrap();
    let c = TrainConfig {
        lr: vec![0.05, 1e4, 0.05],
        ..cfg(Rule::Sgd, 0.0, 40)
    };
    let log = train(&mut ens, &x, &y, &c, |_, _| {}).unwrap();
    assert!(log.diverged_at[1].is_some(), "{:?}", log.diverged_at);
    assert_eq!((log.diverged_at[0], log.diverged_at[2]), (None, None));
    assert!(log.final_loss[1].is_nan());
    assert!(log.final_loss[0].is_finite() && log.final_loss[2].is_finite());
    // Members 0 and 2 are untouched by member 1's NaNs.
    let p = ens.params().unwrap();
    for l in 0..=s.depth {
        assert!(
            p.member(0).unwrap().weights[l]
                .iter()
                .all(|v| v.is_finite())
        );
        assert!(
            p.member(2).unwrap().weights[l]
                .iter()
                .all(|v| v.is_finite())
        );
    }
}

#[test]
fn training_is_deterministic() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = (data(9, 32, 3), data(10, 32, 2));
    let s = spec(Parameterization::Ntk, Activation::Gelu, 2, 40, 3);
    let run = || {
        let mut ens = Ensemble::new(g.as_ref(), &Params::init(&s, 99).unwrap()).unwrap();
        let c = TrainConfig {
            batch_size: Some(5),
            ..cfg(Rule::Momentum { mu: 0.8 }, 0.1, 25)
        };
        let log = train(&mut ens, &x, &y, &c, |_, _| {}).unwrap();
        (ens.params().unwrap(), log.final_loss)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
}

#[test]
fn parameters_round_trip_and_bad_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("widenet-mlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = spec(
        Parameterization::Mup,
        Activation::Erf {
            a: 1.0,
            b: 2.0,
            c: 0.0,
        },
        2,
        6,
        3,
    );
    let p = Params::init(&s, 1).unwrap();
    let path = dir.join("p.safetensors");
    p.save(&path).unwrap();
    assert_eq!(Params::load(&path).unwrap(), p);
    // The same seed gives the same parameters; another seed does not.
    assert_eq!(Params::init(&s, 1).unwrap(), p);
    assert_ne!(Params::init(&s, 2).unwrap(), p);
    // A member does not depend on the ensemble's size.
    assert_eq!(
        Params::init(&MlpSpec { ensemble: 5, ..s }, 1)
            .unwrap()
            .member(2)
            .unwrap(),
        p.member(2).unwrap()
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(dir.join("trunc.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    assert!(Params::load(&dir.join("trunc.safetensors")).is_err());
    std::fs::write(dir.join("junk.safetensors"), b"junk").unwrap();
    assert!(Params::load(&dir.join("junk.safetensors")).is_err());
    let other = Params::init(&MlpSpec { depth: 1, ..s }, 1).unwrap();
    // Tensors of a depth-1 network under a depth-2 spec: missing layers.
    let mut q = other.clone();
    q.spec = s;
    let err = q.save(&dir.join("q.safetensors")).unwrap_err().to_string();
    assert!(err.contains("tensors"), "{err}");
    assert!(!dir.join("q.safetensors").exists());
    assert!(Ensemble::new(&widenet::cpu::CpuBackend, &q).is_err());
    // Fewer tensors than layers (this used to index out of bounds).
    let mut short = p.clone();
    short.weights.pop();
    assert!(short.save(&dir.join("s.safetensors")).is_err());
    assert!(Ensemble::new(&widenet::cpu::CpuBackend, &short).is_err());
}

#[test]
fn init_variance_matches_the_nngp_of_the_same_flags() {
    // 1024 members of width 128: the variance of the output over members at a
    // point is the NNGP there. The sample variance of 1024 draws has a relative
    // standard error of about 4.4% (more with the heavier tails of a finite
    // ReLU network), the finite-width correction is O(1/128): 15% is over 3
    // standard errors, and a wrong scale (a factor of 2, or sqrt 2) fails.
    let x = data(12, 3, 3);
    for p in [Parameterization::Ntk, Parameterization::Standard] {
        let s = MlpSpec {
            d_out: 1,
            ensemble: 1024,
            ..spec(p, Activation::RELU, 2, 128, 1024)
        };
        let params = Params::init(&s, 4).unwrap();
        let dev: Box<dyn Backend> = match common::gpu() {
            Some(_) => Box::new(
                widenet::gpu::GpuBackend::open(&widenet::DeviceChoice::Gpu(None))
                    .unwrap()
                    .unwrap(),
            ),
            None => Box::new(widenet::cpu::CpuBackend),
        };
        let ens = Ensemble::new(dev.as_ref(), &params).unwrap();
        let out = forward(&ens, &x).unwrap();
        let kp = match p {
            Parameterization::Ntk => widenet::kernel::Parameterization::Ntk,
            _ => widenet::kernel::Parameterization::Standard,
        };
        let arch = Architecture {
            depth: 2,
            activation: Activation::RELU,
            w_std: 1.3,
            b_std: 0.4,
            parameterization: kp,
            width: 128,
            d_in: 3,
        };
        let k = kernels_f64(&arch, &x.to_f64(), None, Want::NNGP)
            .unwrap()
            .nngp
            .unwrap();
        for i in 0..3 {
            let v: Vec<f64> = (0..1024).map(|e| out[e * 3 + i] as f64).collect();
            let mean = v.iter().sum::<f64>() / 1024.0;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 1023.0;
            let want = k.at(i, i);
            assert!(
                (var - want).abs() < 0.15 * want,
                "{p:?} point {i}: variance {var}, NNGP {want}"
            );
        }
    }
}

/// Outputs of member `e` at every point, f64 (independent of the library's passes).
fn outputs64(p: &Params, e: usize, x: &Matrix<f32>) -> Vec<f64> {
    let s = &p.spec;
    let mut out = Vec::new();
    for r in 0..x.rows {
        let mut h: Vec<f64> = x.row(r).iter().map(|&v| v as f64).collect();
        for (l, (fi, fo)) in s.layers().enumerate() {
            let sc = s.scale(l, false);
            let w = &p.weights[l][e * fi * fo..(e + 1) * fi * fo];
            let b = &p.biases[l][e * fo..(e + 1) * fo];
            let z: Vec<f64> = (0..fo)
                .map(|o| {
                    sc.mult_w * (0..fi).map(|i| w[o * fi + i] as f64 * h[i]).sum::<f64>()
                        + sc.mult_b * b[o] as f64
                })
                .collect();
            h = if l < s.depth {
                z.iter().map(|&v| s.activation.apply(v)).collect()
            } else {
                z
            };
        }
        out.extend(h);
    }
    out
}

#[test]
fn empirical_ntk_equals_the_jacobian_product() {
    use widenet::mlp::empirical::empirical_kernels;
    let x = data(30, 5, 3);
    for p in [
        Parameterization::Ntk,
        Parameterization::Standard,
        Parameterization::MeanField,
    ] {
        let s = MlpSpec {
            d_out: 2,
            ..spec(p, Activation::Tanh, 2, 6, 2)
        };
        let params = Params::init(&s, 8).unwrap();
        let g = common::gpu();
        let cpu = widenet::cpu::CpuBackend;
        let mut devs: Vec<&dyn Backend> = vec![&cpu];
        if let Some(g) = g.as_ref() {
            devs.push(g.as_ref());
        }
        for dev in devs {
            let mut ens = Ensemble::new(dev, &params).unwrap();
            let k = empirical_kernels(&mut ens, &x).unwrap();
            for e in 0..s.ensemble {
                // Jacobian by central differences: J[r * d_out + o][param].
                let mut jac: Vec<Vec<f64>> = Vec::new();
                for l in 0..=s.depth {
                    for which in 0..2 {
                        let len = if which == 0 {
                            params.weights[l].len()
                        } else {
                            params.biases[l].len()
                        } / s.ensemble;
                        for i in 0..len {
                            let idx = e * len + i;
                            let h = 1e-3f32;
                            let mut pp = params.clone();
                            let t = if which == 0 {
                                &mut pp.weights[l]
                            } else {
                                &mut pp.biases[l]
                            };
                            t[idx] += h;
                            let up = outputs64(&pp, e, &x);
                            let t = if which == 0 {
                                &mut pp.weights[l]
                            } else {
                                &mut pp.biases[l]
                            };
                            t[idx] -= 2.0 * h;
                            let down = outputs64(&pp, e, &x);
                            jac.push(
                                up.iter()
                                    .zip(&down)
                                    .map(|(a, b)| (a - b) / (2.0 * h as f64))
                                    .collect(),
                            );
                        }
                    }
                }
                let n = x.rows;
                for i in 0..n {
                    for j in 0..n {
                        let want: f64 = (0..s.d_out)
                            .map(|o| {
                                jac.iter()
                                    .map(|col| col[i * s.d_out + o] * col[j * s.d_out + o])
                                    .sum::<f64>()
                            })
                            .sum::<f64>()
                            / s.d_out as f64;
                        let got = k.ntk[(e * n + i) * n + j] as f64;
                        assert!(
                            (got - want).abs() < 2e-3 * want.abs().max(1.0),
                            "{p:?} {} member {e} ({i},{j}): {got} vs {want}",
                            dev.describe()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn wide_empirical_kernels_approach_the_analytic_ones() {
    use widenet::mlp::empirical::{empirical_kernels, kernel_distance};
    let Some(g) = common::gpu() else { return };
    let x = data(31, 6, 3);
    let arch = Architecture {
        depth: 2,
        activation: Activation::RELU,
        w_std: 1.3,
        b_std: 0.4,
        parameterization: widenet::kernel::Parameterization::Ntk,
        width: 1,
        d_in: 3,
    };
    let want = kernels_f64(&arch, &x.to_f64(), None, Want::BOTH).unwrap();
    let (wn, wt): (Vec<f32>, Vec<f32>) = (
        want.nngp.unwrap().data.iter().map(|&v| v as f32).collect(),
        want.ntk.unwrap().data.iter().map(|&v| v as f32).collect(),
    );
    let mut last = (f64::INFINITY, f64::INFINITY);
    for width in [64usize, 1024] {
        let s = MlpSpec {
            d_out: 1,
            ..spec(Parameterization::Ntk, Activation::RELU, 2, width, 8)
        };
        let mut ens = Ensemble::new(g.as_ref(), &Params::init(&s, 2).unwrap()).unwrap();
        let k = empirical_kernels(&mut ens, &x).unwrap();
        let n2 = 36;
        let d_ntk = (0..8)
            .map(|e| kernel_distance(&k.ntk[e * n2..(e + 1) * n2], &wt))
            .sum::<f64>()
            / 8.0;
        let d_nngp = (0..8)
            .map(|e| kernel_distance(&k.nngp[e * n2..(e + 1) * n2], &wn))
            .sum::<f64>()
            / 8.0;
        // Finite-width fluctuations shrink like width^-1/2: a factor 4 from 64 to 1024.
        assert!(
            d_ntk < last.0 && d_nngp < last.1,
            "width {width}: {d_ntk} {d_nngp} after {last:?}"
        );
        if width == 1024 {
            assert!(
                d_ntk < 0.1 && d_nngp < 0.1,
                "width 1024: NTK distance {d_ntk}, NNGP distance {d_nngp}"
            );
            assert!(
                last.0 / d_ntk > 2.0,
                "NTK distance fell only from {} to {d_ntk}",
                last.0
            );
        }
        last = (d_ntk, d_nngp);
    }
}
