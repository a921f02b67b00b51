//! Pipelines (compiled on first use, cached by everything that changes the
//! code) and queued work: one pending encoder, a ring of parameter slots.

use super::{GpuContext, Pending, RING_SLOTS, SLOT_BYTES, Shader, View, lock};
use crate::error::{Error, Result};
use std::sync::Arc;

/// How a kernel binds a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// Storage, read only.
    Read,
    /// Storage, read and write.
    Write,
    /// A read-only uniform buffer. On lavapipe, loads from it at addresses that
    /// differ between lanes are vector gathers, where storage loads are one
    /// scalar load per lane; small tables go here.
    Uniform,
}

/// A buffer binding of a kernel: the binding number and how it is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub binding: u32,
    pub access: Access,
}

pub(crate) const fn read(binding: u32) -> Slot {
    Slot {
        binding,
        access: Access::Read,
    }
}

pub(crate) const fn write(binding: u32) -> Slot {
    Slot {
        binding,
        access: Access::Write,
    }
}

pub(crate) const fn uniform(binding: u32) -> Slot {
    Slot {
        binding,
        access: Access::Uniform,
    }
}

/// A kernel's storage bindings, as a constant list:
/// `slots![read(1), write(3)]`.
macro_rules! slots {
    ($($s:expr),* $(,)?) => {{
        const SLOTS: &[$crate::gpu::context::Slot] = &[$($s),*];
        SLOTS
    }};
}
pub(crate) use slots;

/// Most pipeline constants a kernel takes.
const MAX_CONSTANTS: usize = 8;

