//! Throughput measurements behind `widenet bench` and the criterion benches:
//! warm up, time several runs on the device's clock (or the wall clock), report
//! the median.

use serde::Serialize;
use widenet::backend::{Backend, Matmul, Timing};
use widenet::error::Result;

/// One measured operation.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries_per_second: Option<f64>,
    /// Bytes read plus bytes written per second (copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
    /// This result over the same adapter's ceiling measured in the same run
    /// (matmul: the best matmul rate; copy: 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction_of_ceiling: Option<f64>,
    pub seconds: f64,
    pub timing: Timing,
    pub runs: usize,
}

pub use widenet::stats::median;

/// Times `f` `runs` times after one warm-up; returns the median and how it was timed.
pub fn time_median(
    b: &dyn Backend,
    runs: usize,
    f: &mut dyn FnMut() -> Result<()>,
) -> Result<(f64, Timing)> {
    b.time(f)?;
    let mut times = Vec::with_capacity(runs);
    let mut timing = Timing::Wall;
    for _ in 0..runs.max(1) {
        let (t, how) = b.time(f)?;
        times.push(t);
        timing = how;
    }
    Ok((median(times), timing))
}

/// f32 `m x k` times `k x n` on random data.
pub fn matmul(b: &dyn Backend, m: usize, n: usize, k: usize, runs: usize) -> Result<Record> {
    let mut rng = widenet::rng::Rng::new(1);
    let a = b.upload(&rng.normals_f32(m * k))?;
    let bb = b.upload(&rng.normals_f32(k * n))?;
    let mut c = b.zeros(m * n)?;
    let spec = Matmul::new(m, n, k);
    let (seconds, timing) = time_median(b, runs, &mut || b.matmul(&spec, &a, &bb, &mut c))?;
    Ok(product_record("matmul", &spec, seconds, timing, runs))
}

/// The record of a timed product.
fn product_record(
    op: &'static str,
    spec: &Matmul,
    seconds: f64,
    timing: Timing,
    runs: usize,
) -> Record {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    Record {
        op,
        m: Some(m),
        n: Some(n),
        k: Some(k),
        gflops: Some(2.0 * (spec.batch * m * n * k) as f64 / seconds * 1e-9),
        entries_per_second: None,
        bytes_per_second: None,
        fraction_of_ceiling: None,
        seconds,
        timing,
        runs,
    }
}

/// As [`matmul`] with A and B stored as f16 (f32 sums), on a GPU backend
/// whose adapter has SHADER_F16; op `matmul_f16`.
pub fn matmul_f16(b: &dyn Backend, m: usize, n: usize, k: usize, runs: usize) -> Result<Record> {
    let Some(g) = b.as_any().downcast_ref::<widenet::gpu::GpuBackend>() else {
        return Err(widenet::error::Error::invalid(
            "f16 products run on a GPU backend only",
        ));
    };
    let mut rng = widenet::rng::Rng::new(1);
    let a = g.upload_f16(&rng.normals_f32(m * k))?;
    let bb = g.upload_f16(&rng.normals_f32(k * n))?;
    let mut c = g.zeros(m * n)?;
    let spec = Matmul::new(m, n, k);
    let (seconds, timing) = time_median(b, runs, &mut || g.matmul_f16(&spec, &a, &bb, &mut c))?;
    Ok(product_record("matmul_f16", &spec, seconds, timing, runs))
}

/// The depth-`depth` ReLU MLP the benchmarks use by default.
pub fn relu_mlp(depth: usize, width: usize) -> widenet::arch::Arch {
    widenet::arch::Arch::mlp(&widenet::arch::Mlp {
        depth,
        width,
        w_std: 1.4,
        b_std: Some(0.1),
        ..Default::default()
    })
}

