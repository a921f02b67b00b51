//! The device context, built once and reused: device and queue, compiled
//! pipelines (cached by shader, entry point and constants), a ring of uniform
//! slots for kernel parameters, and one pending command encoder, so that a run
//! of operations is submitted together with no host round-trip.

use super::adapter::AdapterInfo;
use super::matmul::{MatmulConfig, MatmulKernel, MatmulPlan};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A read in flight, see [`GpuContext::begin_read`].
#[derive(Debug)]
pub struct PendingRead {
    staging: wgpu::Buffer,
    len: usize,
    index: wgpu::SubmissionIndex,
    rx: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// A WGSL kernel family, one file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Matmul,
    MatmulVec4,
    MatmulSg8,
    /// `matmul_vec4.wgsl` and `matmul_sg8.wgsl` reading f16 operands.
    MatmulVec4F16,
    MatmulSg8F16,
    /// `matmul_coop.wgsl` on cooperative-matrix tiles of one shape.
    MatmulCoop(super::adapter::CoopShape),
    Elementwise,
    Reduce,
    Ntk,
    Loss,
    Optimizer,
}

const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");
const MATMUL_PARAMS_WGSL: &str = include_str!("../../shaders/matmul_params.wgsl");

impl Shader {
    fn source(self) -> String {
        match self {
            Shader::Matmul => format!(
                "{MATMUL_PARAMS_WGSL}\n{}",
                include_str!("../../shaders/matmul.wgsl")
            ),
            Shader::MatmulVec4
            | Shader::MatmulSg8
            | Shader::MatmulVec4F16
            | Shader::MatmulSg8F16 => {
                // The operands' element type; `enable` must open the module.
                let operand = match self {
                    Shader::MatmulVec4F16 | Shader::MatmulSg8F16 => {
                        "enable f16;\nalias Operand4 = vec4<f16>;"
                    }
                    _ => "alias Operand4 = vec4<f32>;",
                };
                let body = match self {
                    Shader::MatmulVec4 | Shader::MatmulVec4F16 => {
                        include_str!("../../shaders/matmul_vec4.wgsl")
                    }
                    _ => include_str!("../../shaders/matmul_sg8.wgsl"),
                };
                format!("{operand}\n{ACTIVATION_WGSL}\n{MATMUL_PARAMS_WGSL}\n{body}")
            }
            Shader::MatmulCoop(c) => {
                let t = c.side;
                let (enable, operand) = if c.f16 {
                    ("enable f16;\n", "f16")
                } else {
                    ("", "f32")
                };
                format!(
                    "{enable}enable wgpu_cooperative_matrix;\n\
                     alias Operand = {operand};\n\
                     alias TileA = coop_mat{t}x{t}<Operand, A>;\n\
                     alias TileB = coop_mat{t}x{t}<Operand, B>;\n\
                     alias TileC = coop_mat{t}x{t}<f32, C>;\n\
                     const T: u32 = {t}u;\n\
                     {ACTIVATION_WGSL}\n{MATMUL_PARAMS_WGSL}\n{}",
                    include_str!("../../shaders/matmul_coop.wgsl")
                )
            }
            Shader::Elementwise => format!(
                "{ACTIVATION_WGSL}\n{}",
                include_str!("../../shaders/elementwise.wgsl")
            ),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl").to_string(),
            Shader::Loss => include_str!("../../shaders/loss.wgsl").to_string(),
            Shader::Optimizer => include_str!("../../shaders/optimizer.wgsl").to_string(),
            Shader::Ntk => format!(
                "{ACTIVATION_WGSL}\n{}",
                include_str!("../../shaders/ntk.wgsl")
            ),
        }
    }
}

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

/// Everything that changes the compiled code of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub shader: Shader,
    pub entry: &'static str,
    pub slots: Vec<Slot>,
    pub constants: Vec<(&'static str, u64)>,
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

const SLOT_BYTES: u64 = 256;
const RING_SLOTS: u64 = 256;

struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    next_slot: u64,
}

