//! Measured product rates, the common measure by which `--device auto`
//! weighs devices: the products the autotune times on an adapter, timed the
//! same way on any [`Backend`] (the CPU backend's once per CPU model and
//! thread count, cached beside the adapters' plans).

use crate::backend::{Backend, Matmul};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// The shapes timed: (class, batch, m, n, k). A class's configuration is the
/// one with the best geometric mean of GFLOP/s over its shapes (one shape alone
/// picked tiles that suited it and wasted most of a smaller product). The large
/// class includes a long k (512 points through a width-1024 layer, as in the
/// training bench), which tiles and walk orders see differently from k = 256.
pub const SHAPES: [(&str, usize, usize, usize, usize); 5] = [
    ("large", 1, 256, 256, 256),
    ("large", 1, 1024, 1024, 256),
    ("large", 1, 512, 1024, 1024),
    ("small", 16, 64, 256, 256),
    ("small", 64, 32, 128, 128),
];

/// One timed product: `(batch, m, n, k, GFLOP/s)`.
pub type ShapeRate = (usize, usize, usize, usize, f64);

/// The CPU backend's measured product rate, as cached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CpuRate {
    /// The cache key (see [`crate::cpu::rate::key`]).
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

/// The products timed: the autotune's large class (a square 256, a short k,
/// and the long k of a width-1024 layer over 512 points).
pub fn shapes() -> Vec<(usize, usize, usize, usize)> {
    SHAPES
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
