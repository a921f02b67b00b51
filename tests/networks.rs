//! Finite networks of any architecture in ensembles: gradients against
//! central differences of an independent f64 implementation, the empirical NTK
//! against the Jacobian product, device against CPU trajectories, batched
//! member against solo run, divergence isolation, determinism, files, and
//! the infinite-width limit at initialization.

mod common;

use common::reference::{loss64, outputs64};
use widenet::backend::{Backend, Batched, Loss, Rule};
use widenet::kernel::{Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::net::train::{Schedule, TrainConfig, forward, train};
use widenet::net::{Ensemble, MlpSpec, NetSpec, Params};
use widenet::rng::Rng;
use widenet::{Activation, Arch, Parameterization};

fn spec(p: Parameterization, act: Activation, depth: usize, width: usize, e: usize) -> NetSpec {
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
    .net()
}

/// Composed architectures on 3 inputs with 2 outputs: residual blocks,
/// LayerNorm, bias-free and standard layers, mixed widths, every activation.
const COMPOSED: [&str; 4] = [
    "Dense(5, W_std=1.4, b_std=0.2), Residual(Gelu, Dense(5, W_std=1.1, b_std=0.1)), LayerNorm, Tanh, Dense(2, b_std=0.3)",
    "Dense(6), Residual(Gelu, Dense(4), Erf(1.2, 0.7, 0.1), Dense(6, W_std=0.8)), Residual(LeakyRelu(0.2), Dense(6)), Sigmoid, Dense(2)",
    "Dense(4, W_std=1.2, b_std=0.1, parameterization=standard), Tanh, Dense(7, b_std=0.2, parameterization=standard), ABRelu(-0.5, 1.5), Dense(2, parameterization=standard)",
    "Dense(5, b_std=0.1), LayerNorm, Gelu, Residual(Dense(5, b_std=0.1), LayerNorm, Abs, Dense(5)), Dense(2, b_std=0.1)",
];

fn composed(arch: &str, e: usize, p: Option<Parameterization>) -> NetSpec {
    NetSpec {
        arch: Arch::parse(arch).unwrap(),
        d_in: 3,
        ensemble: e,
        parameterization: p,
        base_width: 4,
    }
}

fn data(seed: u64, n: usize, d: usize) -> Matrix<f32> {
    let mut r = Rng::new(seed);
    Matrix::from_vec(n, d, r.normals_f32(n * d)).unwrap()
}

/// Every parameter tensor of a parameter set: (name, values).
fn tensors(p: &mut Params) -> Vec<(String, &mut Vec<f32>)> {
    let mut out = Vec::new();
    for (l, (w, b)) in p.weights.iter_mut().zip(p.biases.iter_mut()).enumerate() {
        out.push((format!("layers.{l}.weight"), w));
        if let Some(b) = b {
            out.push((format!("layers.{l}.bias"), b));
        }
    }
    out
}

fn grads_on(dev: &dyn Backend, p: &Params, x: &Matrix<f32>, y: &Matrix<f32>) -> Vec<Vec<f32>> {
    let ens = Ensemble::new(dev, p).unwrap();
    let xs = dev.upload(x.data()).unwrap();
    let ys = dev.upload(y.data()).unwrap();
    let mut act = ens.activations(x.rows()).unwrap();
    let mut g = ens.grads(x.rows()).unwrap();
    ens.forward(&xs, &mut act).unwrap();
    let e = p.spec.ensemble;
    let mut rows = dev.zeros(e * x.rows()).unwrap();
    dev.loss_grad(
        Loss::Mse,
        Batched::new(e, x.rows(), p.spec.d_out()),
        act.output(),
        &ys,
        g.output_grad(),
        &mut rows,
    )
    .unwrap();
    ens.backward(&xs, &act, &mut g).unwrap();
    let mut out = Vec::new();
    for (w, b) in g.w.iter().zip(&g.b) {
        out.push(dev.read(w).unwrap());
        if let Some(b) = b {
            out.push(dev.read(b).unwrap());
        }
    }
    out
}

fn backends() -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![Box::new(widenet::cpu::CpuBackend)];
    if common::gpu().is_some() {
        v.push(Box::new(common::open_test_gpu().unwrap()));
    }
    v
}

