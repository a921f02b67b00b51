//! `widenet train --lr auto` takes N / lambda_max of the network's NTK and
//! trains without diverging; a gradient-descent rate above 2 N / lambda_max
//! is warned about.

use std::process::Command;

fn widenet(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_widenet"))
        .args(["--device", "cpu"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lr_auto_is_n_over_lambda_max_and_large_rates_are_warned_about() {
    let d = std::env::temp_dir().join(format!("widenet-lr-auto-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let mut r = widenet::rng::Rng::new(3);
    let x: Vec<f64> = (0..40 * 4).map(|_| r.normal()).collect();
    let y: Vec<f64> = (0..40).map(|i| x[i * 4].sin()).collect();
    widenet::npy::write(&d.join("x.npy"), &[40, 4], &x).unwrap();
    widenet::npy::write(&d.join("y.npy"), &[40], &y).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let (ok, err) = widenet(&[
        "init",
        "--d-in",
        "4",
        "--width",
        "256",
        "--depth",
        "2",
        "--ensemble",
        "4",
        "--out",
        &p("p.safetensors"),
    ]);
    assert!(ok, "{err}");
    let train = |lr: &str, out: &str| {
        widenet(&[
            "train",
            "--params",
            &p("p.safetensors"),
            "--x",
            &p("x.npy"),
            "--y",
            &p("y.npy"),
            "--optimizer",
            "gd",
            "--lr",
            lr,
            "--steps",
            "50",
            "--out",
            &p(out),
        ])
    };
    let (ok, err) = train("auto", "auto.safetensors");
    assert!(ok, "{err}");
    // The rate it took, against lambda_max of the f64 NTK of the same network.
    let rate = |key: &str| -> f64 {
        let at = err
            .find(key)
            .unwrap_or_else(|| panic!("no '{key}' in {err}"))
            + key.len();
        err[at..].split([' ', ')']).next().unwrap().parse().unwrap()
    };
    let (lr, lam) = (rate("--lr auto: "), rate("lambda_max = "));
    let spec = widenet::net::params::Params::load(&d.join("p.safetensors"))
        .unwrap()
        .spec;
    let xm = widenet::Matrix::from_vec(40, 4, x.clone()).unwrap();
    let k = widenet::kernels_f64(&spec.arch, &xm, None, widenet::Want::NTK)
        .unwrap()
        .ntk
        .unwrap();
    let data: Vec<f64> = (0..40 * 40).map(|i| k.at(i / 40, i % 40)).collect();
    let top = faer::Mat::from_fn(40, 40, |i, j| data[i * 40 + j])
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .unwrap()
        .into_iter()
        .fold(0.0f64, f64::max);
    assert!(
        (lam - top).abs() < 1e-3 * top,
        "lambda_max {lam} against {top}"
    );
    assert!(
        (lr - 40.0 / top).abs() < 1e-3 * lr,
        "lr {lr} against {}",
        40.0 / top
    );
    assert!(err.contains("diverged: 0"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    // Three times the stable limit: warned about (and it diverges).
    let (_, err) = train(&format!("{}", 6.0 * lr), "big.safetensors");
    assert!(
        err.contains("warning: --lr") && err.contains("2 N / lambda_max"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}