/// The pipeline-overridable constants of one pipeline (name, value as f64
/// bits), held inline so that building a key allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Constants {
    items: [(&'static str, u64); MAX_CONSTANTS],
    len: usize,
}

impl Constants {
    /// No constants.
    pub const NONE: Constants = Constants {
        items: [("", 0); MAX_CONSTANTS],
        len: 0,
    };

    /// The given constants (at most eight; a longer list is a bug caught in
    /// debug builds, and truncated otherwise).
    pub fn of(values: &[(&'static str, f64)]) -> Constants {
        debug_assert!(values.len() <= MAX_CONSTANTS);
        let mut c = Constants::NONE;
        for &(name, v) in values.iter().take(MAX_CONSTANTS) {
            c.items[c.len] = (name, v.to_bits());
            c.len += 1;
        }
        c
    }

    /// Adds a constant.
    pub fn push(&mut self, name: &'static str, v: f64) {
        debug_assert!(self.len < MAX_CONSTANTS);
        if self.len < MAX_CONSTANTS {
            self.items[self.len] = (name, v.to_bits());
            self.len += 1;
        }
    }

    /// The constants as wgpu takes them.
    fn pairs(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.items[..self.len]
            .iter()
            .map(|&(n, v)| (n, f64::from_bits(v)))
    }
}

/// Everything that changes the compiled code of a pipeline. Copy, and built
/// without allocation on every dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub shader: Shader,
    pub entry: &'static str,
    pub slots: &'static [Slot],
    pub constants: Constants,
}

/// A compiled pipeline and the layout of its bind group.
pub(crate) type Compiled = (Arc<wgpu::ComputePipeline>, wgpu::BindGroupLayout);

impl GpuContext {
    /// Registers a generated kernel source and returns the shader that names
    /// it (the same source gives the same shader, compiled once).
    pub(crate) fn register_generated(&self, source: String) -> Shader {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut h);
        let id = h.finish();
        lock(&self.generated)
            .entry(id)
            .or_insert_with(|| source.into());
        Shader::Generated(id)
    }

    fn module(&self, shader: Shader) -> Result<wgpu::ShaderModule> {
        let mut modules = lock(&self.modules);
        if let Some(m) = modules.get(&shader) {
            return Ok(m.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let source = match shader {
            Shader::Generated(id) => match lock(&self.generated).get(&id) {
                Some(src) => src.to_string(),
                None => {
                    return Err(Error::invalid(format!(
                        "internal: generated shader {id:x} was never registered"
                    )));
                }
            },
            _ => shader.source(),
        };
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(&format!("{shader:?}")),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if self.unchecked {
            // SAFETY: `unchecked` is set only through the unsafe
            // `GpuOptions::without_bounds_checks`, whose caller accepts that
            // the kernels' indexing is trusted.
            unsafe {
                self.device
                    .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        } else {
            self.device.create_shader_module(desc)
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op: "compile",
                message: format!("shader {shader:?}: {e}"),
            });
        }
        modules.insert(shader, module.clone());
        Ok(module)
    }

    fn layout(&self, slots: &'static [Slot]) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        lock(&self.layouts)
            .entry(slots)
            .or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                }];
                for s in slots {
                    entries.push(wgpu::BindGroupLayoutEntry {
                        binding: s.binding,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match s.access {
                                Access::Uniform => wgpu::BufferBindingType::Uniform,
                                a => wgpu::BufferBindingType::Storage {
                                    read_only: a == Access::Read,
                                },
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    });
                }
                let bgl = self
                    .device
                    .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: None,
                        entries: &entries,
                    });
                let pl = self
                    .device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: None,
                        bind_group_layouts: &[Some(&bgl)],
                        immediate_size: 0,
                    });
                (bgl, pl)
            })
            .clone()
    }

    /// The compiled pipeline for a key and its bind group layout, compiled on
    /// first use and cached.
    pub(crate) fn pipeline(&self, key: &PipelineKey) -> Result<Compiled> {
        if let Some(p) = lock(&self.pipelines).get(key) {
            return Ok(p.clone());
        }
        let module = self.module(key.shader)?;
        let (bgl, layout) = self.layout(key.slots);
        let constants: Vec<(&str, f64)> = key.constants.pairs().collect();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key.entry),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(key.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op: key.entry,
                message: format!("compiling {:?}::{}: {e}", key.shader, key.entry),
            });
        }
        let p = (Arc::new(pipeline), bgl);
        lock(&self.pipelines).insert(*key, p.clone());
        Ok(p)
    }

    /// Queues one dispatch of `key` with `params` in its uniform slot and `views`
    /// bound to the key's storage slots, in order.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &self,
        key: &PipelineKey,
        params: &P,
        views: &[View<'_>],
        groups: [u32; 3],
    ) -> Result<()> {
        debug_assert_eq!(views.len(), key.slots.len());
        let bytes = bytemuck::bytes_of(params);
        debug_assert!(bytes.len() as u64 <= SLOT_BYTES);
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::DeviceLimit {
                op: key.entry,
                what: "max_compute_workgroups_per_dimension",
                needed: *groups.iter().max().unwrap_or(&0) as u64,
                limit: max as u64,
                device: self.info.name.clone(),
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let (pipeline, bgl) = self.pipeline(key)?;
        let mut pending = lock(&self.pending);
        if pending.next_slot == RING_SLOTS {
            self.flush_locked(&mut pending);
        }
        let slot = pending.next_slot;
        pending.next_slot += 1;
        self.queue
            .write_buffer(&self.ring, slot * SLOT_BYTES, bytes);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.ring,
                offset: 0,
                size: wgpu::BufferSize::new(SLOT_BYTES),
            }),
        }];
        for (s, v) in key.slots.iter().zip(views) {
            entries.push(wgpu::BindGroupEntry {
                binding: s.binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: v.buffer,
                    offset: v.offset,
                    size: wgpu::BufferSize::new(v.size),
                }),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &bgl,
            entries: &entries,
        });
        let encoder = pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[(slot * SLOT_BYTES) as u32]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        Ok(())
    }

    /// Records work directly on the pending encoder (copies, timestamp queries).
    pub(crate) fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut pending = lock(&self.pending);
        let encoder = pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        f(encoder)
    }

    fn flush_locked(&self, pending: &mut Pending) -> Option<wgpu::SubmissionIndex> {
        pending.next_slot = 0;
        pending
            .encoder
            .take()
            .map(|enc| self.queue.submit([enc.finish()]))
    }

    /// Submits queued work without waiting for it.
    pub(crate) fn flush(&self) -> Option<wgpu::SubmissionIndex> {
        self.flush_locked(&mut lock(&self.pending))
    }

    /// Submits queued work and waits until the device is idle.
    pub(crate) fn wait(&self, op: &'static str) -> Result<()> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu {
                op,
                message: e.to_string(),
            })?;
        self.take_error(op)
    }
}
