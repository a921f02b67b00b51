//! The toy models of superposition: features drawn on the device (the same
//! bits on every backend, a member's independent of its batch), the tied
//! model's gradient against finite differences and across backends, a member
//! trained in a batch against its solo run, resumption, and the experiment's
//! claims on its quick settings.

mod common;

use widenet::backend::{Backend, Batched, Draw, index_bits};
use widenet::experiments::OutDir;
use widenet::experiments::superposition::model::{Member, Output, Shape, TiedModel, loss_f64};
use widenet::experiments::superposition::sweep::ADAM;
use widenet::experiments::superposition::{SuperpositionConfig, run};

fn draw(dev: &dyn Backend, ids: &[u32], sparsity: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let e = ids.len();
    let mut x = common::poisoned(dev, e * rows * cols);
    dev.sparse_features(
        Batched::new(e, rows, cols),
        Draw { seed: 7, step: 3 },
        &dev.upload(&index_bits(ids)).unwrap(),
        &dev.upload(sparsity).unwrap(),
        &mut x,
    )
    .unwrap();
    dev.read(&x).unwrap()
}

backend_tests! {
    fn sparse_features_follow_their_sparsity(dev: &dyn Backend) {
        let (rows, cols) = (4096, 16);
        let sparsity = [0.0, 0.5, 0.9];
        let x = draw(dev, &[11, 12, 13], &sparsity, rows, cols);
        let per = rows * cols;
        for (e, s) in sparsity.iter().enumerate() {
            let m = &x[e * per..(e + 1) * per];
            assert!(m.iter().all(|v| (0.0..1.0).contains(v)), "member {e}: a value outside [0, 1)");
            let zeros = m.iter().filter(|v| **v == 0.0).count() as f64 / per as f64;
            // 65,536 draws: the zero fraction's standard deviation is at most 0.002.
            assert!((zeros - f64::from(*s)).abs() < 0.01, "member {e}: {zeros} zeros for S = {s}");
            let nz: Vec<f64> = m.iter().filter(|v| **v > 0.0).map(|v| f64::from(*v)).collect();
            let mean = nz.iter().sum::<f64>() / nz.len() as f64;
            let var = nz.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nz.len() as f64;
            // Uniform on [0, 1]: mean 1/2, variance 1/12 (standard error of the mean under 0.004).
            assert!((mean - 0.5).abs() < 0.02, "member {e}: mean {mean}");
            assert!((var - 1.0 / 12.0).abs() < 0.01, "member {e}: variance {var}");
        }
    }

    fn a_member_draws_the_same_alone_as_in_a_batch(dev: &dyn Backend) {
        let (rows, cols) = (33, 7);
        let all = draw(dev, &[5, 9, 2], &[0.0, 0.5, 0.99], rows, cols);
        let solo = draw(dev, &[9], &[0.5], rows, cols);
        assert_eq!(solo, all[rows * cols..2 * rows * cols].to_vec());
        // Another step draws other values.
        let mut x = dev.zeros(rows * cols).unwrap();
        dev.sparse_features(
            Batched::new(1, rows, cols),
            Draw { seed: 7, step: 4 },
            &dev.upload(&index_bits(&[9])).unwrap(),
            &dev.upload(&[0.5]).unwrap(),
            &mut x,
        )
        .unwrap();
        assert_ne!(dev.read(&x).unwrap(), solo);
    }

    fn a_member_trains_the_same_alone_as_in_a_batch(dev: &dyn Backend) {
        for output in [Output::Relu, Output::Linear] {
            let shape = Shape { features: 6, hidden: 2, batch: 64, output };
            let ms = members(&[0.0, 0.7, 0.95], 6);
            let (w, b) = widenet::experiments::superposition::sweep::init(3, shape, &ms);
            let mut all = TiedModel::new(dev, shape, &ms, (&w, &b), 1, ADAM, 1e-2).unwrap();
            let one = &ms[1..2];
            let (w1, b1) = widenet::experiments::superposition::sweep::init(3, shape, one);
            let mut solo = TiedModel::new(dev, shape, one, (&w1, &b1), 1, ADAM, 1e-2).unwrap();
            for _ in 0..40 {
                all.step().unwrap();
                solo.step().unwrap();
            }
            let (wa, ba) = all.parameters().unwrap();
            let (ws, bs) = solo.parameters().unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ws), bits(&wa[12..24]), "{output:?}: weights");
            assert_eq!(bits(&bs), bits(&ba[6..12]), "{output:?}: biases");
        }
    }

    fn a_resumed_run_ends_as_an_uninterrupted_one(dev: &dyn Backend) {
        let shape = Shape { features: 5, hidden: 2, batch: 32, output: Output::Relu };
        let ms = members(&[0.5, 0.9], 5);
        let (w, b) = widenet::experiments::superposition::sweep::init(0, shape, &ms);
        let mut straight = TiedModel::new(dev, shape, &ms, (&w, &b), 4, ADAM, 1e-2).unwrap();
        for _ in 0..30 {
            straight.step().unwrap();
        }
        let mut first = TiedModel::new(dev, shape, &ms, (&w, &b), 4, ADAM, 1e-2).unwrap();
        for _ in 0..17 {
            first.step().unwrap();
        }
        // Through the JSON a checkpoint holds.
        let saved: serde_json::Value =
            serde_json::from_str(&first.state().unwrap().to_string()).unwrap();
        let mut second = TiedModel::new(dev, shape, &ms, (&w, &b), 4, ADAM, 1e-2).unwrap();
        second.restore(17, &saved).unwrap();
        for _ in 17..30 {
            second.step().unwrap();
        }
        assert_eq!(second.parameters().unwrap(), straight.parameters().unwrap());
    }
}