/// End-to-end NTK of `n` random points in dimension `d` with themselves (f32):
/// Gram, recursion and the result in host memory, wall clock.
pub fn ntk(
    b: &dyn Backend,
    arch: &widenet::arch::Arch,
    n: usize,
    d: usize,
    runs: usize,
) -> Result<Record> {
    use widenet::kernel::{Want, kernels_device};
    let mut rng = widenet::rng::Rng::new(2);
    let x = widenet::matrix::Matrix::from_vec(n, d, rng.normals_f32(n * d))?;
    let run = || -> Result<f64> {
        let t = std::time::Instant::now();
        let k = kernels_device(b, arch, &x, None, Want::NTK, |_, _| {})?;
        std::hint::black_box(&k);
        Ok(t.elapsed().as_secs_f64())
    };
    run()?;
    let times = (0..runs.max(1))
        .map(|_| run())
        .collect::<Result<Vec<_>>>()?;
    let seconds = median(times);
    Ok(Record {
        op: "ntk",
        m: Some(n),
        n: Some(n),
        k: Some(d),
        gflops: None,
        entries_per_second: Some((n * n) as f64 / seconds),
        bytes_per_second: None,
        fraction_of_ceiling: None,
        seconds,
        timing: Timing::Wall,
        runs,
    })
}

/// The full-batch training step of an ensemble against its matrix products.
#[derive(Clone, Debug, Serialize)]
pub struct TrainStepRecord {
    pub op: &'static str,
    pub ensemble: usize,
    /// The architecture, in the short form.
    pub arch: String,
    pub n: usize,
    pub d: usize,
    /// Median seconds of one step.
    pub step_seconds: f64,
    pub steps_per_second: f64,
    /// Median seconds of the same step's matrix products alone.
    pub matmul_seconds: f64,
    /// `step_seconds / matmul_seconds`.
    pub step_over_matmul: f64,
    /// Floating-point operations of the step's matrix products per second of
    /// the whole step.
    pub gflops: f64,
    /// Share of the step spent outside matrix products.
    pub outside_matmul_share: f64,
    pub timing: Timing,
    pub runs: usize,
}

/// The network (`arch` with `e` members on `d` inputs) and random data of `n` points.
pub fn net_setup(
    arch: &widenet::arch::Arch,
    e: usize,
    n: usize,
    d: usize,
) -> Result<(
    widenet::net::NetSpec,
    widenet::matrix::Matrix<f32>,
    widenet::matrix::Matrix<f32>,
)> {
    let spec = widenet::net::NetSpec {
        arch: arch.clone(),
        d_in: d,
        ensemble: e,
        parameterization: None,
        base_width: 64,
    };
    let mut rng = widenet::rng::Rng::new(3);
    let x = widenet::matrix::Matrix::from_vec(n, d, rng.normals_f32(n * d))?;
    let y = widenet::matrix::Matrix::from_vec(n, 1, rng.normals_f32(n))?;
    Ok((spec, x, y))
}

fn step_cfg() -> widenet::net::train::TrainConfig {
    widenet::net::train::TrainConfig {
        rule: widenet::backend::Rule::Sgd,
        lr: vec![1e-3],
        steps: usize::MAX / 2,
        batch_size: None,
        loss: widenet::backend::Loss::Mse,
        schedule: widenet::net::train::Schedule::Constant,
        log_every: usize::MAX / 2,
        seed: 0,
    }
}

/// Median time of one full-batch step of an ensemble (after a warm-up step).
pub fn train_step_seconds(
    b: &dyn Backend,
    arch: &widenet::arch::Arch,
    e: usize,
    n: usize,
    d: usize,
    runs: usize,
) -> Result<(f64, Timing)> {
    use widenet::net::{ensemble::Ensemble, params::Params, train::Trainer};
    let (spec, x, y) = net_setup(arch, e, n, d)?;
    let mut ens = Ensemble::new(b, &Params::init(&spec, 1)?)?;
    let mut t = Trainer::new(&mut ens, &x, &y, &step_cfg())?;
    time_median(b, runs, &mut || t.step())
}

