//! The kernels against values computed by neural-tangents 0.6.5 in float64
//! (`tests/data/neural_tangents_kernels.json` and
//! `tests/data/neural_tangents_architectures.json`): relative Frobenius error
//! at most 1e-9 on the f64 path for closed forms (1e-5 where neural-tangents
//! itself integrates numerically: tanh, sigmoid) and 1e-4 on the f32 device path.

mod common;

use serde_json::Value;
use widenet::kernel::{Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;
use widenet::{Activation, Arch, Mlp, Parameterization};

fn read(name: &str) -> Value {
    let path = common::repo_file(&format!("tests/data/{name}"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("golden json")
}

fn golden() -> Value {
    read("neural_tangents_kernels.json")
}

pub fn matrix(v: &Value) -> Matrix<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    let (n, m) = (rows.len(), rows[0].len());
    Matrix::from_vec(n, m, rows.into_iter().flatten().collect()).unwrap()
}

pub fn arch_of(c: &Value, _d_in: usize) -> Arch {
    let activation = match c["activation"].as_str().unwrap() {
        "linear" => Activation::Identity,
        other => Activation::parse(other).unwrap(),
    };
    Arch::mlp(&Mlp {
        depth: c["depth"].as_u64().unwrap() as usize,
        activation,
        w_std: c["w_std"].as_f64().unwrap(),
        b_std: c["b_std"].as_f64(),
        parameterization: Parameterization::parse(c["parameterization"].as_str().unwrap()).unwrap(),
        width: c["width"].as_u64().unwrap() as usize,
        d_out: 1,
    })
}

fn rel(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}

#[test]
fn f64_kernels_match_neural_tangents() {
    let g = golden();
    let (x1, x2) = (matrix(&g["x1"]), matrix(&g["x2"]));
    let mut worst = 0.0f64;
    for c in g["kernels"].as_array().unwrap() {
        let arch = arch_of(c, x1.cols());
        let k12 = kernels_f64(&arch, &x1, Some(&x2), Want::BOTH).unwrap();
        let k11 = kernels_f64(&arch, &x1, None, Want::BOTH).unwrap();
        for (name, got) in [
            ("nngp_x1_x2", k12.nngp.as_ref()),
            ("ntk_x1_x2", k12.ntk.as_ref()),
            ("nngp_x1_x1", k11.nngp.as_ref()),
            ("ntk_x1_x1", k11.ntk.as_ref()),
        ] {
            let want = matrix(&c[name]);
            let e = rel(got.unwrap().data(), want.data());
            worst = worst.max(e);
            assert!(e < 1e-9, "{arch:?} {name}: relative error {e:e}");
        }
    }
    eprintln!("worst f64 relative error against neural-tangents: {worst:e}");
}

#[test]
fn f32_device_kernels_match_neural_tangents() {
    let Some(gpu) = common::gpu() else { return };
    let g = golden();
    let (x1, x2) = (matrix(&g["x1"]), matrix(&g["x2"]));
    let (x1f, x2f) = (x1.to_f32(), x2.to_f32());
    let mut worst = 0.0f64;
    for c in g["kernels"].as_array().unwrap() {
        let arch = arch_of(c, x1.cols());
        let k12 =
            kernels_device(gpu.as_ref(), &arch, &x1f, Some(&x2f), Want::BOTH, |_, _| {}).unwrap();
        let k11 = kernels_device(gpu.as_ref(), &arch, &x1f, None, Want::BOTH, |_, _| {}).unwrap();
        for (name, got) in [
            ("nngp_x1_x2", k12.nngp.as_ref()),
            ("ntk_x1_x2", k12.ntk.as_ref()),
            ("nngp_x1_x1", k11.nngp.as_ref()),
            ("ntk_x1_x1", k11.ntk.as_ref()),
        ] {
            let want = matrix(&c[name]);
            let e = rel(got.unwrap().to_f64().data(), want.data());
            worst = worst.max(e);
            assert!(e < 1e-4, "{arch:?} {name}: relative error {e:e}");
        }
    }
    eprintln!("worst f32 GPU relative error against neural-tangents: {worst:e}");
}

#[test]
fn f64_predictions_match_neural_tangents() {
    use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
    let g = golden();
    let p = &g["predict"];
    let (xtr, ytr, xte) = (
        matrix(&p["x_train"]),
        matrix(&p["y_train"]),
        matrix(&p["x_test"]),
    );
    let mut worst = 0.0f64;
    let cases = p["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let arch = arch_of(c, xtr.cols());
        let dd = kernels_f64(&arch, &xtr, None, Want::BOTH).unwrap();
        let td = kernels_f64(&arch, &xte, Some(&xtr), Want::BOTH).unwrap();
        let tt = kernels_f64(&arch, &xte, None, Want::NNGP).unwrap();
        let k = PredictKernels {
            dd_nngp: dd.nngp.unwrap(),
            dd_ntk: dd.ntk,
            td_nngp: td.nngp.unwrap(),
            td_ntk: td.ntk,
            tt_nngp: tt.nngp,
        };
        let spec = PredictSpec {
            get: Get::parse(c["get"].as_str().unwrap()).unwrap(),
            t: c["t"].as_f64(),
            learning_rate: c["learning_rate"].as_f64().unwrap(),
            diag_reg: c["diag_reg"].as_f64().unwrap(),
        };
        let out = gradient_descent_mse_ensemble(&k, &ytr, &spec).unwrap();
        let em = rel(out.mean.data(), matrix(&c["mean"]).data());
        let ec = rel(out.cov.unwrap().data(), matrix(&c["cov"]).data());
        worst = worst.max(em).max(ec);
        assert!(
            em < 1e-9 && ec < 1e-9,
            "{spec:?} {arch:?}: mean error {em:e}, cov error {ec:e}"
        );
    }
    eprintln!(
        "worst prediction relative error against neural-tangents: {worst:e} over {} cases",
        cases.len()
    );
}

/// Tolerance of a composed case: 1e-5 where neural-tangents integrates
/// numerically (its own values move by ~2e-6 between degrees 120 and 200).
fn arch_tolerance(arch: &Arch) -> f64 {
    let numeric =
        arch.any(&|l| matches!(l, widenet::arch::Layer::Activation(a) if !a.has_closed_form()));
    if numeric { 1e-5 } else { 1e-9 }
}

#[test]
fn composed_architectures_match_neural_tangents_in_f64() {
    let g = read("neural_tangents_architectures.json");
    let (x1, x2) = (matrix(&g["x1"]), matrix(&g["x2"]));
    for c in g["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let arch = widenet::arch::parse::from_value(&c["arch"]).unwrap();
        let tol = arch_tolerance(&arch);
        let k11 = kernels_f64(&arch, &x1, None, Want::BOTH).unwrap();
        let k12 = kernels_f64(&arch, &x1, Some(&x2), Want::BOTH).unwrap();
        for (which, k) in [("k11", &k11), ("k12", &k12)] {
            for (kind, got) in [("nngp", k.nngp.as_ref()), ("ntk", k.ntk.as_ref())] {
                let want = matrix(&c[which][kind]);
                let e = rel(got.unwrap().data(), want.data());
                assert!(
                    e < tol,
                    "{name} {which} {kind}: relative error {e:e} (tolerance {tol:e})"
                );
                eprintln!("{name} {which} {kind}: {e:.1e}");
            }
        }
    }
}

#[test]
fn composed_architectures_match_neural_tangents_on_the_device() {
    let Some(gpu) = common::gpu() else { return };
    let g = read("neural_tangents_architectures.json");
    let (x1, x2) = (matrix(&g["x1"]).to_f32(), matrix(&g["x2"]).to_f32());
    for c in g["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let arch = widenet::arch::parse::from_value(&c["arch"]).unwrap();
        for dev in [
            gpu.as_ref() as &dyn widenet::Backend,
            &widenet::cpu::CpuBackend,
        ] {
            let k11 = kernels_device(dev, &arch, &x1, None, Want::BOTH, |_, _| {}).unwrap();
            let k12 = kernels_device(dev, &arch, &x1, Some(&x2), Want::BOTH, |_, _| {}).unwrap();
            for (which, k) in [("k11", &k11), ("k12", &k12)] {
                for (kind, got) in [("nngp", k.nngp.as_ref()), ("ntk", k.ntk.as_ref())] {
                    let want = matrix(&c[which][kind]);
                    let e = rel(got.unwrap().to_f64().data(), want.data());
                    assert!(
                        e < 1e-4,
                        "{name} on {}: {which} {kind}: relative error {e:e}",
                        dev.describe()
                    );
                }
            }
        }
    }
}
