//! Sweeps and kernels spread over workers: `--shard I/N` with `widenet merge`
//! gives the single-machine report number for number; `kernel --rows I/N`
//! fills one `.npy` from workers running at once, and `--check` names what
//! is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use widenet::matrix::Matrix;
use widenet::npy;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_widenet"));
    c.env_remove("WIDENET_DEVICE");
    c.env("WIDENET_NO_AUTOTUNE", "1");
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("widenet-dist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(|x| x.as_str()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

// A small compare (3 widths, 2 seeds) on the CPU backend: bit-for-bit reproducible.
const COMPARE: &[&str] = &[
    "--device", "cpu", "compare", "--quick", "--seeds", "2", "--steps", "10", "--quiet",
];

#[test]
fn two_shards_merged_equal_the_single_machine_report() {
    let base = tmp("merge");
    let (one, s0, s1, all) = (
        base.join("one"),
        base.join("s0"),
        base.join("s1"),
        base.join("all"),
    );
    let with = |extra: &[&str]| -> (i32, String) {
        let mut a: Vec<&str> = COMPARE.to_vec();
        a.extend_from_slice(extra);
        run(&a)
    };
    let (rc, log) = with(&["--out", s(&one)]);
    assert_eq!(rc, 0, "{log}");
    let (rc, log) = with(&["--shard", "0/2", "--out", s(&s0)]);
    assert_eq!(rc, 0, "{log}");
    assert!(!s0.join("report.json").exists(), "a shard wrote a report");
    let shard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s0.join("shard.json")).unwrap()).unwrap();
    // Widths 32, 128, 512: units 0 and 2 belong to shard 0 of 2.
    assert_eq!(shard["owned"], serde_json::json!(["width-32", "width-512"]));
    assert_eq!(shard["units"].as_array().unwrap().len(), 3);

    // One shard alone: the merge names what is missing and writes nothing.
    let (rc, log) = run(&["merge", s(&all), s(&s0)]);
    assert_eq!(rc, 2, "{log}");
    assert!(
        log.contains("units missing: width-128") && log.contains("1/2"),
        "{log}"
    );
    assert!(!all.join("report.json").exists());
    // The same shard twice is refused, naming it.
    let (rc, log) = run(&["merge", s(&all), s(&s0), s(&s0)]);
    assert_eq!(rc, 2, "{log}");
    assert!(log.contains("given twice"), "{log}");

    let (rc, log) = with(&["--shard", "1/2", "--out", s(&s1)]);
    assert_eq!(rc, 0, "{log}");
    let (rc, log) = run(&["--device", "cpu", "merge", s(&all), s(&s1), s(&s0)]);
    assert_eq!(rc, 0, "{log}");
    // Number for number (the report holds no timings).
    assert_eq!(report(&all), report(&one));

    // A shard of another configuration is refused.
    let other = base.join("other");
    let (rc, log) = with(&["--n-test", "15", "--shard", "1/2", "--out", s(&other)]);
    assert_eq!(rc, 0, "{log}");
    let (rc, log) = run(&["merge", s(&base.join("x")), s(&s0), s(&other)]);
    assert_eq!(rc, 2, "{log}");
    assert!(log.contains("ran different"), "{log}");

    // A merge that would have to compute a point is an error, naming it.
    std::fs::remove_file(s1.join("points").join("width-128.json")).unwrap();
    let (rc, log) = run(&["merge", s(&base.join("y")), s(&s0), s(&s1)]);
    assert_eq!(rc, 2, "{log}");
    assert!(
        log.contains("without a saved point") && log.contains("width-128 (in"),
        "{log}"
    );

    // Bad shards and commands that are not sweeps.
    for bad in ["2/2", "1", "a/b", "0/0"] {
        let (rc, log) = with(&["--shard", bad, "--out", s(&base.join("z"))]);
        assert_eq!(rc, 2, "{bad}: {log}");
        assert!(log.contains("--shard"), "{log}");
    }
    let (rc, log) = run(&["deep-linear", "--quick", "--shard", "0/2"]);
    assert_eq!(rc, 2, "{log}");
    assert!(log.contains("only the sweeps"), "{log}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn kernel_rows_from_concurrent_workers_equal_the_whole_kernel() {
    let base = tmp("rows");
    let mut r = widenet::rng::Rng::new(3);
    let (n, d) = (23, 4);
    let x = Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap();
    let xp = base.join("x.npy");
    npy::write(&xp, &[n, d], x.data()).unwrap();
    let full = base.join("full.npy");
    let k = base.join("k.npy");
    let args = |rows: Option<&str>, out: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "kernel",
            "--x1",
            s(&xp),
            "--precision",
            "f64",
            "--depth",
            "2",
            "--quiet",
            "--out",
            s(out),
        ]
        .iter()
        .map(|v| v.to_string())
        .collect();
        if let Some(rw) = rows {
            a.extend(["--rows".to_string(), rw.to_string()]);
        }
        a
    };
    let (rc, log) = run(&as_str(&args(None, &full)));
    assert_eq!(rc, 0, "{log}");

    let (rc, log) = run(&as_str(&args(Some("1/3"), &k)));
    assert_eq!(rc, 0, "{log}");
    let (rc, log) = run(&["kernel", "--check", s(&k)]);
    assert_eq!(rc, 2, "{log}");
    // 23 rows in 3 blocks: 0..7, 7..15, 15..23.
    assert!(
        log.contains("2 of 3 blocks missing: 0/3 (rows 0..7), 2/3 (rows 15..23)"),
        "{log}"
    );
    // The two other blocks at once.
    let mut kids: Vec<_> = ["0/3", "2/3"]
        .iter()
        .map(|rw| bin().args(args(Some(rw), &k)).spawn().unwrap())
        .collect();
    for c in &mut kids {
        assert!(c.wait().unwrap().success());
    }
    let (rc, log) = run(&["kernel", "--check", s(&k)]);
    assert_eq!(rc, 0, "{log}");
    assert!(log.contains("complete"), "{log}");
    let got = npy::read(&k).unwrap();
    let want = npy::read(&full).unwrap();
    assert_eq!(got.shape, vec![n, n]);
    assert_eq!(got.dtype, want.dtype);
    assert_eq!(
        got.data, want.data,
        "row blocks differ from the whole kernel"
    );

    // A worker of another job (other depth) is refused, and changes nothing.
    let mut other = args(Some("0/3"), &k);
    other[6] = "3".into();
    let (rc, log) = run(&as_str(&other));
    assert_eq!(rc, 2, "{log}");
    assert!(log.contains("another job"), "{log}");
    assert_eq!(npy::read(&k).unwrap().data, want.data);
    let (rc, log) = run(&["kernel", "--check", s(&base.join("none.npy"))]);
    assert_eq!(rc, 2, "{log}");
    let _ = std::fs::remove_dir_all(&base);
}

