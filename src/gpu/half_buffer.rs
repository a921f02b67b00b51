//! f16 operands: values stored on the device as IEEE binary16 and the
//! products that read them (sums in f32).

use super::{GpuBackend, gpu, matmul};
use crate::backend::{Buffer, Matmul};
use crate::error::{Error, Result};

impl GpuBackend {
    /// Whether the adapter runs f16 arithmetic in shaders (SHADER_F16), which
    /// [`Self::matmul_f16`] needs.
    pub fn has_f16(&self) -> bool {
        self.ctx.features.contains(wgpu::Features::SHADER_F16)
    }

    /// Uploads values rounded to f16 (to nearest, ties to even). A finite
    /// value beyond f16's range (65504) is an error, not an infinity.
    pub fn upload_f16(&self, values: &[f32]) -> Result<HalfBuffer> {
        let mut half: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
        if let Some(i) = (0..values.len()).find(|&i| values[i].is_finite() && half[i].is_infinite())
        {
            return Err(Error::invalid(format!(
                "value {} at index {i} does not fit in f16 (largest {})",
                values[i],
                half::f16::MAX
            )));
        }
        // Whole vec4<f16> (8 bytes) at the end.
        half.resize(values.len().next_multiple_of(4), half::f16::ZERO);
        let buffer = self.ctx.create_storage("upload_f16", half.len() / 2)?;
        self.ctx
            .queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(&half));
        Ok(HalfBuffer {
            buffer,
            len: values.len(),
        })
    }

    /// `C = alpha op(A) op(B) + beta C` with A and B stored as f16 and the
    /// sums in f32: on the adapter's f16 cooperative-matrix tiles where it
    /// has them and the plan says so (m, n and k multiples of
    /// [`COOP_MULTIPLE`](super::COOP_MULTIPLE)), otherwise through the vec4 or subgroup kernel (k
    /// and n multiples of 4, m and n at least 4, A and B row-major, or
    /// transposed where the subgroup kernel runs them).
    pub fn matmul_f16(
        &self,
        spec: &Matmul,
        a: &HalfBuffer,
        b: &HalfBuffer,
        c: &mut Buffer,
    ) -> Result<()> {
        spec.check(a.len(), b.len(), c.len())?;
        matmul::matmul_f16(&self.ctx, spec, &a.buffer, &b.buffer, gpu(c)?)
    }
}

/// Values stored on the device as f16 (IEEE binary16): the operands of
/// [`GpuBackend::matmul_f16`].
pub struct HalfBuffer {
    buffer: wgpu::Buffer,
    len: usize,
}

impl HalfBuffer {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
