//! Opening a device: a wgpu adapter (autotuned on first use, the result
//! cached) or the CPU backend.

use crate::backend::{Backend, DeviceChoice};
use crate::cpu::CpuBackend;
use crate::error::Result;
use crate::gpu::{GpuBackend, GpuOptions};

/// Opens the device a choice names with the default options: a wgpu adapter
/// (its matrix products autotuned once per adapter and driver, the result
/// cached), or the CPU backend for [`DeviceChoice::Cpu`] (and for
/// [`DeviceChoice::Auto`] when no adapter exists).
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
    match GpuBackend::open(choice, opts)? {
        Some(g) => Ok(Box::new(g)),
        None => Ok(Box::new(CpuBackend)),
    }
}
