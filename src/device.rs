//! Opening a device: a wgpu adapter (autotuned on first use, the result
//! cached) or the CPU backend; for [`DeviceChoice::Auto`], a real GPU if
//! there is one, else whichever of the software adapter and the CPU backend
//! multiplies matrices faster, by their measured rates.

use crate::backend::{Backend, DeviceChoice, DeviceInfo};
use crate::cpu::CpuBackend;
use crate::error::Result;
use crate::gpu::{GpuBackend, GpuOptions, tune};
use serde::Serialize;
use std::path::Path;

/// Opens the device a choice names with the default options: a wgpu adapter
/// (its matrix products autotuned once per adapter and driver, the result
/// cached), or the CPU backend for [`DeviceChoice::Cpu`]; for
/// [`DeviceChoice::Auto`] see [`open_auto`].
///
/// ```
/// let dev = widenet::open(&widenet::DeviceChoice::Cpu)?;
/// assert_eq!(dev.info().backend, "Cpu");
/// # Ok::<(), widenet::Error>(())
/// ```
pub fn open(choice: &DeviceChoice) -> Result<Box<dyn Backend>> {
    open_with(choice, &GpuOptions::default())
}

/// [`open`] with explicit GPU options.
pub fn open_with(choice: &DeviceChoice, opts: &GpuOptions) -> Result<Box<dyn Backend>> {
    if *choice == DeviceChoice::Auto {
        return Ok(open_auto(opts, &mut |_| {})?.0);
    }
    match GpuBackend::open(choice, opts)? {
        Some(g) => Ok(Box::new(g)),
        None => Ok(Box::new(CpuBackend)),
    }
}

/// How [`open_auto`] chose.
#[derive(Clone, Debug, Serialize)]
pub struct AutoChoice {
    /// The best adapter wgpu found, if any.
    pub adapter: Option<DeviceInfo>,
    /// Whether that adapter is a software rasterizer (device type Cpu or
    /// Other), which the CPU backend competes with.
    pub software: bool,
    /// Its product rate from its autotune (GFLOP/s), where one is known.
    pub adapter_gflops: Option<f64>,
    /// The CPU backend's measured product rate (GFLOP/s), where it was needed.
    pub cpu_gflops: Option<f64>,
    /// The CPU backend was chosen.
    pub cpu: bool,
    /// Why, in words.
    pub reason: String,
}

/// Whether an adapter is a software rasterizer (lavapipe, llvmpipe,
/// SwiftShader, WARP): device type Cpu, or a type wgpu cannot tell.
pub fn is_software(info: &DeviceInfo) -> bool {
    matches!(info.device_type.as_str(), "Cpu" | "Other")
}

/// The autotune cache file the options name (or the user's).
pub fn cache_path(opts: &GpuOptions) -> Option<std::path::PathBuf> {
    opts.cache_dir
        .as_ref()
        .map(|d| d.join(tune::CACHE_NAME))
        .or_else(tune::cache_file)
}

/// `--device auto`: a discrete, integrated or virtual GPU if wgpu finds one;
/// else, between the best software adapter and the CPU backend, the one with
/// the higher product rate: the adapter's from its autotune (cached, or run
/// by `tune`, which a caller uses to show progress; the library's own
/// autotune runs when `opts.autotune`), the CPU backend's timed on the same
/// products once per CPU and cached beside it. Without a tune result for the
/// adapter (autotune off and none cached) the adapter is kept. No adapter:
/// the CPU backend.
pub fn open_auto(
    opts: &GpuOptions,
    tune: &mut dyn FnMut(&GpuBackend),
) -> Result<(Box<dyn Backend>, AutoChoice)> {
    let best = crate::gpu::enumerate().into_iter().next().map(|(_, i)| i);
    let Some(info) = best else {
        let c = AutoChoice {
            adapter: None,
            software: false,
            adapter_gflops: None,
            cpu_gflops: None,
            cpu: true,
            reason: "no GPU adapter found".into(),
        };
        return Ok((Box::new(CpuBackend), c));
    };
    let software = is_software(&info);
    let Some(g) = GpuBackend::open(&DeviceChoice::Gpu(Some(info.index)), opts)? else {
        return Ok((
            Box::new(CpuBackend),
            choice_cpu(info, "the adapter did not open"),
        ));
    };
    let mut c = AutoChoice {
        adapter: Some(info),
        software,
        adapter_gflops: None,
        cpu_gflops: None,
        cpu: false,
        reason: String::new(),
    };
    if !software {
        c.reason = decide(false, None, None).1;
        tune(&g);
        return Ok((Box::new(g), c));
    }
    tune(&g);
    let path = cache_path(opts);
    c.adapter_gflops = path
        .as_deref()
        .and_then(|p| tune::cached(&g, p))
        .and_then(|e| tune::product_rate(&e));
    let Some(adapter) = c.adapter_gflops else {
        c.reason = decide(true, None, None).1;
        return Ok((Box::new(g), c));
    };
    let cpu = cpu_rate(path.as_deref())?.gflops;
    c.cpu_gflops = Some(cpu);
    (c.cpu, c.reason) = decide(true, Some(adapter), Some(cpu));
    if c.cpu {
        Ok((Box::new(CpuBackend), c))
    } else {
        Ok((Box::new(g), c))
    }
}

/// The rule of [`open_auto`] for the best adapter (`software` or not) with
/// the measured rates known: whether the CPU backend is chosen, and why.
pub fn decide(
    software: bool,
    adapter_gflops: Option<f64>,
    cpu_gflops: Option<f64>,
) -> (bool, String) {
    if !software {
        return (false, "a hardware GPU".into());
    }
    match (adapter_gflops, cpu_gflops) {
        (Some(a), Some(c)) => (
            c > a,
            format!(
                "measured products: CPU backend {c:.1} GFLOP/s, software adapter {a:.1} GFLOP/s"
            ),
        ),
        (None, _) => (
            false,
            "no autotune result for the software adapter to compare with".into(),
        ),
        (Some(_), None) => (false, "the CPU backend's rate is not measured".into()),
    }
}

fn choice_cpu(info: DeviceInfo, reason: &str) -> AutoChoice {
    AutoChoice {
        software: is_software(&info),
        adapter: Some(info),
        adapter_gflops: None,
        cpu_gflops: None,
        cpu: true,
        reason: reason.into(),
    }
}

/// The CPU backend's rate from the cache file `path`, or measured now (and
/// then cached there when a path is given).
pub fn cpu_rate(path: Option<&Path>) -> Result<crate::rate::CpuRate> {
    let key = crate::cpu::rate::key();
    if let Some(r) = path.and_then(|p| crate::gpu::tune::cached_cpu_rate(p, &key)) {
        return Ok(r);
    }
    let start = std::time::Instant::now();
    let (gflops, shapes) = crate::rate::measure(&CpuBackend, 3)?;
    let rate = crate::rate::CpuRate {
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
