//! The `widenet` binary end to end: files in, files out, exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;
use widenet::kernel::{Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::{Activation, npy};
use widenet::{Arch, Mlp, Parameterization};

mod common;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_widenet"));
    c.env_remove("WIDENET_DEVICE");
    // The first-use autotune is tested on its own (below), with its own cache.
    c.env("WIDENET_NO_AUTOTUNE", "1");
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("widenet-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, m: &Matrix) {
    npy::write(path, &[m.rows(), m.cols()], m.data()).unwrap();
}

fn points(seed: u64, n: usize, d: usize) -> Matrix {
    let mut r = widenet::rng::Rng::new(seed);
    Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kernel_command_writes_the_f64_kernel() {
    let d = tmp("kernel");
    let (x1, x2) = (points(1, 5, 3), points(2, 4, 3));
    write(&d.join("x1.npy"), &x1);
    write(&d.join("x2.npy"), &x2);
    let out = d.join("k.npy");
    let (code, _, err) = run(&[
        "kernel",
        "--x1",
        s(&d.join("x1.npy")),
        "--x2",
        s(&d.join("x2.npy")),
        "--activation",
        "erf:1.5,0.5,0.1",
        "--depth",
        "2",
        "--w-std",
        "1.3",
        "--b-std",
        "0.2",
        "--get",
        "nngp",
        "--out",
        s(&out),
        "--precision",
        "f64",
    ]);
    assert_eq!(code, 0, "{err}");
    let a = npy::read(&out).unwrap();
    assert_eq!(a.shape, vec![5, 4]);
    assert_eq!(a.dtype, "<f8");
    let arch = Arch::mlp(&Mlp {
        depth: 2,
        activation: Activation::Erf {
            a: 1.5,
            b: 0.5,
            c: 0.1,
        },
        w_std: 1.3,
        b_std: Some(0.2),
        parameterization: Parameterization::Ntk,
        width: 512,
        d_out: 1,
    });
    let want = kernels_f64(&arch, &x1, Some(&x2), Want::NNGP)
        .unwrap()
        .nngp
        .unwrap();
    assert_eq!(a.data, want.data());
}

#[test]
fn kernel_command_f32_on_the_cpu_backend() {
    let d = tmp("kernel32");
    let x1 = points(3, 6, 4);
    write(&d.join("x1.npy"), &x1);
    let out = d.join("k.npy");
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "kernel",
        "--x1",
        s(&d.join("x1.npy")),
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let a = npy::read(&out).unwrap();
    assert_eq!((a.shape.clone(), a.dtype.as_str()), (vec![6, 6], "<f4"));
    let arch = Arch::mlp(&Mlp {
        depth: 3,
        activation: Activation::RELU,
        w_std: 1.0,
        b_std: Some(0.0),
        parameterization: Parameterization::Ntk,
        width: 512,
        d_out: 1,
    });
    let want = kernels_f64(&arch, &x1, None, Want::NTK)
        .unwrap()
        .ntk
        .unwrap();
    for (g, w) in a.data.iter().zip(want.data()) {
        assert!((g - w).abs() < 1e-5 * w.abs().max(1.0));
    }
}

#[test]
fn predict_command_writes_mean_and_covariance() {
    let d = tmp("predict");
    let (xt, xs) = (points(4, 8, 3), points(5, 3, 3));
    let yt = points(6, 8, 2);
    write(&d.join("xt.npy"), &xt);
    write(&d.join("yt.npy"), &yt);
    write(&d.join("xs.npy"), &xs);
    for t in ["10", "inf"] {
        let (m, c) = (d.join(format!("m{t}.npy")), d.join(format!("c{t}.npy")));
        let (code, _, err) = run(&[
            "predict",
            "--x-train",
            s(&d.join("xt.npy")),
            "--y-train",
            s(&d.join("yt.npy")),
            "--x-test",
            s(&d.join("xs.npy")),
            "--t",
            t,
            "--diag-reg",
            "1e-4",
            "--mean-out",
            s(&m),
            "--cov-out",
            s(&c),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(npy::read(&m).unwrap().shape, vec![3, 2]);
        let cov = npy::read(&c).unwrap();
        assert_eq!(cov.shape, vec![3, 3]);
        for i in 0..3 {
            assert!(cov.data[i * 3 + i] >= -1e-12, "negative variance at t={t}");
        }
    }
}

#[test]
fn inputs_in_other_dtypes_and_orders_are_converted() {
    // A Fortran-order float64 array and an int64 array, written by hand.
    let d = tmp("dtypes");
    let header = |descr: &str, fortran: bool, shape: &str| -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out
    };
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    let mut f = header("<f8", true, "(2, 3)");
    for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(d.join("f.npy"), &f).unwrap();
    let a = npy::read(&d.join("f.npy")).unwrap();
    assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let mut i = header("<i8", false, "(2, 2)");
    for v in [1i64, -2, 3, 4] {
        i.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(d.join("i.npy"), &i).unwrap();
    assert_eq!(
        npy::read(&d.join("i.npy")).unwrap().data,
        vec![1.0, -2.0, 3.0, 4.0]
    );
    let mut b = header(">f4", false, "(2,)");
    for v in [1.5f32, -2.0] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(d.join("b.npy"), &b).unwrap();
    assert_eq!(npy::read(&d.join("b.npy")).unwrap().data, vec![1.5, -2.0]);
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message_and_no_output() {
    let d = tmp("bad");
    write(&d.join("x.npy"), &points(7, 4, 3));
    write(&d.join("x5.npy"), &points(8, 4, 5));
    let mut nan = points(9, 4, 3);
    nan.data_mut()[4] = f64::NAN;
    write(&d.join("nan.npy"), &nan);
    let full = std::fs::read(d.join("x.npy")).unwrap();
    std::fs::write(d.join("trunc.npy"), &full[..full.len() - 9]).unwrap();
    std::fs::write(d.join("junk.npy"), b"not an npy file at all").unwrap();
    write(
        &d.join("empty.npy"),
        &Matrix::from_vec(0, 3, vec![]).unwrap(),
    );
    widenet::npy::write(&d.join("flat.npy"), &[12], &[0.5f64; 12]).unwrap();
    let out = d.join("out.npy");
    let x = s(&d.join("x.npy")).to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                s(&d.join("flat.npy")).into(),
            ],
            "x.reshape(-1, 1) for 12 points of one feature",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                s(&d.join("missing.npy")).into(),
            ],
            "missing.npy",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--x2".into(),
                s(&d.join("x5.npy")).into(),
            ],
            "features",
        ),
        (
            vec!["kernel".into(), "--x1".into(), s(&d.join("nan.npy")).into()],
            "non-finite",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                s(&d.join("trunc.npy")).into(),
            ],
            "trunc.npy",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                s(&d.join("junk.npy")).into(),
            ],
            "junk.npy",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                s(&d.join("empty.npy")).into(),
            ],
            "empty",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--activation".into(),
                "swish".into(),
            ],
            "unknown activation",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--arch".into(),
                "Relu, Dense(1)".into(),
            ],
            "layer 1 (Relu): its infinite-width kernel needs a Gaussian input",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--parameterization".into(),
                "mup".into(),
            ],
            "parameterization",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--w-std".into(),
                "-1".into(),
            ],
            "w-std",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--width".into(),
                "0".into(),
                "--parameterization".into(),
                "standard".into(),
            ],
            "width",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--get".into(),
                "both".into(),
            ],
            "--get",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--precision".into(),
                "f16".into(),
            ],
            "--precision",
        ),
        (
            vec![
                "kernel".into(),
                "--x1".into(),
                x.clone(),
                "--device".into(),
                "no-such-gpu".into(),
            ],
            "no device",
        ),
    ];
    for (mut args, needle) in cases {
        args.extend(["--out".to_string(), s(&out).to_string()]);
        let refs: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let (code, _, err) = run(&refs);
        assert_eq!(code, 2, "{args:?}: exit {code}, stderr {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: '{err}' lacks '{needle}'"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(!out.exists(), "{args:?} left an output file");
    }
    let predict_cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--t", "-1"], "--t"),
        (vec!["--t", "soon"], "--t"),
        (vec!["--diag-reg", "-0.1"], "--diag-reg"),
        (vec!["--learning-rate", "0"], "--lr must be positive"),
        (vec!["--lr", "-1"], "--lr must be positive"),
    ];
    for (extra, needle) in predict_cases {
        let mut args = vec![
            "predict",
            "--x-train",
            &x,
            "--y-train",
            &x,
            "--x-test",
            &x,
            "--mean-out",
            s(&out),
        ];
        args.extend(extra);
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: '{err}' lacks '{needle}'");
        assert!(!out.exists());
    }
}

