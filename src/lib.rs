//! widenet: train wide neural networks with WGSL compute shaders through wgpu,
//! and compare them with their infinite-width limits (NNGP, NTK).
//!
//! Start with [`open`] to get a [`Backend`] (a GPU adapter or the CPU
//! reference backend), then compute through it.

pub mod activation;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod cpu;
pub mod error;
pub mod experiments;
pub mod fsutil;
pub mod gpu;
pub mod kernel;
pub mod matrix;
pub mod mlp;
pub mod npy;
pub mod predict;
pub mod rng;

pub use activation::Activation;
pub use backend::{Backend, Batched, Buffer, Matmul};
pub use error::{Error, Result};
pub use gpu::{AdapterInfo, DeviceChoice};

/// Opens the device a choice names: a wgpu adapter, or the CPU backend for
/// `cpu` (and for `auto` when no adapter exists, with a warning).
pub fn open(choice: &DeviceChoice) -> Result<Box<dyn Backend>> {
    match gpu::GpuBackend::open(choice)? {
        Some(g) => Ok(Box::new(g)),
        None => Ok(Box::new(cpu::CpuBackend)),
    }
}
