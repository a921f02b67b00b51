//! Timing queued work on the device's own clock.

use super::GpuContext;
use crate::error::Result;

impl GpuContext {
    /// Whether queued work can be timed on the device's own clock.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        )
    }

    /// Seconds the device spends on the work `enqueue` queues, read from GPU
    /// timestamps written before and after it. Call only when [`Self::has_timestamps`].
    pub(crate) fn time_on_device(&self, enqueue: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("widenet timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("widenet timer resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.wait("timer")?;
        self.with_encoder(|e| e.write_timestamp(&set, 0));
        enqueue()?;
        self.with_encoder(|e| {
            e.write_timestamp(&set, 1);
            e.resolve_query_set(&set, 0..2, &resolve, 0);
        });
        let raw = self.read(&resolve, 0, 4)?;
        let t0 = u64::from(raw[0].to_bits()) | (u64::from(raw[1].to_bits()) << 32);
        let t1 = u64::from(raw[2].to_bits()) | (u64::from(raw[3].to_bits()) << 32);
        let period_ns = self.queue.get_timestamp_period() as f64;
        Ok(t1.saturating_sub(t0) as f64 * period_ns * 1e-9)
    }
}