fn members(sparsity: &[f32], n: usize) -> Vec<Member> {
    sparsity
        .iter()
        .enumerate()
        .map(|(k, &s)| Member {
            id: 100 + k as u32,
            init: 100 + k as u64,
            sparsity: s,
            importance: (0..n).map(|i| 0.8f32.powi(i as i32)).collect(),
        })
        .collect()
}

/// The gradient the CPU backend computes in f32 for every member, against
/// central differences of the loss in f64 on the same draws.
#[test]
fn gradient_matches_finite_differences() {
    let dev = widenet::cpu::CpuBackend;
    for output in [Output::Relu, Output::Linear] {
        let (n, m) = (6, 3);
        let shape = Shape {
            features: n,
            hidden: m,
            batch: 48,
            output,
        };
        let ms = members(&[0.0, 0.6, 0.9], n);
        let (w, _) = widenet::experiments::superposition::sweep::init(2, shape, &ms);
        // A bias that puts some outputs below zero.
        let b: Vec<f32> = (0..ms.len() * n)
            .map(|i| 0.1 * ((i % 5) as f32 - 2.0))
            .collect();
        let mut model = TiedModel::new(&dev, shape, &ms, (&w, &b), 9, ADAM, 1e-3).unwrap();
        let (dw, db, x) = model.gradients(5).unwrap();
        for (e, p) in ms.iter().enumerate() {
            let wide = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
            let we = wide(&w[e * m * n..(e + 1) * m * n]);
            let be = wide(&b[e * n..(e + 1) * n]);
            let xe = wide(&x[e * 48 * n..(e + 1) * 48 * n]);
            let imp = wide(&p.importance);
            let loss = |w: &[f64], b: &[f64]| loss_f64(shape, w, b, &xe, &imp);
            let h = 1e-6;
            let mut num = Vec::new();
            for k in 0..we.len() {
                let (mut a, mut c) = (we.clone(), we.clone());
                a[k] += h;
                c[k] -= h;
                num.push((loss(&a, &be) - loss(&c, &be)) / (2.0 * h));
            }
            for k in 0..be.len() {
                let (mut a, mut c) = (be.clone(), be.clone());
                a[k] += h;
                c[k] -= h;
                num.push((loss(&we, &a) - loss(&we, &c)) / (2.0 * h));
            }
            let got: Vec<f32> = dw[e * m * n..(e + 1) * m * n]
                .iter()
                .chain(&db[e * n..(e + 1) * n])
                .copied()
                .collect();
            // f32 sums of 48 draws against f64 differences: 1e-4 relative.
            let err = common::rel_err(&got, &num);
            assert!(err < 1e-4, "{output:?} member {e}: relative error {err}");
        }
    }
}