/// Wall clock of `count` whole training runs of `e` members each, one after
/// the other, as a user would run them: parameters initialized and uploaded,
/// `steps` full-batch steps, the trained parameters read back. One untimed run
/// first compiles the pipelines.
#[allow(clippy::too_many_arguments)]
pub fn train_runs_seconds(
    b: &dyn Backend,
    arch: &widenet::arch::Arch,
    e: usize,
    n: usize,
    d: usize,
    steps: usize,
    count: usize,
) -> Result<f64> {
    use widenet::net::{ensemble::Ensemble, params::Params, train::train};
    let (spec, x, y) = net_setup(arch, e, n, d)?;
    let cfg = widenet::net::train::TrainConfig {
        steps,
        log_every: steps,
        ..step_cfg()
    };
    let run = |seed: u64| -> Result<()> {
        let mut ens = Ensemble::new(b, &Params::init(&spec, seed)?)?;
        train(&mut ens, &x, &y, &cfg, |_, _| {})?;
        std::hint::black_box(ens.params()?);
        Ok(())
    };
    run(0)?;
    let t = std::time::Instant::now();
    for r in 0..count {
        run(r as u64 + 1)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `widenet bench train`: one step against its matrix products timed alone.
pub fn train_step(
    b: &dyn Backend,
    arch: &widenet::arch::Arch,
    e: usize,
    n: usize,
    d: usize,
    runs: usize,
) -> Result<TrainStepRecord> {
    let (spec, _, _) = net_setup(arch, e, n, d)?;
    let (step, timing) = train_step_seconds(b, arch, e, n, d, runs)?;
    // The products of a step: forward (NT), weight gradients (TN), input gradients (NN).
    let mut rng = widenet::rng::Rng::new(4);
    let mut products = Vec::new();
    for layer in spec.dense_layers() {
        let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
        products.push(
            Matmul::new(n, fo, fi)
                .batch(e)
                .trans(false, true)
                .broadcast(l == 0, false),
        );
        products.push(
            Matmul::new(fo, fi, n)
                .batch(e)
                .trans(true, false)
                .broadcast(false, l == 0),
        );
        if l > 0 {
            products.push(Matmul::new(n, fi, fo).batch(e));
        }
    }
    let bufs = products
        .iter()
        .map(|p| {
            Ok((
                b.upload(&rng.normals_f32(p.a_len()))?,
                b.upload(&rng.normals_f32(p.b_len()))?,
                b.zeros(p.c_len())?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut bufs = bufs;
    let (mm, _) = time_median(b, runs, &mut || {
        for (p, (a, bb, c)) in products.iter().zip(bufs.iter_mut()) {
            b.matmul(p, a, bb, c)?;
        }
        Ok(())
    })?;
    Ok(TrainStepRecord {
        op: "train_step",
        ensemble: e,
        arch: arch.to_string(),
        n,
        d,
        step_seconds: step,
        steps_per_second: 1.0 / step,
        matmul_seconds: mm,
        step_over_matmul: step / mm,
        gflops: products
            .iter()
            .map(|p| 2.0 * (p.batch * p.m * p.n * p.k) as f64)
            .sum::<f64>()
            / step
            * 1e-9,
        outside_matmul_share: (1.0 - mm / step).max(0.0),
        timing,
        runs,
    })
}

/// Copy bandwidth of a `mib`-MiB buffer: the memory ceiling of the adapter.
pub fn copy(b: &dyn Backend, mib: usize, runs: usize) -> Result<Record> {
    let n = mib * (1 << 20) / 4;
    let src = b.zeros(n)?;
    let mut dst = b.zeros(n)?;
    let (seconds, timing) = time_median(b, runs, &mut || b.copy(&src, &mut dst))?;
    Ok(Record {
        op: "copy",
        m: Some(n),
        n: None,
        k: None,
        gflops: None,
        entries_per_second: None,
        bytes_per_second: Some(2.0 * (n * 4) as f64 / seconds),
        fraction_of_ceiling: Some(1.0),
        seconds,
        timing,
        runs,
    })
}

/// One measurement of [`all`], as a flat JSON record: the adapter (name,
/// vendor, backend, driver), the measurement's own fields, and its rate as a
/// fraction of one of the adapter's two ceilings measured in the same run
/// (`ceiling`: `copy` bandwidth or the best `matmul` rate).
pub type SuiteRecord = serde_json::Value;

/// The suite on one device: the ceilings (copy bandwidth of a 64 MiB buffer,
/// the best of the matrix products of 256, 512 and 1024), then the NTK of
/// 2000 points (its result's bytes per second against the copy bandwidth: it
/// is bound by writing the result) and a training step (its products' FLOPs
/// per second of the whole step against the best matrix product).
pub fn all(b: &dyn Backend, runs: usize) -> Result<Vec<SuiteRecord>> {
    let copy = copy(b, 64, runs)?;
    let bandwidth = copy.bytes_per_second.unwrap_or(f64::NAN);
    let mm: Vec<Record> = [256usize, 512, 1024]
        .iter()
        .map(|&s| matmul(b, s, s, s, runs))
        .collect::<Result<_>>()?;
    let best = mm.iter().filter_map(|r| r.gflops).fold(0.0, f64::max);
    let mut ntk = ntk(b, &relu_mlp(3, 512), 2000, 64, runs)?;
    let n = ntk.m.unwrap_or(0) as f64;
    ntk.bytes_per_second = Some(4.0 * n * n / ntk.seconds);
    let step = train_step(b, &relu_mlp(2, 256), 8, 256, 32, runs)?;
    let info = b.info();
    let tag = serde_json::json!({
        "name": info.name,
        "vendor": info.vendor,
        "backend": info.backend,
        "driver": format!("{} {}", info.driver, info.driver_info).trim(),
        "device_type": info.device_type,
    });
    let record = |v: serde_json::Value, ceiling: &str, fraction: f64| {
        let mut v = v;
        v["adapter"] = tag.clone();
        v["ceiling"] = ceiling.into();
        v["fraction_of_ceiling"] = fraction.into();
        v
    };
    let mut out = vec![record(serde_json::json!(copy), "copy", 1.0)];
    for r in &mm {
        let g = r.gflops.unwrap_or(0.0);
        out.push(record(serde_json::json!(r), "matmul", g / best));
    }
    let ntk_bytes = ntk.bytes_per_second.unwrap_or(0.0);
    out.push(record(
        serde_json::json!(ntk),
        "copy",
        ntk_bytes / bandwidth,
    ));
    out.push(record(
        serde_json::json!(step),
        "matmul",
        step.gflops / best,
    ));
    Ok(out)
}

/// [`all`]'s records as a table: one line per measurement.
pub fn suite_table(records: &[SuiteRecord]) -> String {
    let mut s = String::new();
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    for r in records {
        let (what, rate) = match r["op"].as_str().unwrap_or("") {
            "copy" => (
                format!("copy {} MiB", (r["m"].as_u64().unwrap_or(0) * 4) >> 20),
                format!("{:.1} GB/s", f(&r["bytes_per_second"]) * 1e-9),
            ),
            "matmul" => (
                format!("matmul {}x{}x{}", r["m"], r["n"], r["k"]),
                format!("{:.1} GFLOP/s", f(&r["gflops"])),
            ),
            "ntk" => (
                format!("ntk {} points, d {}, depth 3", r["m"], r["k"]),
                format!(
                    "{:.1} M entries/s ({:.1} GB/s of result)",
                    f(&r["entries_per_second"]) * 1e-6,
                    f(&r["bytes_per_second"]) * 1e-9
                ),
            ),
            _ => (
                format!(
                    "train step E {}, {}, {} points",
                    r["ensemble"],
                    r["arch"].as_str().unwrap_or("?"),
                    r["n"]
                ),
                format!(
                    "{:.2} steps/s ({:.1} GFLOP/s of products)",
                    f(&r["steps_per_second"]),
                    f(&r["gflops"])
                ),
            ),
        };
        s.push_str(&format!(
            "  {what:<48} {rate:<42} {:.2} of {}\n",
            f(&r["fraction_of_ceiling"]),
            r["ceiling"].as_str().unwrap_or("?")
        ));
    }
    s
}