/// Every gradient of every member against central differences of the f64 loss.
fn check_gradients(params: &Params, x: &Matrix<f32>, y: &Matrix<f32>, what: &str) {
    for dev in backends() {
        let got = grads_on(dev.as_ref(), params, x, y);
        let names: Vec<String> = tensors(&mut params.clone())
            .into_iter()
            .map(|t| t.0)
            .collect();
        for (k, g) in got.iter().enumerate() {
            for idx in 0..g.len() {
                let e = idx / (g.len() / params.spec.ensemble);
                let h = 1e-3;
                let mut pp = params.clone();
                tensors(&mut pp)[k].1[idx] += h as f32;
                let up = loss64(&pp, e, x, y);
                tensors(&mut pp)[k].1[idx] -= 2.0 * h as f32;
                let down = loss64(&pp, e, x, y);
                // The step actually taken in f32.
                let v = tensors(&mut pp)[k].1[idx] as f64;
                let fd = (up - down) / ((v + 2.0 * h) - v);
                let err = (g[idx] as f64 - fd).abs();
                assert!(
                    err < 2e-3 * fd.abs().max(1e-2),
                    "{what} on {}: {}[{idx}]: {} vs fd {fd}",
                    dev.describe(),
                    names[k],
                    g[idx]
                );
            }
        }
    }
}

#[test]
fn gradients_match_central_differences() {
    let (x, y) = (data(1, 4, 3), data(2, 4, 2));
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
            let params = Params::init(&spec(p, act, 2, 5, 2), 7).unwrap();
            check_gradients(&params, &x, &y, &format!("{p:?} {act}"));
        }
    }
}

