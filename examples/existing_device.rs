//! Hands widenet a wgpu device that the application already owns (a
//! renderer's, say), and computes an NTK on it.
//!
//! Run: `cargo run --release --example existing_device`

use widenet::gpu::{GpuBackend, GpuOptions, wgpu};
use widenet::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own adapter and device.
    let instance = wgpu::Instance::default();
    let Ok(adapter) =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
    else {
        eprintln!("no wgpu adapter on this machine");
        return Ok(());
    };
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;

    // widenet on that device: no second device is opened.
    let dev = GpuBackend::from_wgpu(&adapter, device, queue, &GpuOptions::default())?;
    println!("widenet on {}", dev.describe());
    let arch = Arch::parse("Dense(1024), Gelu, Dense(1024), Gelu, Dense(1)")?;
    let mut rng = widenet::rng::Rng::new(3);
    let x = Matrix::from_vec(100, 16, rng.normals_f32(100 * 16))?;
    let k = kernels_device(&dev, &arch, &x, None, Want::NTK, |_, _| {})?;
    let ntk = k.ntk.expect("asked for");
    println!(
        "NTK of 100 points: diagonal mean {:.4}",
        (0..100).map(|i| ntk.at(i, i) as f64).sum::<f64>() / 100.0
    );
    Ok(())
}
