//! Autotune of the matrix products: every configuration the adapter can run
//! ([`MatmulConfig`]: kernel, workgroup rows, walk order) is timed on one
//! large and one short product, the fastest of each becomes the adapter's
//! [`MatmulPlan`], and the plan is cached on disk keyed by adapter and driver
//! so that the tune runs once per machine.
//!
//! Cache: `autotune.json` in [`GpuOptions::cache_dir`](super::GpuOptions),
//! else `$XDG_CACHE_HOME/widenet/autotune.json`, else `~/.cache/widenet/autotune.json`.

use super::GpuBackend;
use super::matmul::{MatmulConfig, MatmulKernel, MatmulPlan, SMALL_M};
use crate::backend::DeviceInfo;
use crate::backend::{Backend, Matmul};
use crate::error::{Error, Result};
pub use crate::rate::SHAPES;

/// A timed product: `(class, batch, m, n, k)`, class `large` or `small`.
pub type Shape = (&'static str, usize, usize, usize, usize);
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cache file's name in its folder.
pub const CACHE_NAME: &str = "autotune.json";

/// Bumped when the configurations or the measured shapes change, so that
/// older results are measured again.
pub const CACHE_FORMAT: u32 = 4;

/// What to do when a plan for this adapter is already cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autotune {
    /// Use the cached plan; tune (and cache) only when there is none.
    Cached,
    /// Tune again and replace the cached plan.
    Force,
}

/// One configuration timed on one shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// `large` or `small` (m below [`SMALL_M`]).
    pub class: String,
    /// The product: `batch` times `m x k` by `k x n`.
    pub batch: usize,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// The configuration timed.
    pub config: MatmulConfig,
    /// Its rate.
    pub gflops: f64,
    /// Relative Frobenius difference from the generic kernel's product; a
    /// configuration above 1e-4 is never chosen.
    pub rel_err: f64,
}

/// A tune's outcome, as cached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TuneEntry {
    /// The adapter key (see `adapter_key`).
    pub adapter: String,
    /// The chosen plan.
    pub plan: MatmulPlan,
    /// Every timed configuration.
    pub trials: Vec<Trial>,
    /// How the trials were timed (GPU timestamps or wall clock).
    pub timing: String,
    /// Seconds the tune took.
    pub seconds: f64,
    /// Seconds since the Unix epoch when it ran.
    pub tuned_at: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    entries: BTreeMap<String, TuneEntry>,
    /// The CPU backend's measured product rates, keyed by CPU and threads.
    #[serde(default)]
    cpu: BTreeMap<String, crate::rate::CpuRate>,
}

/// The user's cache file (`$XDG_CACHE_HOME/widenet/autotune.json`, else
/// `~/.cache/widenet/autotune.json`), or `None` when no folder for it is known.
pub fn cache_file() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = env("XDG_CACHE_HOME")
        .map(|d| d.join("widenet"))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("widenet")))?;
    Some(dir.join(CACHE_NAME))
}

/// The cache key of an adapter: its name, ids, backend and driver, and this
/// version of widenet.
pub fn adapter_key(info: &DeviceInfo) -> String {
    format!(
        "{} | vendor {:#x} | {} | {} | {} | widenet {}",
        info.name,
        info.vendor_id,
        info.backend,
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION")
    )
}

/// Reads the cache; a missing file is empty, an unreadable or corrupt one is
/// reported and treated as empty (it is rewritten by the next tune).
fn load(path: &Path) -> CacheFile {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CacheFile::default(),
        Err(e) => {
            log::warn!("autotune cache {}: {e}; tuning again", path.display());
            return CacheFile::default();
        }
    };
    match serde_json::from_str::<CacheFile>(&text) {
        Ok(c) if c.format == CACHE_FORMAT => c,
        Ok(_) => CacheFile::default(),
        Err(e) => {
            log::warn!(
                "autotune cache {} is not valid ({e}); tuning again",
                path.display()
            );
            CacheFile::default()
        }
    }
}

fn store(path: &Path, cache: &CacheFile) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create the cache folder: {e}")))?;
    }
    let text = serde_json::to_string_pretty(cache).map_err(|e| Error::invalid(e.to_string()))?;
    crate::atomic::write_atomic(path, text.as_bytes())
}

/// The plan cached for an adapter, if any and if it is runnable there.
pub fn cached(backend: &GpuBackend, path: &Path) -> Option<TuneEntry> {
    let ctx = backend.context();
    let entry = load(path).entries.remove(&adapter_key(ctx.info()))?;
    let ok = [entry.plan.large, entry.plan.small]
        .iter()
        .all(|c| c.is_valid() && ctx.matmul_kernels().contains(&c.kernel));
    ok.then_some(entry)
}

