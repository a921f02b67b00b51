//! `widenet hessian` end to end: the eigenvalues and trace it prints for a
//! safetensors file against the dense Hessian of an independent f64 loss
//! computed from the same file, eigenvectors written, and bad input refused
//! with exit code 2.

mod common;

use common::reference::{flat64, hessian_at};
use std::path::{Path, PathBuf};
use std::process::Command;
use widenet::matrix::Matrix;
use widenet::net::{NetSpec, Params};
use widenet::rng::Rng;
use widenet::{Arch, npy};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("widenet-hess-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_widenet"))
        .env_remove("WIDENET_DEVICE")
        .env("WIDENET_NO_AUTOTUNE", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn matrix(seed: u64, n: usize, d: usize, path: &Path) -> Matrix<f32> {
    let m = Matrix::from_vec(n, d, Rng::new(seed).normals_f32(n * d)).unwrap();
    npy::write(path, &[n, d], m.data()).unwrap();
    m
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Eigenvalues of a symmetric matrix, ascending.
fn eigenvalues(h: &[Vec<f64>]) -> Vec<f64> {
    let n = h.len();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| h[i][j]);
    let eig = m.self_adjoint_eigen(faer::Side::Lower).unwrap();
    (0..n).map(|i| eig.S()[i]).collect()
}

#[test]
fn hessian_prints_the_top_of_the_dense_spectrum_of_the_same_file() {
    let dir = tmp("spectrum");
    let spec = NetSpec {
        arch: Arch::parse("Dense(4, b_std=0.2), Tanh, Dense(3, b_std=0.1), Gelu, Dense(2)")
            .unwrap(),
        d_in: 3,
        ensemble: 2,
        parameterization: None,
        base_width: 4,
    };
    let (pp, xp, yp, vp) = (
        dir.join("p.safetensors"),
        dir.join("x.npy"),
        dir.join("y.npy"),
        dir.join("v.npy"),
    );
    Params::init(&spec, 3).unwrap().save(&pp).unwrap();
    let x = matrix(1, 7, 3, &xp);
    let y = matrix(2, 7, 2, &yp);
    let args = [
        "--device",
        "cpu",
        "hessian",
        "--params",
        s(&pp),
        "--x",
        s(&xp),
        "--y",
        s(&yp),
        "--top",
        "3",
        "--iters",
        "60",
        "--tol",
        "1e-6",
        "--probes",
        "20",
        "--json",
        "--out",
        s(&vp),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    // The dense Hessian from the file as written (independent f64 loss).
    let p = Params::load(&pp).unwrap();
    let n_params = flat64(&p, 0).len();
    for (e, m) in members.iter().enumerate() {
        let dense = eigenvalues(&hessian_at(&p, &flat64(&p, e), &x, &y, false, 1e-4));
        let scale = dense.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let got: Vec<f64> = m["eigenvalues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), 3);
        for (k, g) in got.iter().enumerate() {
            let want = dense[n_params - 1 - k];
            assert!(
                (g - want).abs() < 1e-4 * scale,
                "member {e} rank {k}: {g} vs {want}"
            );
        }
        let hvps = m["hvps"].as_u64().unwrap() as usize;
        assert!(hvps > 3 && hvps <= 60 + 20, "hvps {hvps}");
        let trace: f64 = dense.iter().sum();
        let t = m["trace"].as_f64().unwrap();
        let se = m["trace_stderr"].as_f64().unwrap();
        assert!(
            (t - trace).abs() < 4.0 * se + 1e-4 * scale,
            "trace {t} +- {se} vs {trace}"
        );
    }
    // Eigenvectors [E, top, P], unit norm.
    let a = npy::read(&vp).unwrap();
    assert_eq!(a.shape, vec![2, 3, n_params]);
    for r in a.data.chunks(n_params) {
        let n: f64 = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "norm {n}");
    }
}

#[test]
fn hessian_refuses_bad_input_with_exit_code_2() {
    let dir = tmp("bad");
    let spec = NetSpec {
        arch: Arch::parse("Dense(3), Relu, Dense(1)").unwrap(),
        d_in: 2,
        ensemble: 1,
        parameterization: None,
        base_width: 3,
    };
    let (pp, xp, yp, y3) = (
        dir.join("p.safetensors"),
        dir.join("x.npy"),
        dir.join("y.npy"),
        dir.join("y3.npy"),
    );
    Params::init(&spec, 1).unwrap().save(&pp).unwrap();
    matrix(1, 4, 2, &xp);
    matrix(2, 4, 1, &yp);
    matrix(3, 5, 1, &y3);
    let base = [
        "--device",
        "cpu",
        "hessian",
        "--params",
        s(&pp),
        "--x",
        s(&xp),
    ];
    for (extra, needle) in [
        (vec!["--y", s(&yp), "--loss", "hinge"], "--loss"),
        (vec!["--y", s(&y3)], "rows"),
        (vec!["--y", s(&yp), "--top", "0"], "--top"),
        (vec!["--y", s(&yp), "--out", "v.txt"], "--out"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
