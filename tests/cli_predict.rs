//! `widenet predict` with several times and both kernels in one `.npz`.

use std::path::Path;
use std::process::Command;
use widenet::Matrix;
use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};

fn points(seed: u64, n: usize, d: usize) -> Matrix {
    let mut r = widenet::rng::Rng::new(seed);
    Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap()
}

fn read_npz(path: &Path) -> std::collections::HashMap<String, (Vec<u64>, Vec<f64>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let f = zip.by_index(i).unwrap();
            let n = f.name().unwrap().to_string();
            let npy = npyz::NpyFile::new(f).unwrap();
            let shape = npy.shape().to_vec();
            (
                n.trim_end_matches(".npy").to_string(),
                (shape, npy.into_vec::<f64>().unwrap()),
            )
        })
        .collect()
}

#[test]
fn several_times_and_both_kernels_in_one_npz() {
    let d = std::env::temp_dir().join(format!("widenet-predict-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let (xt, yt, xs) = (points(1, 6, 3), points(2, 6, 2), points(3, 4, 3));
    for (name, m) in [("xt", &xt), ("yt", &yt), ("xs", &xs)] {
        widenet::npy::write(
            &d.join(format!("{name}.npy")),
            &[m.rows(), m.cols()],
            m.data(),
        )
        .unwrap();
    }
    let out = d.join("p.npz");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_widenet"))
        .args([
            "predict",
            "--x-train",
            &s(&d.join("xt.npy")),
            "--y-train",
            &s(&d.join("yt.npy")),
            "--x-test",
            &s(&d.join("xs.npy")),
            "--t",
            "1,10,inf",
            "--get",
            "nngp,ntk",
            "--lr",
            "0.5",
            "--diag-reg",
            "1e-4",
            "--arch",
            "Dense(64, W_std=1.5, b_std=0.1), Erf, Dense(1)",
            "--out",
            &s(&out),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let a = read_npz(&out);
    assert_eq!(a["times"].1[..2], [1.0, 10.0]);
    assert!(a["times"].1[2].is_infinite());
    for k in ["nngp", "ntk"] {
        assert_eq!(a[&format!("{k}_mean")].0, vec![3, 4, 2]);
        assert_eq!(a[&format!("{k}_cov")].0, vec![3, 4, 4]);
        assert_eq!(a[&format!("{k}_train_mean")].0, vec![3, 6, 2]);
    }
    // The same numbers as the library's prediction.
    let arch = widenet::Arch::parse("Dense(64, W_std=1.5, b_std=0.1), Erf, Dense(1)").unwrap();
    let k = PredictKernels::compute(&arch, &xt, &xs).unwrap();
    let spec = PredictSpec {
        get: Get::Ntk,
        t: Some(10.0),
        learning_rate: 0.5,
        diag_reg: 1e-4,
    };
    let want = gradient_descent_mse_ensemble(&k, &yt, &spec).unwrap();
    let got = &a["ntk_mean"].1[8..16];
    for (g, w) in got.iter().zip(want.mean.data()) {
        assert!((g - w).abs() < 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
    // At t = infinity the training points are fitted (up to the regularizer).
    let fit = &a["ntk_train_mean"].1[24..36];
    for (g, y) in fit.iter().zip(yt.data()) {
        assert!((g - y).abs() < 1e-2, "{g} vs {y}");
    }
}
