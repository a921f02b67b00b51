//! Hooks for widenet's own test suite (feature `test-hooks`): states that
//! are hard to reach from outside. Not part of the API.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::gpu::GpuBackend;
use crate::gpu::matmul::MatmulKernel;

fn gpu(b: &dyn Backend) -> Result<&GpuBackend> {
    b.as_any()
        .downcast_ref::<GpuBackend>()
        .ok_or_else(|| Error::invalid("not a GPU backend"))
}

/// Destroys the device, as a driver reset would.
pub fn lose_device(b: &dyn Backend) -> Result<()> {
    gpu(b)?.context().lose_device();
    Ok(())
}

/// Pretends the adapter allows at most `bytes` per storage binding, so that
/// the splitting of large operands can be tested on small data.
pub fn cap_binding_size(b: &dyn Backend, bytes: u64) -> Result<()> {
    gpu(b)?.context().cap_binding_size(bytes);
    Ok(())
}

/// Runs every product that allows it on kernel `k`.
pub fn set_matmul_kernel(b: &dyn Backend, k: MatmulKernel) -> Result<()> {
    gpu(b)?.context().set_matmul_kernel(k)
}
