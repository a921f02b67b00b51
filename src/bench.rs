//! Throughput measurements behind `widenet bench` and the criterion benches:
//! warm up, time several runs on the device's clock (or the wall clock), report
//! the median.

use crate::backend::{Backend, Matmul, Timing};
use crate::error::Result;
use serde::Serialize;

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
    pub seconds: f64,
    pub timing: Timing,
    pub runs: usize,
}

/// The median of a list of durations.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

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
    let mut rng = crate::rng::Rng::new(1);
    let a = b.upload(&rng.normals_f32(m * k))?;
    let bb = b.upload(&rng.normals_f32(k * n))?;
    let mut c = b.zeros(m * n)?;
    let spec = Matmul::new(m, n, k);
    let (seconds, timing) = time_median(b, runs, &mut || b.matmul(&spec, &a, &bb, &mut c))?;
    Ok(Record {
        op: "matmul",
        m: Some(m),
        n: Some(n),
        k: Some(k),
        gflops: Some(2.0 * (m * n * k) as f64 / seconds * 1e-9),
        entries_per_second: None,
        seconds,
        timing,
        runs,
    })
}

/// End-to-end NTK of `n` random points in dimension `d` with themselves (depth-`depth`
/// ReLU, f32): Gram, recursion and the result in host memory, wall clock.
pub fn ntk(b: &dyn Backend, n: usize, d: usize, depth: usize, runs: usize) -> Result<Record> {
    use crate::kernel::{Architecture, Parameterization, Want, kernels_device};
    let mut rng = crate::rng::Rng::new(2);
    let x = crate::matrix::Matrix::from_vec(n, d, rng.normals_f32(n * d))?;
    let arch = Architecture {
        depth,
        activation: crate::Activation::RELU,
        w_std: 1.0,
        b_std: 0.0,
        parameterization: Parameterization::Ntk,
        width: 512,
        d_in: d,
    };
    let run = || -> Result<f64> {
        let t = std::time::Instant::now();
        let k = kernels_device(b, &arch, &x, None, Want::NTK, |_, _| {})?;
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
        seconds,
        timing: Timing::Wall,
        runs,
    })
}