#[test]
fn gradients_of_composed_networks_match_central_differences() {
    let (x, y) = (data(3, 5, 3), data(4, 5, 2));
    for arch in COMPOSED {
        for p in [None, Some(Parameterization::Mup)] {
            let params = Params::init(&composed(arch, 2, p), 9).unwrap();
            check_gradients(&params, &x, &y, &format!("{arch} ({p:?})"));
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
fn device_and_cpu_trajectories_agree_for_tens_of_steps() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = (data(3, 24, 3), data(4, 24, 2));
    let adam = Rule::Adam {
        b1: 0.9,
        b2: 0.999,
        eps: 1e-8,
    };
    let cases = [
        (
            Rule::Sgd,
            0.2,
            spec(Parameterization::Ntk, Activation::Tanh, 2, 32, 3),
        ),
        (
            Rule::Momentum { mu: 0.9 },
            0.05,
            spec(Parameterization::Mup, Activation::Tanh, 2, 32, 3),
        ),
        (
            adam,
            0.01,
            spec(Parameterization::Ntk, Activation::Tanh, 2, 32, 3),
        ),
        (Rule::Sgd, 0.1, composed(COMPOSED[0], 3, None)),
        (adam, 0.01, composed(COMPOSED[3], 3, None)),
    ];
    for (rule, lr, s) in cases {
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
        let what = format!("{rule:?} {}", s.arch);
        for l in 0..runs[0].0.weights.len() {
            let e = rel(&runs[0].0.weights[l], &runs[1].0.weights[l]);
            assert!(
                e < 1e-4,
                "{what} layer {l}: device and CPU parameters differ by {e:e} after 30 steps"
            );
        }
        let (a, b) = (&runs[0].1.final_loss, &runs[1].1.final_loss);
        for (la, lb) in a.iter().zip(b) {
            assert!(
                (la - lb).abs() < 1e-4 * lb.abs().max(1e-3),
                "{what}: final loss {la} vs {lb}"
            );
        }
        // Training lowered every member's loss.
        for (f, l) in a.iter().zip(&runs[0].1.loss[0]) {
            assert!(f < l, "{what}: loss {l} -> {f}");
        }
    }
}

fn device() -> Box<dyn Backend> {
    match common::gpu() {
        Some(_) => Box::new(common::open_test_gpu().unwrap()),
        None => Box::new(widenet::cpu::CpuBackend),
    }
}

#[test]
fn a_member_trained_in_the_ensemble_equals_it_trained_alone() {
    let dev = device();
    let (x, y) = (data(5, 16, 3), data(6, 16, 2));
    let adam = Rule::Adam {
        b1: 0.9,
        b2: 0.99,
        eps: 1e-8,
    };
    for s in [
        spec(Parameterization::Standard, Activation::RELU, 2, 24, 4),
        composed(COMPOSED[0], 4, None),
    ] {
        let init = Params::init(&s, 21).unwrap();
        let c = TrainConfig {
            batch_size: Some(4),
            ..cfg(adam, 0.01, 20)
        };
        let mut ens = Ensemble::new(dev.as_ref(), &init).unwrap();
        train(&mut ens, &x, &y, &c, |_, _| {}).unwrap();
        let all = ens.params().unwrap();
        let mut solo = Ensemble::new(dev.as_ref(), &init.member(2).unwrap()).unwrap();
        train(&mut solo, &x, &y, &c, |_, _| {}).unwrap();
        assert_eq!(
            all.member(2).unwrap(),
            solo.params().unwrap(),
            "{}: member 2 of the ensemble differs from its solo run",
            s.arch
        );
    }
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
    for m in [0, 2] {
        let member = p.member(m).unwrap();
        assert!(member.weights.iter().flatten().all(|v| v.is_finite()));
    }
}

#[test]
fn training_is_deterministic() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = (data(9, 32, 3), data(10, 32, 2));
    for s in [
        spec(Parameterization::Ntk, Activation::Gelu, 2, 40, 3),
        composed(COMPOSED[1], 3, None),
    ] {
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
}

#[test]
fn parameters_round_trip_and_bad_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("widenet-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let erf = Activation::Erf {
        a: 1.0,
        b: 2.0,
        c: 0.0,
    };
    for s in [
        spec(Parameterization::Mup, erf, 2, 6, 3),
        composed(COMPOSED[1], 3, None),
    ] {
        let p = Params::init(&s, 1).unwrap();
        let path = dir.join("p.safetensors");
        p.save(&path).unwrap();
        assert_eq!(Params::load(&path).unwrap(), p);
        // The same seed gives the same parameters; another seed does not.
        assert_eq!(Params::init(&s, 1).unwrap(), p);
        assert_ne!(Params::init(&s, 2).unwrap(), p);
        // A member does not depend on the ensemble's size.
        assert_eq!(
            Params::init(&s.with_ensemble(5), 1)
                .unwrap()
                .member(2)
                .unwrap(),
            p.member(2).unwrap()
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(dir.join("trunc.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
        assert!(Params::load(&dir.join("trunc.safetensors")).is_err());
    }
    std::fs::write(dir.join("junk.safetensors"), b"junk").unwrap();
    assert!(Params::load(&dir.join("junk.safetensors")).is_err());
    let s = spec(Parameterization::Mup, erf, 2, 6, 3);
    let p = Params::init(&s, 1).unwrap();
    let other = Params::init(&spec(Parameterization::Mup, erf, 1, 6, 3), 1).unwrap();
    // Tensors of a depth-1 network under a depth-2 spec: missing layers.
    let mut q = other.clone();
    q.spec = s.clone();
    let err = q.save(&dir.join("q.safetensors")).unwrap_err().to_string();
    assert!(err.contains("tensors"), "{err}");
    assert!(!dir.join("q.safetensors").exists());
    assert!(Ensemble::new(&widenet::cpu::CpuBackend, &q).is_err());
    // Fewer tensors than layers.
    let mut short = p.clone();
    short.weights.pop();
    assert!(short.save(&dir.join("s.safetensors")).is_err());
    assert!(Ensemble::new(&widenet::cpu::CpuBackend, &short).is_err());
    // A bias-free layer has no bias tensor in the file.
    let nb = Params::init(&composed(COMPOSED[1], 2, None), 3).unwrap();
    nb.save(&dir.join("nb.safetensors")).unwrap();
    let st = std::fs::read(dir.join("nb.safetensors")).unwrap();
    let names = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .len();
    assert_eq!(names, nb.weights.len() + nb.biases.iter().flatten().count());
    assert!(nb.biases.iter().any(Option::is_none));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn outputs_match_the_independent_forward_pass() {
    let x = data(13, 6, 3);
    for a in COMPOSED {
        let params = Params::init(&composed(a, 3, None), 5).unwrap();
        for dev in backends() {
            let ens = Ensemble::new(dev.as_ref(), &params).unwrap();
            let out = forward(&ens, &x).unwrap();
            let n = out.len() / 3;
            for e in 0..3 {
                let want = outputs64(&params, e, &x);
                let err = common::rel_err(&out[e * n..(e + 1) * n], &want);
                assert!(
                    err < 1e-5,
                    "{a} on {}: member {e} relative error {err:e}",
                    dev.describe()
                );
            }
        }
    }
}

#[test]
fn init_variance_matches_the_nngp_of_the_same_architecture() {
    // 1024 members of width 128: the variance of the output over members at a
    // point is the NNGP there. The sample variance of 1024 draws has a relative
    // standard error of about 4.4% (more with the heavier tails of a finite
    // network), the finite-width correction is O(1/128): 15% is over 3
    // standard errors, and a wrong scale (a factor of 2, or sqrt 2) fails.
    let x = data(12, 3, 3);
    let dev = device();
    let archs = [
        spec(Parameterization::Ntk, Activation::RELU, 2, 128, 1).arch,
        spec(Parameterization::Standard, Activation::RELU, 2, 128, 1).arch,
        Arch::parse("Dense(128, W_std=1.3, b_std=0.2), Residual(Relu, Dense(128, W_std=0.9)), LayerNorm, Tanh, Dense(1, b_std=0.1)").unwrap(),
    ];
    for arch in archs {
        let arch = Arch::parse(&arch.with_width(128).to_json().to_string()).unwrap();
        let s = NetSpec {
            arch: Arch {
                layers: {
                    let mut l = arch.layers.clone();
                    if let Some(widenet::arch::Layer::Dense(d)) = l.last_mut() {
                        d.out = 1;
                    }
                    l
                },
            },
            d_in: 3,
            ensemble: 1024,
            parameterization: None,
            base_width: 4,
        };
        let params = Params::init(&s, 4).unwrap();
        let ens = Ensemble::new(dev.as_ref(), &params).unwrap();
        let out = forward(&ens, &x).unwrap();
        let k = kernels_f64(&s.arch, &x.to_f64(), None, Want::NNGP)
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
                "{} point {i}: variance {var}, NNGP {want}",
                s.arch
            );
        }
    }
}

#[test]
fn empirical_ntk_equals_the_jacobian_product() {
    use widenet::net::empirical::empirical_kernels;
    let x = data(30, 5, 3);
    let specs = [
        spec(Parameterization::Ntk, Activation::Tanh, 2, 6, 2),
        spec(Parameterization::Standard, Activation::Tanh, 2, 6, 2),
        spec(Parameterization::MeanField, Activation::Tanh, 2, 6, 2),
        composed(COMPOSED[0], 2, None),
        composed(COMPOSED[3], 2, None),
    ];
    for s in specs {
        let params = Params::init(&s, 8).unwrap();
        let d_out = s.d_out();
        for dev in backends() {
            let mut ens = Ensemble::new(dev.as_ref(), &params).unwrap();
            let k = empirical_kernels(&mut ens, &x).unwrap();
            for e in 0..s.ensemble {
                // Jacobian by central differences: J[param][r * d_out + o].
                let mut jac: Vec<Vec<f64>> = Vec::new();
                let count = tensors(&mut params.clone()).len();
                for t in 0..count {
                    let len = tensors(&mut params.clone())[t].1.len() / s.ensemble;
                    for i in 0..len {
                        let idx = e * len + i;
                        let h = 1e-3f32;
                        let mut pp = params.clone();
                        tensors(&mut pp)[t].1[idx] += h;
                        let up = outputs64(&pp, e, &x);
                        tensors(&mut pp)[t].1[idx] -= 2.0 * h;
                        let down = outputs64(&pp, e, &x);
                        jac.push(
                            up.iter()
                                .zip(&down)
                                .map(|(a, b)| (a - b) / (2.0 * h as f64))
                                .collect(),
                        );
                    }
                }
                let n = x.rows();
                for i in 0..n {
                    for j in 0..n {
                        let want: f64 = (0..d_out)
                            .map(|o| {
                                jac.iter()
                                    .map(|c| c[i * d_out + o] * c[j * d_out + o])
                                    .sum::<f64>()
                            })
                            .sum::<f64>()
                            / d_out as f64;
                        let got = k.ntk[(e * n + i) * n + j] as f64;
                        assert!(
                            (got - want).abs() < 2e-3 * want.abs().max(1.0),
                            "{} on {} member {e} ({i},{j}): {got} vs {want}",
                            s.arch,
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
    use widenet::net::empirical::{empirical_kernels, kernel_distance};
    let Some(g) = common::gpu() else { return };
    let x = data(31, 6, 3);
    for template in [
        spec(Parameterization::Ntk, Activation::RELU, 2, 64, 8).arch,
        Arch::parse("Dense(64, W_std=1.3, b_std=0.2), Residual(Relu, Dense(64, W_std=0.9)), LayerNorm, Relu, Dense(1, b_std=0.1)").unwrap(),
    ] {
        let mut last = (f64::INFINITY, f64::INFINITY);
        for width in [64usize, 1024] {
            let mut arch = template.with_width(width);
            if let Some(widenet::arch::Layer::Dense(d)) = arch.layers.last_mut() {
                d.out = 1;
            }
            let want = kernels_f64(&arch, &x.to_f64(), None, Want::BOTH).unwrap();
            let (wn, wt): (Vec<f32>, Vec<f32>) = (
                want.nngp.unwrap().data().iter().map(|&v| v as f32).collect(),
                want.ntk.unwrap().data().iter().map(|&v| v as f32).collect(),
            );
            let s = NetSpec { arch: arch.clone(), d_in: 3, ensemble: 8, parameterization: None, base_width: 4 };
            let mut ens = Ensemble::new(g.as_ref(), &Params::init(&s, 2).unwrap()).unwrap();
            let k = empirical_kernels(&mut ens, &x).unwrap();
            let nngp = k.nngp.unwrap();
            let n2 = 36;
            let mean_distance = |v: &[f32], w: &[f32]| {
                (0..8).map(|e| kernel_distance(&v[e * n2..(e + 1) * n2], w)).sum::<f64>() / 8.0
            };
            let (d_ntk, d_nngp) = (mean_distance(&k.ntk, &wt), mean_distance(&nngp, &wn));
            // Finite-width fluctuations shrink like width^-1/2: a factor 4 from 64 to 1024.
            assert!(d_ntk < last.0 && d_nngp < last.1, "{arch}: {d_ntk} {d_nngp} after {last:?}");
            if width == 1024 {
                assert!(d_ntk < 0.1 && d_nngp < 0.1, "{arch}: NTK distance {d_ntk}, NNGP distance {d_nngp}");
                assert!(last.0 / d_ntk > 2.0, "{arch}: NTK distance fell only from {} to {d_ntk}", last.0);
            }
            last = (d_ntk, d_nngp);
        }
    }
}