/// A wgpu device ready for widenet's kernels.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<Vec<Slot>, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    ring: wgpu::Buffer,
    pending: Mutex<Pending>,
    staging: Mutex<Option<wgpu::Buffer>>,
    read_pool: Mutex<Vec<wgpu::Buffer>>,
    error: Arc<Mutex<Option<String>>>,
    matmul_plan: Mutex<MatmulPlan>,
    binding_cap: std::sync::atomic::AtomicU64,
    dummies: (wgpu::Buffer, wgpu::Buffer),
    kernel_forced: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuContext {
    /// Opens a device on `adapter` with the adapter's own limits and the
    /// optional features widenet can use.
    pub fn new(adapter: &wgpu::Adapter, info: AdapterInfo) -> Result<Self> {
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SHADER_F64
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let mut features = adapter.features() & wanted;
        // Cooperative matrices are experimental in wgpu: requested only where
        // the adapter offers a configuration the products use, and not when
        // WIDENET_COOPERATIVE_MATRIX=0.
        let coop = !info.cooperative_matrix.is_empty()
            && std::env::var("WIDENET_COOPERATIVE_MATRIX").map_or(true, |v| v != "0");
        if coop {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("widenet"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: if coop {
                // SAFETY: the one experimental feature requested is cooperative
                // matrices, used only by `matmul_coop.wgsl` on the shapes the
                // adapter reports; its products are checked against the CPU
                // backend by the tests on such adapters.
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let requested = pollster::block_on(adapter.request_device(&desc));
        // The experimental feature must not cost the adapter: without it if the
        // device cannot be had with it.
        let (requested, coop) = match requested {
            Err(e) if coop => {
                log::warn!(
                    "{}: no device with cooperative matrices ({e}); opening it without them",
                    info.name
                );
                let plain = wgpu::DeviceDescriptor {
                    required_features: features - wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                    experimental_features: wgpu::ExperimentalFeatures::disabled(),
                    ..desc
                };
                (pollster::block_on(adapter.request_device(&plain)), false)
            }
            r => (r, coop),
        };
        let (device, queue) = requested.map_err(|e| Error::Gpu {
            op: "request_device",
            message: e.to_string(),
        })?;
        let features = device.features();
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = lock(&sink);
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        let lost = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = lock(&lost);
            if slot.is_none() {
                *slot = Some(format!("device lost ({reason:?}): {msg}"));
            }
        });
        let sg8 = features.contains(wgpu::Features::SUBGROUP) && info.subgroup_sizes == (8, 8);
        let coop_f32 = coop && info.cooperative_matrix.iter().any(|c| !c.f16);
        if std::env::var("WIDENET_UNCHECKED").is_ok() {
            log::warn!(
                "WIDENET_UNCHECKED is set: kernels are compiled without runtime bounds checks"
            );
        }
        // Before tuning: the subgroup kernel where it runs, except for short
        // products (its tiles are 256 rows tall).
        let fast = if sg8 {
            MatmulKernel::Sg8
        } else {
            MatmulKernel::Vec4
        };
        let mut default_plan = MatmulPlan {
            large: MatmulConfig::default_for(fast),
            small: MatmulConfig::default_for(MatmulKernel::Vec4),
            // Hardware tiles where the adapter is a GPU; the tune measures.
            f16_coop: info.device_type != "Cpu",
        };
        let mut forced = false;
        if let Ok(v) = std::env::var("WIDENET_MATMUL_KERNEL") {
            match MatmulKernel::parse(&v) {
                Some(MatmulKernel::Sg8) if !sg8 => log::warn!(
                    "WIDENET_MATMUL_KERNEL=sg8 ignored: the adapter has no 8-lane subgroups"
                ),
                Some(MatmulKernel::Coop) if !coop_f32 => log::warn!(
                    "WIDENET_MATMUL_KERNEL=coop ignored: the adapter has no f32 cooperative matrices"
                ),
                Some(k) => {
                    default_plan = MatmulPlan::uniform(MatmulConfig::default_for(k));
                    forced = true;
                }
                None => {
                    log::warn!(
                        "WIDENET_MATMUL_KERNEL={v} ignored (expected generic, vec4, sg8 or coop)"
                    )
                }
            }
        }
        let dummy = |label: &'static str| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 256,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let dummies = (
            dummy("widenet dummy (read)"),
            dummy("widenet dummy (write)"),
        );
        let ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("widenet params ring"),
            size: SLOT_BYTES * RING_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            modules: Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            ring,
            pending: Mutex::new(Pending {
                encoder: None,
                next_slot: 0,
            }),
            staging: Mutex::new(None),
            read_pool: Mutex::new(Vec::new()),
            error,
            matmul_plan: Mutex::new(default_plan),
            binding_cap: std::sync::atomic::AtomicU64::new(u64::MAX),
            dummies,
            kernel_forced: std::sync::atomic::AtomicBool::new(forced),
        })
    }

    /// The matrix-product kernel used for large products of shapes that allow a fast one.
    pub fn matmul_kernel(&self) -> MatmulKernel {
        lock(&self.matmul_plan).large.kernel
    }

    /// The configurations the matrix products run with.
    pub fn matmul_plan(&self) -> MatmulPlan {
        *lock(&self.matmul_plan)
    }

    /// Sets the configurations of the matrix products (from an autotune); every
    /// kernel must be one of [`Self::matmul_kernels`], with valid settings.
    pub fn set_matmul_plan(&self, plan: MatmulPlan) -> Result<()> {
        for c in [plan.large, plan.small] {
            if !self.matmul_kernels().contains(&c.kernel) || !c.is_valid() {
                return Err(Error::invalid(format!(
                    "matmul configuration {c:?} is not available on {}",
                    self.info.name
                )));
            }
        }
        *lock(&self.matmul_plan) = plan;
        Ok(())
    }

    /// Destroys the device, as a driver reset would (for tests of device loss).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// Two small storage buffers for bindings a kernel declares but a dispatch does not use.
    pub(crate) fn dummies(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.dummies.0, &self.dummies.1)
    }

    /// Whether the kernel was chosen explicitly (tests, benchmarks,
    /// `WIDENET_MATMUL_KERNEL`): every product that allows it runs that kernel,
    /// and no autotune replaces it.
    pub(crate) fn matmul_kernel_forced(&self) -> bool {
        self.kernel_forced
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The matrix-product kernels this device can run.
    pub fn matmul_kernels(&self) -> Vec<MatmulKernel> {
        let mut v = vec![MatmulKernel::Generic, MatmulKernel::Vec4];
        let i = &self.info;
        if self.features.contains(wgpu::Features::SUBGROUP) && i.subgroup_sizes == (8, 8) {
            v.push(MatmulKernel::Sg8);
        }
        if self.coop_shape(false).is_some() {
            v.push(MatmulKernel::Coop);
        }
        v
    }

    /// The cooperative-matrix tiles this device runs products on, for f16 or
    /// f32 operands; `None` where it has none (or they were turned off with
    /// WIDENET_COOPERATIVE_MATRIX=0).
    pub fn coop_shape(&self, f16: bool) -> Option<super::adapter::CoopShape> {
        if !self
            .features
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        {
            return None;
        }
        if f16 && !self.features.contains(wgpu::Features::SHADER_F16) {
            return None;
        }
        self.info
            .cooperative_matrix
            .iter()
            .copied()
            .find(|c| c.f16 == f16)
    }

    /// Chooses the matrix-product kernel (for tests and benchmarks); it must be
    /// one of [`Self::matmul_kernels`].
    pub fn set_matmul_kernel(&self, k: MatmulKernel) -> Result<()> {
        if !self.matmul_kernels().contains(&k) {
            return Err(Error::invalid(format!(
                "matmul kernel {k:?} is not available on {}",
                self.info.name
            )));
        }
        *lock(&self.matmul_plan) = MatmulPlan::uniform(MatmulConfig::default_for(k));
        self.kernel_forced
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The adapter this context runs on.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Largest number of bytes one storage binding may span.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(self.binding_cap.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Pretends the adapter allows at most `bytes` per storage binding, so that
    /// the splitting of large operands can be tested on small data.
    pub fn cap_binding_size(&self, bytes: u64) {
        self.binding_cap
            .store(bytes.max(256), std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns (and clears) a device error raised since the last check.
    pub(crate) fn take_error(&self, op: &'static str) -> Result<()> {
        match lock(&self.error).take() {
            Some(message) => Err(Error::Gpu { op, message }),
            None => Ok(()),
        }
    }

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

    fn module(&self, shader: Shader) -> Result<wgpu::ShaderModule> {
        let mut modules = lock(&self.modules);
        if let Some(m) = modules.get(&shader) {
            return Ok(m.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(&format!("{shader:?}")),
            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
        };
        let module = if std::env::var("WIDENET_UNCHECKED").is_ok() {
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

    fn layout(&self, slots: &[Slot]) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        lock(&self.layouts)
            .entry(slots.to_vec())
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

    /// The compiled pipeline for a key, compiled on first use and cached.
    pub(crate) fn pipeline(&self, key: &PipelineKey) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = lock(&self.pipelines).get(key) {
            return Ok(p.clone());
        }
        let module = self.module(key.shader)?;
        let (_, layout) = self.layout(&key.slots);
        let constants: Vec<(&str, f64)> = key
            .constants
            .iter()
            .map(|&(n, v)| (n, f64::from_bits(v)))
            .collect();
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
        let p = Arc::new(pipeline);
        lock(&self.pipelines).insert(key.clone(), p.clone());
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
        let pipeline = self.pipeline(key)?;
        let (bgl, _) = self.layout(&key.slots);
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

    /// Waits for a read started by [`Self::begin_read`] and returns its values.
    pub(crate) fn finish_read(&self, p: PendingRead) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.finish_read_with(p, &mut |v| out = v.to_vec())?;
        Ok(out)
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

#[cfg(test)]
mod tests {
    //! Every kernel family through naga on the host, as wgpu compiles it for
    //! Vulkan: parsed, validated and written as SPIR-V. This runs without an
    //! adapter, so it also covers the kernels that only some adapters run (the
    //! cooperative-matrix tiles, f16 operands).
    use super::Shader;
    use crate::gpu::CoopShape;
    use wgpu::naga;

    fn all_shaders() -> Vec<Shader> {
        let mut v = vec![
            Shader::Matmul,
            Shader::MatmulVec4,
            Shader::MatmulSg8,
            Shader::MatmulVec4F16,
            Shader::MatmulSg8F16,
            Shader::Elementwise,
            Shader::Reduce,
            Shader::Ntk,
            Shader::Loss,
            Shader::Optimizer,
        ];
        for side in [8, 16] {
            for f16 in [false, true] {
                v.push(Shader::MatmulCoop(CoopShape { side, f16 }));
            }
        }
        v
    }

    fn spirv(shader: Shader, constants: &[(&str, f64)]) -> Result<Vec<u32>, String> {
        let src = shader.source();
        let module = naga::front::wgsl::parse_str(&src)
            .map_err(|e| format!("{shader:?}: {}", e.emit_to_string(&src)))?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| format!("{shader:?}: {}", e.emit_to_string(&src)))?;
        let constants = constants
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect::<naga::back::PipelineConstants>();
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .map_err(|e| format!("{shader:?}: overrides: {e}"))?;
        let options = naga::back::spv::Options {
            lang_version: (1, 6),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &options, None)
            .map_err(|e| format!("{shader:?}: SPIR-V: {e}"))
    }

    #[test]
    fn every_kernel_family_compiles_to_spirv() {
        for shader in all_shaders() {
            let words = spirv(shader, &[]).unwrap_or_else(|e| panic!("{e}"));
            // The SPIR-V magic number opens a real module.
            assert_eq!(words.first(), Some(&0x0723_0203), "{shader:?}");
            assert!(words.len() > 100, "{shader:?}: {} words", words.len());
        }
    }

    #[test]
    fn cooperative_kernel_uses_cooperative_matrices_in_spirv() {
        // OpTypeCooperativeMatrixKHR (4456), OpCooperativeMatrixLoadKHR
        // (4457), ...StoreKHR (4458) and ...MulAddKHR (4459) must appear: the
        // tiles are not emulated in the shader.
        let shape = CoopShape {
            side: 16,
            f16: true,
        };
        let words = spirv(
            Shader::MatmulCoop(shape),
            &[("WG", 32.0), ("WALK_M", 0.0), ("EPILOGUE", 1.0)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut ops = std::collections::HashSet::new();
        let mut i = 5;
        while i < words.len() {
            let (count, op) = (words[i] >> 16, words[i] & 0xffff);
            ops.insert(op);
            i += (count as usize).max(1);
        }
        for op in [4456, 4457, 4458, 4459] {
            assert!(ops.contains(&op), "SPIR-V opcode {op} missing");
        }
    }

    #[test]
    fn cooperative_source_declares_the_tiles_it_is_asked_for() {
        let src = Shader::MatmulCoop(CoopShape {
            side: 8,
            f16: false,
        })
        .source();
        assert!(src.contains("coop_mat8x8<Operand, A>"), "{src}");
        assert!(src.contains("alias Operand = f32;"));
        assert!(!src.contains("enable f16;"));
    }
}
