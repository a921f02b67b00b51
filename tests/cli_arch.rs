//! Composed architectures through the command line: `--arch` in every
//! command that builds a network or its kernels, the parameter files, the
//! empirical kernels, and bad specs refused with the offending layer's
//! position and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;
use widenet::kernel::{Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::{Arch, npy};

const RESNET: &str = "Dense(64, W_std=1.5, b_std=0.1), 2*(Residual(Relu, Dense(64, W_std=1.2))), LayerNorm, Relu, Dense(1, b_std=0.1)";

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

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("widenet-cli-arch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn points(seed: u64, n: usize, d: usize) -> Matrix {
    let mut r = widenet::rng::Rng::new(seed);
    Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap()
}

#[test]
fn kernel_of_a_composed_architecture_from_a_file_and_inline() {
    let d = tmp("kernel");
    let x = points(1, 6, 3);
    npy::write(&d.join("x.npy"), &[6, 3], x.data()).unwrap();
    let arch = Arch::parse(RESNET).unwrap();
    std::fs::write(d.join("a.json"), arch.to_json().to_string()).unwrap();
    let want = kernels_f64(&arch, &x, None, Want::NTK)
        .unwrap()
        .ntk
        .unwrap();
    for spec in [s(&d.join("a.json")), RESNET] {
        let out = d.join("k.npy");
        let (code, _, err) = run(&[
            "kernel",
            "--x1",
            s(&d.join("x.npy")),
            "--arch",
            spec,
            "--get",
            "ntk",
            "--precision",
            "f64",
            "--out",
            s(&out),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(npy::read(&out).unwrap().data, want.data());
    }
}

#[test]
fn init_train_and_empirical_kernel_of_a_residual_network() {
    let d = tmp("net");
    let x = points(2, 8, 3);
    let y = points(3, 8, 1);
    npy::write(&d.join("x.npy"), &[8, 3], x.data()).unwrap();
    npy::write(&d.join("y.npy"), &[8, 1], y.data()).unwrap();
    let p = d.join("p.safetensors");
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "init",
        "--arch",
        RESNET,
        "--d-in",
        "3",
        "--ensemble",
        "4",
        "--seed",
        "1",
        "--out",
        s(&p),
    ]);
    assert_eq!(code, 0, "{err}");
    let params = widenet::Params::load(&p).unwrap();
    assert_eq!(params.spec.arch, Arch::parse(RESNET).unwrap());
    // Dense layers numbered depth first through the residual blocks.
    assert_eq!(params.weights.len(), 4);
    let out = d.join("k.npy");
    let (code, stdout, err) = run(&[
        "--device",
        "cpu",
        "empirical-kernel",
        "--params",
        s(&p),
        "--x1",
        s(&d.join("x.npy")),
        "--get",
        "ntk",
        "--out",
        s(&out),
        "--against-analytic",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(npy::read(&out).unwrap().shape, vec![4, 8, 8]);
    // Width 64: each member within about width^-1/2 of the limit, not exact.
    let mean: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("relative distance to the analytic kernel: mean "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(mean > 0.01 && mean < 0.6, "{stdout}");
    let p2 = d.join("p2.safetensors");
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "train",
        "--params",
        s(&p),
        "--x",
        s(&d.join("x.npy")),
        "--y",
        s(&d.join("y.npy")),
        "--optimizer",
        "gd",
        "--lr",
        "0.5",
        "--steps",
        "30",
        "--out",
        s(&p2),
    ]);
    assert_eq!(code, 0, "{err}");
    let trained = widenet::Params::load(&p2).unwrap();
    assert_eq!(trained.spec, params.spec);
    assert_ne!(trained.weights, params.weights);
}

#[test]
fn bad_specs_exit_2_naming_the_layer_and_write_nothing() {
    let d = tmp("bad");
    let x = points(4, 5, 3);
    npy::write(&d.join("x.npy"), &[5, 3], x.data()).unwrap();
    std::fs::write(d.join("broken.json"), "[[\"Dense\", 4], [\"Relu\"").unwrap();
    let out = d.join("k.npy");
    for (spec, needle) in [
        (s(&d.join("broken.json")), "not valid JSON"),
        (
            "Dense(8), Swish, Dense(1)",
            "layer 2 (Swish): unknown layer",
        ),
        (
            "Dense(8, 1, 2, 3), Dense(1)",
            "layer 1 (Dense): takes at most 3",
        ),
        (
            "Dense(8), Residual(Relu, Dense(4)), Dense(1)",
            "layer 2 (Residual): the block outputs width 4",
        ),
        (
            "Dense(8), Residual(Dense(8), Relu), Dense(1)",
            "layer 2 (Residual): the block must end with a Dense",
        ),
        (
            "Dense(1), LayerNorm, Dense(1)",
            "layer 2 (LayerNorm): normalizes over a layer of width 1",
        ),
        (
            "Dense(8), Residual(Relu, Residual(Relu, Dense(8, W_std=-1))), Dense(1)",
            "layer 2 > 2 > 2 (Dense)",
        ),
    ] {
        let (code, _, err) = run(&[
            "kernel",
            "--x1",
            s(&d.join("x.npy")),
            "--arch",
            spec,
            "--out",
            s(&out),
        ]);
        assert_eq!(code, 2, "{spec}: {err}");
        assert!(err.contains(needle), "{spec}: '{err}' lacks '{needle}'");
        assert!(!out.exists(), "{spec}: output written");
        let p = d.join("p.safetensors");
        let (code, _, err) = run(&["init", "--arch", spec, "--d-in", "3", "--out", s(&p)]);
        assert_eq!(code, 2, "init {spec}: {err}");
        assert!(!p.exists());
    }
}
