//! Buffers, the windows through which large ones are bound, host writes and
//! read-back (whole, or begun now and finished later).

use super::{GpuContext, lock};
use crate::error::{Error, Result};

/// A read in flight, see [`GpuContext::begin_read`].
#[derive(Debug)]
pub struct PendingRead {
    staging: wgpu::Buffer,
    len: usize,
    index: wgpu::SubmissionIndex,
    rx: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// A part of a buffer bound to one slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

/// A window of a buffer that fits one binding: bytes `[offset, offset + size)`,
/// with the first wanted element at index `shift` inside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub offset: u64,
    pub size: u64,
    pub shift: u32,
}

impl GpuContext {
    /// A storage buffer of `len` f32, zero-filled, or an error naming the limit.
    pub(crate) fn create_storage(&self, op: &'static str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) as u64) * 4;
        if bytes > self.limits.max_buffer_size {
            return Err(Error::DeviceLimit {
                op,
                what: "max_buffer_size",
                needed: bytes,
                limit: self.limits.max_buffer_size,
                device: self.info.name.clone(),
            });
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(op),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::UNIFORM
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op,
                message: format!("allocating {bytes} bytes: {e}"),
            });
        }
        Ok(buffer)
    }

    /// The window of elements `[start, start + len)` of a buffer of f32, aligned for binding.
    pub(crate) fn window(&self, op: &'static str, start: usize, len: usize) -> Result<Window> {
        self.window_of(op, start, len, 4)
    }

    /// [`Self::window`] for elements of `bytes` bytes (2: f16); the window
    /// spans whole 4-byte words and `shift` counts elements.
    pub(crate) fn window_of(
        &self,
        op: &'static str,
        start: usize,
        len: usize,
        bytes: u64,
    ) -> Result<Window> {
        let align = self.limits.min_storage_buffer_offset_alignment.max(4) as u64;
        let start_b = start as u64 * bytes;
        let offset = start_b / align * align;
        let size = (start_b + len.max(1) as u64 * bytes - offset).next_multiple_of(4);
        if size > self.max_binding() {
            return Err(Error::DeviceLimit {
                op,
                what: "max_storage_buffer_binding_size",
                needed: size,
                limit: self.max_binding(),
                device: self.info.name.clone(),
            });
        }
        Ok(Window {
            offset,
            size,
            shift: ((start_b - offset) / bytes) as u32,
        })
    }

    /// Writes host data into a buffer, after the work queued so far.
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, offset_elems: usize, data: &[f32]) {
        self.flush();
        if !data.is_empty() {
            self.queue
                .write_buffer(buffer, offset_elems as u64 * 4, bytemuck::cast_slice(data));
        }
    }

    /// Submits queued work and a copy of the first `len` elements of `buffer`
    /// to a mappable buffer, and returns at once; [`Self::finish_read`] waits
    /// for that copy alone, so work queued after it can run meanwhile.
    pub(crate) fn begin_read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<PendingRead> {
        let bytes = (len.max(1) as u64) * 4;
        let staging = {
            let mut pool = lock(&self.read_pool);
            match pool.iter().position(|b| b.size() >= bytes) {
                Some(i) => pool.swap_remove(i),
                None => self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("widenet read"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
            }
        };
        let copy = (len as u64) * 4;
        if copy > 0 {
            self.with_encoder(|enc| enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, copy));
        }
        let index = self.flush().unwrap_or_else(|| self.queue.submit([]));
        let (tx, rx) = std::sync::mpsc::channel();
        staging
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        Ok(PendingRead {
            staging,
            len,
            index,
            rx,
        })
    }

    /// Waits for a read started by [`Self::begin_read`] and hands its values,
    /// still in the mapped staging buffer, to `f`.
    pub(crate) fn finish_read_with(&self, p: PendingRead, f: &mut dyn FnMut(&[f32])) -> Result<()> {
        let gpu_err = |message: String| Error::Gpu {
            op: "read",
            message,
        };
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(p.index),
                timeout: None,
            })
            .map_err(|e| gpu_err(e.to_string()))?;
        self.take_error("read")?;
        match p.rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(gpu_err(e.to_string())),
            Err(_) => return Err(gpu_err("mapping never completed".into())),
        }
        {
            let view = p
                .staging
                .slice(..(p.len.max(1) as u64) * 4)
                .get_mapped_range()
                .map_err(|e| gpu_err(e.to_string()))?;
            f(&bytemuck::cast_slice::<u8, f32>(&view)[..p.len]);
        }
        p.staging.unmap();
        let mut pool = lock(&self.read_pool);
        if pool.len() < 4 {
            pool.push(p.staging);
        }
        Ok(())
    }

    /// Waits for queued work and copies elements `[start, start + len)` back to the host.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, start: usize, len: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(len);
        if len == 0 {
            self.wait("read")?;
            return Ok(out);
        }
        let mut staging = lock(&self.staging);
        let chunk_max = (64u64 << 20).min(self.limits.max_buffer_size) / 4;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(chunk_max as usize);
            let bytes = n as u64 * 4;
            if staging.as_ref().is_none_or(|s| s.size() < bytes) {
                *staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("widenet staging"),
                    size: bytes.max(1 << 16).min(chunk_max * 4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
            }
            let Some(st) = staging.as_ref() else {
                return Err(Error::Gpu {
                    op: "read",
                    message: "no staging buffer".into(),
                });
            };
            self.with_encoder(|enc| {
                enc.copy_buffer_to_buffer(buffer, (start + done) as u64 * 4, st, 0, bytes)
            });
            self.flush();
            let (tx, rx) = std::sync::mpsc::channel();
            st.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu {
                    op: "read",
                    message: e.to_string(),
                })?;
            self.take_error("read")?;
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(Error::Gpu {
                        op: "read",
                        message: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Error::Gpu {
                        op: "read",
                        message: "mapping never completed".into(),
                    });
                }
            }
            {
                let view = st
                    .slice(..bytes)
                    .get_mapped_range()
                    .map_err(|e| Error::Gpu {
                        op: "read",
                        message: e.to_string(),
                    })?;
                out.extend_from_slice(bytemuck::cast_slice(&view));
            }
            st.unmap();
            done += n;
        }
        Ok(out)
    }
}
