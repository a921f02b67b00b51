//! Devices: the list Python sees, and the open ones, kept for the life of the
//! process (opening an adapter and its first-use autotune are paid once).

use crate::detach;
use crate::errors::OrPy;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};
use widenet::{Backend, DeviceChoice, GpuOptions};

/// Devices opened so far, by the choice that named them.
static OPEN: Mutex<Vec<(String, Arc<dyn Backend>)>> = Mutex::new(Vec::new());

/// The choice a `device=` argument names: the argument, else
/// `$WIDENET_DEVICE`, else auto (the command line's rule).
pub fn choice(name: Option<&str>) -> widenet::Result<DeviceChoice> {
    let text = match name {
        Some(n) => n.to_string(),
        None => match std::env::var("WIDENET_DEVICE") {
            Ok(v) if !v.trim().is_empty() => v,
            _ => return Ok(DeviceChoice::Auto),
        },
    };
    DeviceChoice::parse(&text)
}

/// The GPU options the environment asks for, as the command line reads
/// them: `WIDENET_NO_AUTOTUNE`, `WIDENET_CACHE_DIR`, `WIDENET_MATMUL_KERNEL`,
/// `WIDENET_COOPERATIVE_MATRIX=0`.
fn options() -> GpuOptions {
    let mut o = GpuOptions::default();
    o.autotune = !std::env::var("WIDENET_NO_AUTOTUNE").is_ok_and(|v| !v.is_empty() && v != "0");
    o.cache_dir = std::env::var_os("WIDENET_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    if let Ok(v) = std::env::var("WIDENET_MATMUL_KERNEL") {
        o.matmul_kernel = widenet::gpu::matmul::MatmulKernel::parse(&v);
    }
    o.cooperative_matrix = std::env::var("WIDENET_COOPERATIVE_MATRIX").map_or(true, |v| v != "0");
    o
}

/// The device a choice names, opened at first use and kept.
pub fn open(choice: &DeviceChoice) -> widenet::Result<Arc<dyn Backend>> {
    let key = format!("{choice:?}");
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, d)) = open.iter().find(|(k, _)| *k == key) {
        return Ok(d.clone());
    }
    let d: Arc<dyn Backend> = Arc::from(widenet::open_with(choice, &options())?);
    open.push((key, d.clone()));
    Ok(d)
}

/// Every adapter wgpu finds (best first, as `widenet devices` lists them),
/// then the CPU backend; a JSON list of objects.
#[pyfunction]
pub fn devices(py: Python<'_>) -> PyResult<String> {
    detach::run(py, detach::nothing, |_| {
        let mut infos: Vec<serde_json::Value> = widenet::gpu::enumerate()
            .into_iter()
            .map(|(_, i)| serde_json::json!(i))
            .collect();
        let mut cpu = serde_json::json!(widenet::cpu::CpuBackend.info());
        cpu["index"] = serde_json::Value::Null;
        infos.push(cpu);
        serde_json::to_string(&infos).map_err(|e| widenet::Error::invalid(e.to_string()))
    })
}

/// The description of the device a `device=` argument picks (opening it).
#[pyfunction]
#[pyo3(signature = (device=None))]
pub fn device_info(py: Python<'_>, device: Option<String>) -> PyResult<String> {
    let c = choice(device.as_deref()).or_py()?;
    detach::run(py, detach::nothing, move |_| {
        let d = open(&c)?;
        serde_json::to_string(&d.info()).map_err(|e| widenet::Error::invalid(e.to_string()))
    })
}