/// The CPU backend's fused gradient (draw, forward and backward in one pass
/// per member) against the same backend's composed passes, and the losses
/// the two report, on the same draws.
#[test]
fn the_fused_gradient_matches_the_composed_one() {
    let dev = widenet::cpu::CpuBackend;
    for output in [Output::Relu, Output::Linear] {
        for (n, m) in [(20, 5), (2, 1), (7, 3)] {
            let shape = Shape {
                features: n,
                hidden: m,
                batch: 200,
                output,
            };
            let ms = members(&[0.0, 0.5, 0.9, 0.99], n);
            let (w, _) = widenet::experiments::superposition::sweep::init(4, shape, &ms);
            let b: Vec<f32> = (0..ms.len() * n)
                .map(|i| 0.05 * ((i % 7) as f32 - 3.0))
                .collect();
            let mut fused = TiedModel::new(&dev, shape, &ms, (&w, &b), 3, ADAM, 1e-2).unwrap();
            let mut composed = TiedModel::new(&dev, shape, &ms, (&w, &b), 3, ADAM, 1e-2).unwrap();
            composed.set_fused(false);
            let (fw, fb, fx) = fused.gradients(2).unwrap();
            let (cw, cb, cx) = composed.gradients(2).unwrap();
            assert_eq!(fx, cx, "{output:?} {n}x{m}: the draws differ");
            let ew = common::rel_err(&fw, &common::wide(&cw));
            let eb = common::rel_err(&fb, &common::wide(&cb));
            // f32 sums of 200 draws in different orders.
            assert!(
                ew < 1e-5 && eb < 1e-5,
                "{output:?} {n}x{m}: dW {ew}, db {eb}"
            );
            // Three steps with losses: the same losses and parameters.
            for _ in 0..3 {
                let lf = fused.step_with_loss().unwrap();
                let lc = composed.step_with_loss().unwrap();
                for (a, c) in lf.iter().zip(&lc) {
                    assert!(
                        (a - c).abs() <= 1e-5 * c.abs().max(1e-6),
                        "{output:?} {n}x{m}: loss {a} against {c}"
                    );
                }
            }
            let (pw, _) = fused.parameters().unwrap();
            let (qw, _) = composed.parameters().unwrap();
            let e = common::rel_err(&pw, &common::wide(&qw));
            assert!(e < 1e-5, "{output:?} {n}x{m}: weights after 3 steps {e}");
        }
    }
}

/// The GPU's gradient against the CPU backend's, on the same draws.
#[test]
fn gradient_on_the_gpu_matches_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = widenet::cpu::CpuBackend;
    for output in [Output::Relu, Output::Linear] {
        let (n, m) = (20, 5);
        let shape = Shape {
            features: n,
            hidden: m,
            batch: 256,
            output,
        };
        let ms = members(&[0.0, 0.5, 0.9, 0.99], n);
        let (w, b) = widenet::experiments::superposition::sweep::init(1, shape, &ms);
        let mut on_cpu = TiedModel::new(&cpu, shape, &ms, (&w, &b), 3, ADAM, 1e-3).unwrap();
        let mut on_gpu = TiedModel::new(gpu.as_ref(), shape, &ms, (&w, &b), 3, ADAM, 1e-3).unwrap();
        let (cw, cb, cx) = on_cpu.gradients(2).unwrap();
        let (gw, gb, gx) = on_gpu.gradients(2).unwrap();
        assert_eq!(cx, gx, "{output:?}: the draws differ between backends");
        let ew = common::rel_err(&gw, &common::wide(&cw));
        let eb = common::rel_err(&gb, &common::wide(&cb));
        // f32 products summed in different orders over 256 draws.
        assert!(ew < 1e-5 && eb < 1e-5, "{output:?}: dW {ew}, db {eb}");
    }
}