/// The tune cached for the adapter `info` describes, if any (not checked
/// against what the adapter can run: for showing, see [`cached`] to use one).
pub fn cached_for(info: &DeviceInfo, path: &Path) -> Option<TuneEntry> {
    load(path).entries.remove(&adapter_key(info))
}

/// The CPU backend's rate cached under `key` in the cache file `path`, if any.
pub fn cached_cpu_rate(path: &Path, key: &str) -> Option<crate::rate::CpuRate> {
    load(path).cpu.remove(key)
}

/// Keeps the CPU backend's rate in the cache file `path`.
pub fn store_cpu_rate(path: &Path, rate: &crate::rate::CpuRate) -> Result<()> {
    let mut cache = load(path);
    cache.format = CACHE_FORMAT;
    cache.cpu.insert(rate.key.clone(), rate.clone());
    store(path, &cache)
}

/// The adapter's product rate from its tune: the geometric mean GFLOP/s of
/// the large class's chosen configuration (the shapes
/// [`crate::rate::measure`] times on the CPU backend).
pub fn product_rate(entry: &TuneEntry) -> Option<f64> {
    class_score(&entry.trials, "large", &entry.plan.large)
}

/// Every configuration the adapter can run.
pub fn candidates(backend: &GpuBackend) -> Vec<MatmulConfig> {
    let mut v = vec![MatmulConfig::default_for(MatmulKernel::Generic)];
    for kernel in backend.context().matmul_kernels() {
        if kernel == MatmulKernel::Generic {
            continue;
        }
        // One subgroup per workgroup: only the walk order varies.
        let rows: &[u32] = if kernel == MatmulKernel::Coop {
            &[8]
        } else {
            &MatmulConfig::WG_Y
        };
        for &wg_y in rows {
            for walk_m in [false, true] {
                v.push(MatmulConfig {
                    kernel,
                    wg_y,
                    walk_m,
                });
            }
        }
    }
    v
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    if num.is_nan() {
        return f64::INFINITY;
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Times every candidate on each shape (`runs` timed runs after a warm-up, in
/// rounds over the candidates; the median kept) and returns the fastest correct
/// one per shape. Leaves the backend running the new plan. `progress(done,
/// total)` after each trial.
pub fn tune(
    backend: &GpuBackend,
    runs: usize,
    progress: impl FnMut(usize, usize),
) -> Result<TuneEntry> {
    tune_among(backend, &candidates(backend), &SHAPES, runs, progress)
}

/// [`tune`] among the given configurations only (the first is the reference
/// the others' products are compared with), on the given shapes (the tune's
/// are [`SHAPES`]; a test may time smaller ones).
pub fn tune_among(
    backend: &GpuBackend,
    configs: &[MatmulConfig],
    shapes: &[Shape],
    runs: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<TuneEntry> {
    let start = std::time::Instant::now();
    let ctx = backend.context();
    let before = ctx.matmul_plan();
    let measured = measure(backend, configs, shapes, runs, &mut progress);
    // On failure the products go on with the plan they had.
    let (trials, timing, plan) = match measured {
        Ok(m) => m,
        Err(e) => {
            let _ = ctx.set_matmul_plan(before);
            return Err(e);
        }
    };
    let mut trials = trials;
    let mut plan = MatmulPlan {
        large: plan.large.unwrap_or(before.large),
        small: plan.small.unwrap_or(before.small),
        f16_coop: before.f16_coop,
    };
    ctx.set_matmul_plan(plan)?;
    if ctx.coop_shape(true).is_some() {
        match measure_f16(backend, plan, shapes, runs) {
            Ok((t, coop)) => {
                trials.extend(t);
                plan.f16_coop = coop;
            }
            Err(e) => {
                let _ = ctx.set_matmul_plan(before);
                return Err(e);
            }
        }
        ctx.set_matmul_plan(plan)?;
    }
    Ok(TuneEntry {
        adapter: adapter_key(ctx.info()),
        plan,
        trials,
        timing,
        seconds: start.elapsed().as_secs_f64(),
        tuned_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })
}

/// The fastest correct configuration per class, where one was found.
#[derive(Default)]
struct Best {
    large: Option<MatmulConfig>,
    small: Option<MatmulConfig>,
}

fn measure(
    backend: &GpuBackend,
    configs: &[MatmulConfig],
    shapes: &[Shape],
    runs: usize,
    progress: &mut impl FnMut(usize, usize),
) -> Result<(Vec<Trial>, String, Best)> {
    let ctx = backend.context();
    let total = configs.len() * shapes.len();
    let mut trials = Vec::with_capacity(total);
    let mut rng = crate::rng::Rng::new(0x7e57);
    let mut timing = String::new();
    for &(class, batch, m, n, k) in shapes {
        let a = backend.upload(&rng.normals_f32(batch * m * k))?;
        let b = backend.upload(&rng.normals_f32(batch * k * n))?;
        let mut c = backend.zeros(batch * m * n)?;
        let spec = Matmul::new(m, n, k).batch(batch);
        let done = trials.len();
        let (timed, how) = time_in_rounds(
            backend,
            configs.len(),
            runs,
            &mut c,
            &mut |i| ctx.set_matmul_plan(MatmulPlan::uniform(configs[i])),
            &mut |c| backend.matmul(&spec, &a, &b, c),
            &mut |i| progress(done + i + 1, total),
        )?;
        timing = how;
        for (&config, (seconds, err)) in configs.iter().zip(timed) {
            trials.push(Trial {
                class: class.to_string(),
                batch,
                m,
                n,
                k,
                config,
                gflops: 2.0 * (batch * m * n * k) as f64 / seconds * 1e-9,
                rel_err: err,
            });
        }
    }
    let best = |class: &str| -> Option<MatmulConfig> {
        configs
            .iter()
            .filter_map(|&config| {
                let correct = trials
                    .iter()
                    .filter(|t| t.class == class && t.config == config)
                    .all(|t| t.rel_err <= 1e-4 && t.gflops > 0.0);
                let score = class_score(&trials, class, &config)?;
                correct.then_some((score, config))
            })
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .map(|(_, c)| c)
    };
    let plan = Best {
        large: best("large"),
        small: best("small"),
    };
    Ok((trials, timing, plan))
}

/// Times `count` candidates of one product: each once (`select(i)` makes
/// candidate i current; compiled, warmed up, its result compared with the
/// first candidate's), then `runs` timed runs in rounds over all of them, so
/// that a slow phase of a shared machine slows every candidate alike rather
/// than the few that happen to run in it. Returns each candidate's median
/// seconds and relative difference from the first, and how they were timed;
/// `done(i)` after candidate i's last run.
fn time_in_rounds(
    backend: &GpuBackend,
    count: usize,
    runs: usize,
    c: &mut crate::backend::Buffer,
    select: &mut dyn FnMut(usize) -> Result<()>,
    product: &mut dyn FnMut(&mut crate::backend::Buffer) -> Result<()>,
    done: &mut dyn FnMut(usize),
) -> Result<(Vec<(f64, f64)>, String)> {
    let mut reference: Option<Vec<f32>> = None;
    let mut errs = Vec::with_capacity(count);
    for i in 0..count {
        select(i)?;
        product(c)?;
        let got = backend.read(c)?;
        errs.push(reference.as_ref().map_or(0.0, |r| rel_err(&got, r)));
        reference.get_or_insert(got);
        backend.time(&mut || product(c))?;
    }
    let rounds = runs.max(1);
    let mut times = vec![Vec::with_capacity(rounds); count];
    let mut timing = String::new();
    for round in 0..rounds {
        for (i, t) in times.iter_mut().enumerate() {
            select(i)?;
            let (seconds, how) = backend.time(&mut || product(c))?;
            timing = format!("{how:?}");
            t.push(seconds);
            if round + 1 == rounds {
                done(i);
            }
        }
    }
    let medians = times.into_iter().map(crate::stats::median);
    Ok((medians.zip(errs).collect(), timing))
}

/// f16 operands on the cooperative-matrix tiles against the register kernels
/// of `plan`, on the large shapes: the trials (class `f16`), and whether the
/// tiles are correct (within 1e-4 of the register kernels) and faster.
fn measure_f16(
    backend: &GpuBackend,
    plan: MatmulPlan,
    shapes: &[Shape],
    runs: usize,
) -> Result<(Vec<Trial>, bool)> {
    let ctx = backend.context();
    let mut rng = crate::rng::Rng::new(0x7e58);
    let mut trials = Vec::new();
    let mut ok = true;
    for &(_, batch, m, n, k) in shapes.iter().filter(|s| s.0 == "large") {
        let a = backend.upload_f16(&rng.normals_f32(batch * m * k))?;
        let b = backend.upload_f16(&rng.normals_f32(batch * k * n))?;
        let mut c = backend.zeros(batch * m * n)?;
        let spec = Matmul::new(m, n, k).batch(batch);
        let (timed, _) = time_in_rounds(
            backend,
            2,
            runs,
            &mut c,
            &mut |i| {
                ctx.set_matmul_plan(MatmulPlan {
                    f16_coop: i == 1,
                    ..plan
                })
            },
            &mut |c| backend.matmul_f16(&spec, &a, &b, c),
            &mut |_| {},
        )?;
        for (coop, (seconds, err)) in [false, true].into_iter().zip(timed) {
            ok &= err <= 1e-4;
            trials.push(Trial {
                class: "f16".to_string(),
                batch,
                m,
                n,
                k,
                config: if coop {
                    MatmulConfig::default_for(MatmulKernel::Coop)
                } else {
                    plan.large
                },
                gflops: 2.0 * (batch * m * n * k) as f64 / seconds * 1e-9,
                rel_err: err,
            });
        }
    }
    let score = |coop: bool| {
        let c = if coop {
            MatmulConfig::default_for(MatmulKernel::Coop)
        } else {
            plan.large
        };
        class_score(&trials, "f16", &c).unwrap_or(0.0)
    };
    let coop = ok && score(true) > score(false);
    Ok((trials, coop))
}

/// The geometric mean of a configuration's GFLOP/s over the shapes of a class.
pub fn class_score(trials: &[Trial], class: &str, config: &MatmulConfig) -> Option<f64> {
    let v: Vec<f64> = trials
        .iter()
        .filter(|t| t.class == class && t.config == *config)
        .map(|t| t.gflops.ln())
        .collect();
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64).exp())
}

/// What [`autotune`] did.
#[derive(Clone, Debug)]
pub enum Tuned {
    /// The plan came from the cache.
    Cached(TuneEntry),
    /// The tune ran; the plan was written to the cache when one is known.
    Measured(TuneEntry, Option<PathBuf>),
    /// Nothing was tuned: the kernel was chosen explicitly ([`GpuOptions::matmul_kernel`](super::GpuOptions)).
    Forced,
}

/// Sets the backend's plan from the cache file `path` (default: the
/// user's), or tunes and caches it (always with [`Autotune::Force`]). The
/// products stay within 1e-4 of the generic kernel whichever configuration wins.
pub fn autotune(
    backend: &GpuBackend,
    mode: Autotune,
    path: Option<PathBuf>,
    progress: impl FnMut(usize, usize),
) -> Result<Tuned> {
    autotune_with(
        backend,
        mode,
        path.or_else(cache_file),
        &candidates(backend),
        &SHAPES,
        progress,
    )
}

/// [`autotune`] with an explicit cache file (`None`: nothing is read or kept),
/// set of configurations and shapes timed.
pub fn autotune_with(
    backend: &GpuBackend,
    mode: Autotune,
    path: Option<PathBuf>,
    configs: &[MatmulConfig],
    shapes: &[Shape],
    progress: impl FnMut(usize, usize),
) -> Result<Tuned> {
    let ctx = backend.context();
    if ctx.matmul_kernel_forced() {
        return Ok(Tuned::Forced);
    }
    if mode == Autotune::Cached {
        if let Some(entry) = path.as_deref().and_then(|p| cached(backend, p)) {
            ctx.set_matmul_plan(entry.plan)?;
            return Ok(Tuned::Cached(entry));
        }
    }
    let entry = tune_among(backend, configs, shapes, 3, progress)?;
    let Some(path) = path else {
        log::warn!("no cache folder (set HOME or a cache folder): the autotune result is not kept");
        return Ok(Tuned::Measured(entry, None));
    };
    let mut cache = load(&path);
    cache.format = CACHE_FORMAT;
    cache.entries.insert(entry.adapter.clone(), entry.clone());
    if let Err(e) = store(&path, &cache) {
        log::warn!("{e}: the autotune result is not kept");
        return Ok(Tuned::Measured(entry, None));
    }
    Ok(Tuned::Measured(entry, Some(path)))
}

/// The plan used for products of `m` rows, in words (for reports).
pub fn describe(plan: &MatmulPlan) -> String {
    let walk = |c: &MatmulConfig| if c.walk_m { "rows" } else { "columns" };
    let one = |c: &MatmulConfig| match c.kernel {
        MatmulKernel::Generic => "generic".to_string(),
        MatmulKernel::Coop => format!("coop (walk {})", walk(c)),
        k => format!(
            "{} (WG_Y {}, walk {})",
            if k == MatmulKernel::Vec4 {
                "vec4"
            } else {
                "sg8"
            },
            c.wg_y,
            walk(c)
        ),
    };
    format!(
        "m >= {SMALL_M}: {}; m < {SMALL_M}: {}; f16 operands: {}",
        one(&plan.large),
        one(&plan.small),
        if plan.f16_coop {
            "cooperative matrices where the shapes allow"
        } else {
            "as f32"
        }
    )
}