#[test]
fn repeated_training_points_ask_for_diag_reg() {
    let d = tmp("singular");
    let mut x = points(10, 4, 3);
    let row0: Vec<f64> = x.row(0).to_vec();
    x.data_mut()[3..6].copy_from_slice(&row0);
    write(&d.join("x.npy"), &x);
    write(&d.join("y.npy"), &points(11, 4, 1));
    let m = d.join("m.npy");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let (code, _, err) = run(&[
        "predict",
        "--x-train",
        &p(&d.join("x.npy")),
        "--y-train",
        &p(&d.join("y.npy")),
        "--x-test",
        &p(&d.join("x.npy")),
        "--activation",
        "identity",
        "--depth",
        "1",
        "--mean-out",
        &p(&m),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--diag-reg"), "{err}");
    assert!(!m.exists());
}

#[test]
fn devices_json_lists_adapters() {
    let (code, out, err) = run(&["devices", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for a in v.as_array().unwrap() {
        for k in ["index", "name", "backend", "device_type", "driver"] {
            assert!(a.get(k).is_some(), "missing {k} in {a}");
        }
    }
}

#[test]
fn bench_json_has_the_documented_shape() {
    let (code, out, err) = run(&[
        "--device", "cpu", "bench", "matmul", "--sizes", "16,33", "--runs", "2", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["adapter"]["name"], "cpu");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1]["op"], "matmul");
    assert_eq!(r[1]["m"], 33);
    assert!(r[1]["gflops"].as_f64().unwrap() > 0.0);
    assert!(r[1]["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(r[1]["timing"], "wall");
}

#[test]
fn bench_superposition_sets_the_batched_run_against_the_one_member_loop() {
    let (code, out, err) = run(&[
        "--device",
        "cpu",
        "bench",
        "superposition",
        "--quick",
        "--steps",
        "3",
        "--runs",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["op"], "superposition");
    let groups = r["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["relu", "linear", "phase"]);
    // The quick preset: 5 sparsities x 1 seed per model; 5 x 5 x 4 restarts
    // in the phase diagram.
    let members: Vec<u64> = groups
        .iter()
        .map(|g| g["members"].as_u64().unwrap())
        .collect();
    assert_eq!(members, [5, 5, 100]);
    let sum = |k: &str| groups.iter().map(|g| g[k].as_f64().unwrap()).sum::<f64>();
    let (batched, solo) = (sum("batched_seconds"), sum("solo_loop_seconds"));
    assert!(batched > 0.0 && solo > 0.0, "{r}");
    let speedup = r["speedup"].as_f64().unwrap();
    assert!((speedup - solo / batched).abs() < 1e-9 * speedup, "{r}");
    let rate = r["batched_member_steps_per_second"].as_f64().unwrap();
    assert!((rate - 110.0 * 3.0 / batched).abs() < 1e-9 * rate, "{r}");
}

#[test]
fn init_train_forward_round_trip() {
    let d = tmp("train");
    let (x, y) = (points(20, 32, 4), points(21, 32, 1));
    write(&d.join("x.npy"), &x);
    write(&d.join("y.npy"), &y);
    let p = d.join("p.safetensors");
    let (code, _, err) = run(&[
        "init",
        "--d-in",
        "4",
        "--width",
        "64",
        "--depth",
        "2",
        "--ensemble",
        "3",
        "--seed",
        "5",
        "--parameterization",
        "mup",
        "--base-width",
        "16",
        "--out",
        s(&p),
    ]);
    assert_eq!(code, 0, "{err}");
    let p2 = d.join("p2.safetensors");
    let log = d.join("log.json");
    let toml = d.join("run.toml");
    std::fs::write(&toml, "optimizer = \"adam\"\nlr = [0.01, 0.02, 0.03]\nsteps = 20\nbatch-size = 8\nlog-every = 5\n").unwrap();
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "train",
        "--config",
        s(&toml),
        "--params",
        s(&p),
        "--x",
        s(&d.join("x.npy")),
        "--y",
        s(&d.join("y.npy")),
        "--steps",
        "12",
        "--out",
        s(&p2),
        "--log",
        s(&log),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let l: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    // The flag (12 steps) wins over the file (20); the file's per-member rates are used.
    assert_eq!(l["steps"].as_array().unwrap().last().unwrap(), 12);
    assert_eq!(l["config"]["lr"].as_array().unwrap().len(), 3);
    assert_eq!(l["diverged_at"].as_array().unwrap().len(), 3);
    let f = d.join("f.npy");
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "forward",
        "--params",
        s(&p2),
        "--x",
        s(&d.join("x.npy")),
        "--out",
        s(&f),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(npy::read(&f).unwrap().shape, vec![3, 32, 1]);
    // Bad runs: exit 2, nothing written.
    let bad = d.join("bad.safetensors");
    for (args, needle) in [
        (
            vec![
                "train",
                "--params",
                s(&p),
                "--x",
                s(&d.join("x.npy")),
                "--y",
                s(&d.join("y.npy")),
                "--steps",
                "0",
            ],
            "--steps",
        ),
        (
            vec![
                "train",
                "--params",
                s(&p),
                "--x",
                s(&d.join("x.npy")),
                "--y",
                s(&d.join("y.npy")),
                "--lr",
                "-1",
            ],
            "--lr",
        ),
        (
            vec![
                "train",
                "--params",
                s(&p),
                "--x",
                s(&d.join("x.npy")),
                "--y",
                s(&d.join("y.npy")),
                "--optimizer",
                "rmsprop",
            ],
            "optimizer",
        ),
        (
            vec![
                "train",
                "--params",
                s(&d.join("x.npy")),
                "--x",
                s(&d.join("x.npy")),
                "--y",
                s(&d.join("y.npy")),
            ],
            "safetensors",
        ),
        (
            vec![
                "train",
                "--params",
                s(&p),
                "--x",
                s(&d.join("y.npy")),
                "--y",
                s(&d.join("y.npy")),
            ],
            "features",
        ),
        (vec!["init", "--d-in", "4", "--width", "0"], "--width"),
        (vec!["init", "--d-in", "4", "--ensemble", "0"], "--ensemble"),
        (
            vec!["init", "--d-in", "4", "--parameterization", "xyz"],
            "parameterization",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--out", s(&bad)]);
        let (code, _, err) = run(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(err.contains(needle), "{a:?}: '{err}' lacks '{needle}'");
        assert!(!bad.exists());
    }
}

#[test]
fn bench_all_reports_every_measurement_with_its_ceiling() {
    let (code, out, err) = run(&["bench", "all", "--runs", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = v.as_array().unwrap();
    let ops: Vec<&str> = r.iter().map(|x| x["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["copy", "matmul", "matmul", "matmul", "ntk", "train_step"]
    );
    for x in r {
        // The adapter in every record, and a fraction of a named ceiling.
        for key in ["name", "vendor", "backend", "driver"] {
            assert!(x["adapter"][key].is_string(), "{x}");
        }
        let f = x["fraction_of_ceiling"].as_f64().unwrap();
        assert!(f > 0.0 && f.is_finite(), "{x}");
        assert!(
            ["copy", "matmul"].contains(&x["ceiling"].as_str().unwrap()),
            "{x}"
        );
    }
    assert_eq!(r[0]["fraction_of_ceiling"], 1.0);
    assert!(r[0]["bytes_per_second"].as_f64().unwrap() > 0.0);
    let best = r[1..4]
        .iter()
        .map(|x| x["fraction_of_ceiling"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(best, 1.0);
    // The NTK's result bytes against the copy bandwidth; the step's FLOPs
    // against the best product.
    let ntk = &r[4];
    let n = ntk["m"].as_f64().unwrap();
    let bytes = ntk["bytes_per_second"].as_f64().unwrap();
    assert!((bytes * ntk["seconds"].as_f64().unwrap() / (4.0 * n * n) - 1.0).abs() < 1e-9);
    let want = bytes / r[0]["bytes_per_second"].as_f64().unwrap();
    assert!((ntk["fraction_of_ceiling"].as_f64().unwrap() / want - 1.0).abs() < 1e-9);
    assert_eq!(r[5]["ceiling"], "matmul");
    assert!(r[5]["gflops"].as_f64().unwrap() > 0.0);
    // Without --json: a table, one line per measurement.
    let (code, out, err) = run(&["bench", "all", "--runs", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" of ")).count(),
        6,
        "{out}"
    );
    assert!(out.contains("GFLOP/s") && out.contains("GB/s"), "{out}");
}

#[test]
fn tune_measures_once_then_every_command_reads_the_cache() {
    if common::gpu().is_none() {
        return;
    }
    let d = tmp("tune");
    let cache = d.join("cache");
    let x = d.join("x.npy");
    write(&x, &points(3, 6, 4));
    let out = d.join("k.npy");
    let with_cache = |args: &[&str]| {
        let o = bin()
            .env_remove("WIDENET_NO_AUTOTUNE")
            .env("WIDENET_CACHE_DIR", &cache)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let kernel = [
        "kernel",
        "--x1",
        s(&x),
        "--get",
        "ntk",
        "--out",
        s(&out),
        "--precision",
        "f32",
        "--device",
        "gpu",
    ];
    // --no-autotune: nothing measured, nothing cached.
    let mut skip = kernel.to_vec();
    skip.push("--no-autotune");
    let (code, _, err) = with_cache(&skip);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("tuning matrix products"), "{err}");
    assert!(!cache.join("autotune.json").exists());

    let (code, json, err) = with_cache(&["tune", "--json", "--device", "gpu"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["source"].as_str().unwrap().starts_with("measured now"),
        "{json}"
    );
    let trials = v["tune"]["trials"].as_array().unwrap();
    assert!(trials.len() >= 6, "{json}");
    for t in trials {
        assert!(t["gflops"].as_f64().unwrap() > 0.0);
        assert!(t["rel_err"].as_f64().unwrap() < 1e-4, "{t}");
    }
    assert!(cache.join("autotune.json").is_file());

    // A GPU command now takes the plan from the cache without measuring.
    let (code, _, err) = with_cache(&kernel);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("tuning matrix products"), "{err}");
    let (code, json, err) = with_cache(&["tune", "--json", "--device", "gpu"]);
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(again["source"], "cached");
    assert_eq!(again["tune"]["plan"], v["tune"]["plan"]);

    // The CPU backend has nothing to tune.
    let (code, _, err) = with_cache(&["tune", "--device", "cpu"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CPU backend"), "{err}");
    let (code, _, err) = with_cache(&["bench", "matmul", "--dtype", "f16", "--device", "cpu"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a GPU adapter"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bench_train_reports_steps_and_whole_runs() {
    let (code, json, err) = run(&[
        "bench",
        "train",
        "--json",
        "--ensemble",
        "2",
        "--width",
        "8",
        "--depth",
        "1",
        "--n",
        "8",
        "--d",
        "4",
        "--solo-members",
        "3",
        "--solo-width",
        "8",
        "--run-steps",
        "2",
        "--runs",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 3, "{json}");
    assert_eq!(r[0]["op"], "train_step");
    assert!(r[0]["step_over_matmul"].as_f64().unwrap() > 0.0);
    assert_eq!(r[1]["op"], "train_batched_vs_solo");
    assert_eq!(r[2]["op"], "train_batched_vs_solo_runs");
    for x in &r[1..] {
        assert_eq!(x["members"], 3);
        assert!(x["speedup"].as_f64().unwrap() > 0.0, "{x}");
    }
    assert_eq!(r[2]["steps"], 2);
}

#[test]
fn cross_entropy_with_one_output_is_refused_with_the_reason() {
    let d = tmp("xent1");
    write(&d.join("x.npy"), &points(30, 10, 3));
    let labels: Vec<f64> = (0..10).map(|i| (i % 2) as f64).collect();
    npy::write(&d.join("y.npy"), &[10], &labels).unwrap();
    let p = d.join("p.safetensors");
    let (code, _, err) = run(&[
        "init",
        "--d-in",
        "3",
        "--width",
        "8",
        "--d-out",
        "1",
        "--ensemble",
        "2",
        "--out",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = d.join("q.safetensors");
    let (code, _, err) = run(&[
        "--device",
        "cpu",
        "train",
        "--params",
        p.to_str().unwrap(),
        "--x",
        d.join("x.npy").to_str().unwrap(),
        "--y",
        d.join("y.npy").to_str().unwrap(),
        "--loss",
        "xent",
        "--steps",
        "2",
        "--lr",
        "0.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cross-entropy needs d_out >= 2"), "{err}");
    assert!(!out.exists());
}

#[test]
fn kernel_takes_x_for_x1_and_every_activation_flag_explains_its_parameters() {
    let d = tmp("kernel-x");
    write(&d.join("x.npy"), &points(31, 5, 3));
    let (a, b) = (d.join("a.npy"), d.join("b.npy"));
    for (flag, out) in [("--x", &a), ("--x1", &b)] {
        let (code, _, err) = run(&[
            "--device",
            "cpu",
            "kernel",
            flag,
            d.join("x.npy").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{flag}: {err}");
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    for cmd in ["kernel", "init", "compare"] {
        let (_, out, _) = run(&[cmd, "--help"]);
        for part in [
            "max(x, ALPHA x)",
            "A x below 0 and B x above",
            "A erf(B x) + C",
        ] {
            assert!(out.contains(part), "{cmd} --help lacks '{part}'");
        }
    }
}

#[test]
fn quiet_on_any_command_silences_progress_but_says_where_outputs_went() {
    let d = tmp("quiet");
    write(&d.join("x.npy"), &points(41, 16, 3));
    write(&d.join("y.npy"), &points(42, 16, 1));
    let p = d.join("p.safetensors");
    // Before the command's name, as a global flag, and after it.
    let (code, _, err) = run(&[
        "--quiet",
        "init",
        "--d-in",
        "3",
        "--width",
        "32",
        "--ensemble",
        "2",
        "--out",
        s(&p),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("wrote"), "{err}");
    let (x, y) = (d.join("x.npy"), d.join("y.npy"));
    for quiet in [false, true] {
        let p2 = d.join(format!("p2-{quiet}.safetensors"));
        let mut args = vec![
            "--device",
            "cpu",
            "train",
            "--params",
            s(&p),
            "--x",
            s(&x),
            "--y",
            s(&y),
            "--lr",
            "0.1",
            "--steps",
            "4",
            "--out",
            s(&p2),
        ];
        if quiet {
            args.push("--quiet");
        }
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(err.contains("step 4/4"), !quiet, "quiet {quiet}: {err}");
        assert_eq!(err.contains("final loss"), !quiet, "quiet {quiet}: {err}");
        assert!(err.contains(&format!("wrote {}", p2.display())), "{err}");
    }
    let (code, out, err) = run(&[
        "--device",
        "cpu",
        "forward",
        "--params",
        s(&p),
        "--x",
        s(&d.join("x.npy")),
        "--out",
        s(&d.join("f.npy")),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(d.join("f.npy").exists());
    assert!(
        err.contains(&format!("wrote {}", d.join("f.npy").display())),
        "{err}"
    );
    // An experiment under --quiet prints no report, only where it went.
    let r = d.join("dl");
    let (code, out, err) = run(&[
        "--device",
        "cpu",
        "deep-linear",
        "--quick",
        "--seeds",
        "1",
        "--out",
        s(&r),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let wrote = format!("wrote {} (report.md, report.json, figures)", r.display());
    assert_eq!(err.lines().last(), Some(wrote.as_str()), "{err}");
    assert!(r.join("report.md").is_file());
}