/// The Slurm scripts of examples/slurm, run as Slurm would run them (the
/// array variables set, `widenet` on PATH), without Slurm.
#[test]
fn slurm_array_scripts_give_the_single_machine_report_and_a_whole_kernel() {
    let base = tmp("slurm");
    let exe = Path::new(env!("CARGO_BIN_EXE_widenet"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = |name: &str, task: Option<(usize, usize)>, args: &[&str]| {
        let mut c = Command::new("bash");
        c.arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/slurm")
                .join(name),
        );
        c.args(args)
            .env("PATH", &path)
            .env("WIDENET_NO_AUTOTUNE", "1");
        if let Some((i, n)) = task {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", n.to_string());
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let one = base.join("one");
    let mut single = COMPARE.to_vec();
    single.extend_from_slice(&["--out", s(&one)]);
    assert_eq!(run(&single).0, 0);
    let out = base.join("sweep");
    for i in 0..3 {
        script(
            "shard.sbatch",
            Some((i, 3)),
            &[&[s(&out)][..], COMPARE].concat(),
        );
    }
    script("merge.sbatch", None, &[s(&out), "3"]);
    assert_eq!(report(&out), report(&one));

    let mut r = widenet::rng::Rng::new(5);
    let x = Matrix::from_vec(9, 3, (0..27).map(|_| r.normal()).collect()).unwrap();
    let xp = base.join("x.npy");
    npy::write(&xp, &[9, 3], x.data()).unwrap();
    let k = base.join("k.npy");
    let full = base.join("full.npy");
    let flags = ["--precision", "f64", "--device", "cpu"];
    for i in 0..2 {
        script(
            "kernel.sbatch",
            Some((i, 2)),
            &[&[s(&xp), s(&k)][..], &flags].concat(),
        );
    }
    assert_eq!(run(&["kernel", "--check", s(&k)]).0, 0);
    let (rc, log) = run(&[&["kernel", "--x1", s(&xp), "--out", s(&full)][..], &flags].concat());
    assert_eq!(rc, 0, "{log}");
    assert_eq!(npy::read(&k).unwrap().data, npy::read(&full).unwrap().data);
    let _ = std::fs::remove_dir_all(&base);
}

fn shard_record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("shard.json")).unwrap()).unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The report without its top-level fields `volatile` (timings, and a
/// command line naming the output folder).
fn report_without(dir: &Path, volatile: &[&str]) -> serde_json::Value {
    let mut r = report(dir);
    let m = r.as_object_mut().unwrap();
    for k in volatile {
        assert!(m.remove(*k).is_some(), "{k} is not in {}", dir.display());
    }
    r
}

/// `args` run whole, as shards 0/2 and 1/2, and merged: the merged report
/// equals the whole run's (all but `volatile`), exactly; a missing shard's
/// units and a unit claimed by two shards are named. Returns the folder
/// (`one`, `s0`, `s1`, `all` in it).
fn merged_equals_single(name: &str, args: &[&str], volatile: &[&str]) -> PathBuf {
    let base = tmp(name);
    let dir = |d: &str| base.join(d);
    let with = |extra: &[&str]| {
        let (rc, log) = run(&[args, extra].concat());
        assert_eq!(rc, 0, "{name} {extra:?}: {log}");
    };
    with(&["--out", s(&dir("one"))]);
    with(&["--shard", "0/2", "--out", s(&dir("s0"))]);
    with(&["--shard", "1/2", "--out", s(&dir("s1"))]);
    assert!(
        !dir("s0").join("report.json").exists(),
        "a shard wrote a report"
    );
    let (r0, r1) = (shard_record(&dir("s0")), shard_record(&dir("s1")));
    let (units, own0, own1) = (
        names(&r0["units"]),
        names(&r0["owned"]),
        names(&r1["owned"]),
    );
    assert_eq!(r0["experiment"], name);
    assert_eq!(names(&r1["units"]), units);
    assert!(units.len() >= 2, "{name}: {units:?}");
    // Round robin: unit k belongs to shard k mod 2.
    let want = |i: usize| -> Vec<String> { units.iter().skip(i).step_by(2).cloned().collect() };
    assert_eq!((own0.clone(), own1.clone()), (want(0), want(1)), "{name}");

    // Shard 1 missing: its units are named, nothing is written.
    let (rc, log) = run(&["merge", s(&dir("all")), s(&dir("s0"))]);
    assert_eq!(rc, 2, "{log}");
    assert!(
        log.contains(&format!(
            "units missing: {} (shards not given: 1/2)",
            own1.join(", ")
        )),
        "{name}: {log}"
    );
    assert!(!dir("all").join("report.json").exists());
    // A shard that also claims a unit of shard 0: the unit is named.
    let dup = dir("dup");
    std::fs::create_dir_all(dup.join("points")).unwrap();
    for f in std::fs::read_dir(dir("s1").join("points")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dup.join("points").join(f.file_name().unwrap())).unwrap();
    }
    let stolen = &own0[0];
    let file = format!("{stolen}.json");
    std::fs::copy(
        dir("s0").join("points").join(&file),
        dup.join("points").join(&file),
    )
    .unwrap();
    let mut r = r1.clone();
    r["owned"]
        .as_array_mut()
        .unwrap()
        .push(stolen.as_str().into());
    std::fs::write(dup.join("shard.json"), r.to_string()).unwrap();
    let (rc, log) = run(&["merge", s(&dir("x")), s(&dir("s0")), s(&dup)]);
    assert_eq!(rc, 2, "{log}");
    assert!(
        log.contains(&format!(
            "units computed twice: {stolen} (in {}, {})",
            s(&dir("s0")),
            s(&dup)
        )),
        "{name}: {log}"
    );

    let (rc, log) = run(&[
        "--device",
        "cpu",
        "merge",
        s(&dir("all")),
        s(&dir("s1")),
        s(&dir("s0")),
    ]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(
        report_without(&dir("all"), volatile),
        report_without(&dir("one"), volatile),
        "{name}: the merged report differs from the single run's"
    );
    base
}

#[test]
fn chaos_shards_merge_to_the_single_run() {
    let base = merged_equals_single(
        "chaos",
        &[
            "--device",
            "cpu",
            "chaos",
            "--quick",
            "--quiet",
            "--sw2",
            "1:3:8",
            "--sb2",
            "0:0.5:4",
            "--prop-depth",
            "6",
            "--widths",
            "16,32",
            "--seeds",
            "1",
            "--depths",
            "3,6",
            "--train-sw2",
            "1:3:3",
            "--steps",
            "20",
            "--train-width",
            "16",
        ],
        &["seconds", "theory_seconds"],
    );
    let units = names(&shard_record(&base.join("s0"))["units"]);
    assert_eq!(
        units,
        [
            "theory",
            "prop-w16",
            "prop-w32",
            "gradients",
            "train-d3",
            "train-d6"
        ]
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn learning_curves_shards_merge_to_the_single_run() {
    let base = merged_equals_single(
        "learning-curves",
        &["--device", "cpu", "learning-curves", "--quick", "--quiet"],
        &["timing"],
    );
    // The spectrum is unit 0 (shard 0's); shard 1 saved no spectrum.
    let units = names(&shard_record(&base.join("s0"))["units"]);
    assert_eq!(units[0], "spectrum");
    assert!(!base.join("s1/points/spectrum.json").exists());
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn random_labels_shards_merge_to_the_single_run() {
    let base = merged_equals_single(
        "random-labels",
        &["--device", "cpu", "random-labels", "--quick", "--quiet"],
        &["seconds"],
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn sharpness_shards_merge_to_the_single_run() {
    let base = merged_equals_single(
        "sharpness",
        &[
            "--device",
            "cpu",
            "sharpness",
            "--quick",
            "--quiet",
            "--widths",
            "8,16",
            "--steps",
            "60",
            "--every",
            "20",
            "--n-train",
            "16",
        ],
        &["seconds"],
    );
    // ntk then mup, each its calibration then its widths: shard 1 owns
    // ntk-w8 and mup's calibration, and computed ntk's calibration too
    // (kept in its own points, not merged: the merge copies shard 0's).
    let units = names(&shard_record(&base.join("s0"))["units"]);
    assert_eq!(
        units,
        [
            "calibration-ntk",
            "ntk-w8",
            "ntk-w16",
            "calibration-mup",
            "mup-w8",
            "mup-w16"
        ]
    );
    assert!(base.join("s1/points/calibration-ntk.json").exists());
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn superposition_shards_merge_to_the_single_run() {
    let args = ["--device", "cpu", "superposition", "--quick", "--quiet"];
    let base = merged_equals_single("superposition", &args, &["timing", "command"]);
    // 2 models x 5 sparsities, then 5 rows of the phase diagram.
    let units = names(&shard_record(&base.join("s0"))["units"]);
    assert_eq!(units.len(), 15);
    assert_eq!(
        (units[0].as_str(), units[14].as_str()),
        ("relu-r0-s0", "phase-p4")
    );
    // The weights too, bit for bit.
    let read = |d: &str| std::fs::read(base.join(d).join("weights.safetensors")).unwrap();
    let (a, b) = (read("one"), read("all"));
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let mut names_a = a.names();
    names_a.sort();
    assert_eq!(names_a.len(), 6);
    for n in names_a {
        assert_eq!(
            a.tensor(n).unwrap().data(),
            b.tensor(n).unwrap().data(),
            "{n}"
        );
    }
    // A finished shard resumed keeps its points and writes the same record.
    let before = shard_record(&base.join("s0"));
    let (rc, log) = run(&[
        &args[..],
        &["--shard", "0/2", "--resume", "--out", s(&base.join("s0"))],
    ]
    .concat());
    assert_eq!(rc, 0, "{log}");
    assert_eq!(shard_record(&base.join("s0")), before);
    let _ = std::fs::remove_dir_all(&base);
}

/// In f32, a block of a kernel of x with itself takes its diagonal entries
/// by the exact diagonal path, as the whole kernel does (through the
/// off-diagonal formula the angle of a point with itself loses about 1e-4).
#[test]
fn kernel_rows_in_f32_keep_the_exact_diagonal() {
    let base = tmp("rows-f32");
    let mut r = widenet::rng::Rng::new(5);
    let (n, d) = (37, 4);
    let x = Matrix::from_vec(n, d, (0..n * d).map(|_| r.normal()).collect()).unwrap();
    let xp = base.join("x.npy");
    npy::write(&xp, &[n, d], x.data()).unwrap();
    let (full, k) = (base.join("full.npy"), base.join("k.npy"));
    let arch = "Dense(64, W_std=1.5, b_std=0.1), Relu, Dense(1)";
    let common = [
        "--device",
        "cpu",
        "kernel",
        "--x1",
        s(&xp),
        "--arch",
        arch,
        "--quiet",
    ];
    let (rc, log) = run(&[&common[..], &["--out", s(&full)]].concat());
    assert_eq!(rc, 0, "{log}");
    for rw in ["0/3", "1/3", "2/3"] {
        let (rc, log) = run(&[&common[..], &["--rows", rw, "--out", s(&k)]].concat());
        assert_eq!(rc, 0, "{log}");
    }
    let got = npy::read(&k).unwrap();
    let want = npy::read(&full).unwrap();
    let (g, w) = (&got.data, &want.data);
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs()));
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (g[i * n + j], w[i * n + j]);
            // f32 products of different shapes: rounding only.
            assert!((a - b).abs() <= 1e-6 * scale, "({i}, {j}): {a} against {b}");
        }
    }
}
