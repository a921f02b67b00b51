//! The CPU backend's measured product rate, which `--device auto` weighs
//! against a software adapter's (the autotune's): the same products the
//! autotune's large class times, timed once per CPU model and thread count
//! and kept in the autotune's cache file beside the adapters' plans.

use crate::backend::{Backend, Matmul};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One timed product: `(batch, m, n, k, GFLOP/s)`.
pub type ShapeRate = (usize, usize, usize, usize, f64);

/// The CPU backend's measured product rate, as cached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CpuRate {
    /// The cache key (see [`key`]).
    pub key: String,
    /// Geometric mean of the GFLOP/s over `shapes`.
    pub gflops: f64,
    /// Each product timed: `(batch, m, n, k, GFLOP/s)`.
    pub shapes: Vec<ShapeRate>,
    /// Seconds the measurement took.
    pub seconds: f64,
    /// Seconds since the Unix epoch when it ran.
    pub measured_at: u64,
}

/// The CPU's model name (`/proc/cpuinfo` on Linux), else its architecture.
pub fn cpu_model() -> String {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| std::env::consts::ARCH.to_string())
        })
        .clone()
}

/// The cache key of the CPU backend: the CPU model, the threads it runs on,
/// and this version of widenet.
pub fn key() -> String {
    format!(
        "cpu | {} | {} threads | widenet {}",
        cpu_model(),
        rayon::current_num_threads(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The products timed: the autotune's large class (a square 256, a short k,
/// and the long k of a width-1024 layer over 512 points).
pub fn shapes() -> Vec<(usize, usize, usize, usize)> {
    crate::gpu::tune::SHAPES
        .iter()
        .filter(|s| s.0 == "large")
        .map(|&(_, b, m, n, k)| (b, m, n, k))
        .collect()
}

/// Times the [`shapes`] on `dev` (`runs` timed runs after a warm-up, the
/// median kept): `(geometric mean GFLOP/s, each shape's GFLOP/s)`.
pub fn measure(dev: &dyn Backend, runs: usize) -> Result<(f64, Vec<ShapeRate>)> {
    let mut rng = crate::rng::Rng::new(0x7e57);
    let mut out = Vec::new();
    for (batch, m, n, k) in shapes() {
        let a = dev.upload(&rng.normals_f32(batch * m * k))?;
        let b = dev.upload(&rng.normals_f32(batch * k * n))?;
        let mut c = dev.zeros(batch * m * n)?;
        let spec = Matmul::new(m, n, k).batch(batch);
        dev.time(&mut || dev.matmul(&spec, &a, &b, &mut c))?;
        let mut times = Vec::with_capacity(runs.max(1));
        for _ in 0..runs.max(1) {
            times.push(dev.time(&mut || dev.matmul(&spec, &a, &b, &mut c))?.0);
        }
        let seconds = crate::stats::median(times);
        let gflops = 2.0 * (batch * m * n * k) as f64 / seconds * 1e-9;
        out.push((batch, m, n, k, gflops));
    }
    let mean = (out.iter().map(|s| s.4.ln()).sum::<f64>() / out.len() as f64).exp();
    Ok((mean, out))
}

/// The CPU backend's rate from the cache file `path`, or measured now (and
/// then cached there when a path is given).
pub fn cpu_rate(path: Option<&Path>) -> Result<CpuRate> {
    let key = key();
    if let Some(r) = path.and_then(|p| crate::gpu::tune::cached_cpu_rate(p, &key)) {
        return Ok(r);
    }
    let start = std::time::Instant::now();
    let (gflops, shapes) = measure(&super::CpuBackend, 3)?;
    let rate = CpuRate {
        key,
        gflops,
        shapes,
        seconds: start.elapsed().as_secs_f64(),
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    if let Some(p) = path {
        if let Err(e) = crate::gpu::tune::store_cpu_rate(p, &rate) {
            log::warn!("{e}: the CPU backend's measured rate is not kept");
        }
    }
    Ok(rate)
}