fn device() -> Box<dyn Backend> {
    match common::gpu() {
        Some(_) => Box::new(
            widenet::gpu::GpuBackend::open(&common::test_choice(), &common::test_options())
                .unwrap()
                .unwrap(),
        ),
        None => Box::new(widenet::cpu::CpuBackend),
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("widenet-sp-{}-{name}", std::process::id()))
}

/// The quick settings reproduce the paper's claims: with dense features the
/// ReLU model represents exactly its m most important features, orthogonally,
/// as the linear model does at every sparsity; sparse features are stored in
/// superposition, more of them than dimensions; the two-feature model takes
/// the phase the theory predicts away from its boundaries.
#[test]
fn quick_run_reproduces_the_papers_claims() {
    let cfg = SuperpositionConfig::quick();
    let dir = tmp("quick");
    let out = OutDir::create(Some(&dir), "superposition").unwrap();
    let dev = device();
    let r = run(dev.as_ref(), &cfg, &out, true, false).unwrap();
    for f in [
        "report.json",
        "report.md",
        "weights.safetensors",
        "weights_relu.svg",
        "weights_relu.png",
        "weights_linear.svg",
        "weights_linear.png",
        "dims_per_feature.svg",
        "feature_dimensionality.svg",
        "phase_diagram.svg",
        "phase_diagram.png",
    ] {
        assert!(out.file(f).exists(), "{f} missing");
    }
    let m = cfg.hidden;
    let runs = r["runs"].as_array().unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let mut checked = [0; 3];
    for run in runs {
        let (model, s) = (
            run["model"].as_str().unwrap(),
            run["sparsity"].as_f64().unwrap(),
        );
        let norms = floats(&run["norms"]);
        let sup = floats(&run["superposition"]);
        let label = format!("{model} S = {s}");
        if s == 0.0 || model == "linear" {
            // The m most important features, each of norm near 1, orthogonal; the rest near 0.
            for (i, (nrm, sp)) in norms.iter().zip(&sup).enumerate() {
                if i < m {
                    assert!((nrm - 1.0).abs() < 0.1, "{label}: feature {i} norm {nrm}");
                    assert!(*sp < 0.02, "{label}: feature {i} superposition {sp}");
                } else {
                    assert!(*nrm < 0.1, "{label}: feature {i} norm {nrm}");
                }
            }
            assert_eq!(run["features_represented"], m, "{label}");
            checked[usize::from(model == "linear")] += 1;
        }
        if model == "relu" && s == *cfg.sparsity.last().unwrap() {
            let rep = run["features_represented"].as_u64().unwrap() as usize;
            assert!(
                rep > m,
                "{label}: {rep} features represented in {m} dimensions"
            );
            let mean_sup = sup.iter().sum::<f64>() / sup.len() as f64;
            assert!(mean_sup > 0.3, "{label}: mean superposition {mean_sup}");
            assert!(run["dims_per_feature"].as_f64().unwrap() < 0.75, "{label}");
            checked[2] += 1;
        }
    }
    assert_eq!(checked, [1, cfg.sparsity.len(), 1]);
    let phase = &r["phase_diagram"];
    let clear = phase["points_clear_of_boundaries"].as_u64().unwrap();
    assert!(clear >= 15, "only {clear} points clear of the boundaries");
    for p in phase["points"].as_array().unwrap() {
        if p["distance_to_boundary"].as_f64().unwrap() >= 0.15 {
            assert_eq!(
                p["measured"], p["theory"],
                "r = {}, density {}: restarts {}",
                p["relative_importance"], p["density"], p["restarts"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad settings are refused before anything is written, with exit code 2.
#[test]
fn bad_settings_exit_with_code_2_and_write_nothing() {
    let dir = tmp("bad");
    for (args, says) in [
        (vec!["--sparsity", "0,1.5"], "sparsity"),
        (vec!["--features", "5", "--hidden", "5"], "hidden"),
        (vec!["--models", "relu,tanh"], "--models"),
        (vec!["--importance-decay", "0"], "importance-decay"),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_widenet"))
            .args(["superposition", "--device", "cpu", "--quick", "--out"])
            .arg(&dir)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!dir.exists(), "{args:?} wrote {}", dir.display());
    }
}
