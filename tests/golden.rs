//! The kernels against values computed by neural-tangents 0.6.5 in float64
//! (`tests/data/neural_tangents_kernels.json`, copied from shared/golden):
//! relative Frobenius error at most 1e-9 on the f64 path and 1e-4 on the f32
//! GPU path.

mod common;

use serde_json::Value;
use widenet::Activation;
use widenet::kernel::{Architecture, Parameterization, Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/neural_tangents_kernels.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("golden json")
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

pub fn arch_of(c: &Value, d_in: usize) -> Architecture {
    let activation = match c["activation"].as_str().unwrap() {
        "linear" => Activation::Identity,
        other => Activation::parse(other).unwrap(),
    };
    Architecture {
        depth: c["depth"].as_u64().unwrap() as usize,
        activation,
        w_std: c["w_std"].as_f64().unwrap(),
        b_std: c["b_std"].as_f64().unwrap(),
        parameterization: Parameterization::parse(c["parameterization"].as_str().unwrap()).unwrap(),
        width: c["width"].as_u64().unwrap() as usize,
        d_in,
    }
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
        let arch = arch_of(c, x1.cols);
        let k12 = kernels_f64(&arch, &x1, Some(&x2), Want::BOTH).unwrap();
        let k11 = kernels_f64(&arch, &x1, None, Want::BOTH).unwrap();
        for (name, got) in [
            ("nngp_x1_x2", k12.nngp.as_ref()),
            ("ntk_x1_x2", k12.ntk.as_ref()),
            ("nngp_x1_x1", k11.nngp.as_ref()),
            ("ntk_x1_x1", k11.ntk.as_ref()),
        ] {
            let want = matrix(&c[name]);
            let e = rel(&got.unwrap().data, &want.data);
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
        let arch = arch_of(c, x1.cols);
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
            let e = rel(&got.unwrap().to_f64().data, &want.data);
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
        let arch = arch_of(c, xtr.cols);
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
        let em = rel(&out.mean.data, &matrix(&c["mean"]).data);
        let ec = rel(&out.cov.unwrap().data, &matrix(&c["cov"]).data);
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
