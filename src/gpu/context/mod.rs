//! The device context, built once and reused: device and queue, compiled
//! pipelines (cached by shader, entry point and constants), a ring of uniform
//! slots for kernel parameters, and one pending command encoder, so that a run
//! of operations is submitted together with no host round-trip. Split by
//! concern: `shaders` (WGSL assembly), `dispatch` (pipelines and queued work),
//! `memory` (buffers, binding windows, read-back), `timing` (timestamps).

mod dispatch;
mod memory;
mod shaders;
mod timing;

pub(crate) use dispatch::{Constants, PipelineKey, Slot, read, slots, uniform, write};
pub use memory::PendingRead;
pub(crate) use memory::{View, Window};
#[cfg(test)]
pub(crate) use shaders::tests;
pub(crate) use shaders::{Shader, activation_wgsl};

use super::matmul::{MatmulConfig, MatmulKernel, MatmulPlan};
use crate::backend::{CoopShape, DeviceInfo};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

const SLOT_BYTES: u64 = 256;
const RING_SLOTS: u64 = 256;

struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    next_slot: u64,
}

/// A wgpu device ready for widenet's kernels.
pub(crate) struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: DeviceInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<&'static [Slot], (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, dispatch::Compiled>>,
    ring: wgpu::Buffer,
    pending: Mutex<Pending>,
    staging: Mutex<Option<wgpu::Buffer>>,
    read_pool: Mutex<Vec<wgpu::Buffer>>,
    error: Arc<Mutex<Option<String>>>,
    matmul_plan: Mutex<MatmulPlan>,
    binding_cap: std::sync::atomic::AtomicU64,
    dummies: (wgpu::Buffer, wgpu::Buffer),
    kernel_forced: std::sync::atomic::AtomicBool,
    unchecked: bool,
    /// Sources of generated kernels (the kernel recursion of each
    /// architecture), by the id their [`Shader`] carries.
    generated: Mutex<HashMap<u64, Arc<str>>>,
}

/// How the GPU backend is set up when a device is opened.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GpuOptions {
    /// Run every matrix product that allows it on this kernel (tests,
    /// benchmarks); `None` leaves the choice to the autotune.
    pub matmul_kernel: Option<MatmulKernel>,
    /// Use cooperative matrices (tensor cores) where the adapter reports them.
    pub cooperative_matrix: bool,
    /// Time the matrix-product configurations on first use of an adapter and
    /// keep the fastest (cached per adapter and driver, see [`crate::gpu::tune`]).
    pub autotune: bool,
    /// Where the autotune cache lives; `None` is `$XDG_CACHE_HOME/widenet`
    /// (or `~/.cache/widenet`).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Report the autotune's progress on standard error.
    pub verbose: bool,
    unchecked: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            matmul_kernel: None,
            cooperative_matrix: true,
            autotune: true,
            cache_dir: None,
            verbose: false,
            unchecked: false,
        }
    }
}

impl GpuOptions {
    /// Compiles every kernel as a trusted module, without wgpu's runtime
    /// bounds checks (an experiment: on lavapipe it measured no gain).
    ///
    /// # Safety
    /// The host checks every operand's length before a dispatch, but the
    /// kernels' indexing is not proven in bounds for every shape: an
    /// out-of-bounds access would then read or write arbitrary device memory.
    /// Use it only to measure, on inputs the test suite covers.
    pub unsafe fn without_bounds_checks(mut self) -> Self {
        self.unchecked = true;
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuContext {
    /// Opens a device on `adapter` with the adapter's own limits and the
    /// optional features widenet can use.
    pub fn new(adapter: &wgpu::Adapter, info: DeviceInfo, opts: &GpuOptions) -> Result<Self> {
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SHADER_F64
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let mut features = adapter.features() & wanted;
        // Cooperative matrices are experimental in wgpu: requested only where
        // the adapter offers a configuration the products use, and when asked.
        let coop = !info.cooperative_matrix.is_empty() && opts.cooperative_matrix;
        if coop {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("widenet"),
            required_features: features,
            required_limits: limits,
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
        let requested = match requested {
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
                pollster::block_on(adapter.request_device(&plain))
            }
            r => r,
        };
        let (device, queue) = requested.map_err(|e| Error::Gpu {
            op: "request_device",
            message: e.to_string(),
        })?;
        Self::from_device(device, queue, info, opts)
    }

    /// Wraps a device and queue the application already owns (opened on the
    /// adapter `info` describes); widenet uses the features it was opened with.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: DeviceInfo,
        opts: &GpuOptions,
    ) -> Result<Self> {
        let features = device.features();
        let limits = device.limits();
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
        let coop = features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let coop_f32 = coop && info.cooperative_matrix.iter().any(|c| !c.f16);
        if opts.unchecked {
            log::warn!("kernels are compiled without runtime bounds checks");
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
        match opts.matmul_kernel {
            Some(MatmulKernel::Sg8) if !sg8 => {
                log::warn!("matmul kernel sg8 not forced: the adapter has no 8-lane subgroups")
            }
            Some(MatmulKernel::Coop) if !coop_f32 => log::warn!(
                "matmul kernel coop not forced: the adapter has no f32 cooperative matrices"
            ),
            Some(k) => {
                default_plan = MatmulPlan::uniform(MatmulConfig::default_for(k));
                forced = true;
            }
            None => {}
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
            unchecked: opts.unchecked,
            generated: Mutex::new(HashMap::new()),
        })
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

    #[cfg(feature = "test-hooks")]
    /// Destroys the device, as a driver reset would (for tests of device loss).
    pub(crate) fn lose_device(&self) {
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
    pub fn coop_shape(&self, f16: bool) -> Option<CoopShape> {
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

    #[cfg(feature = "test-hooks")]
    /// Chooses the matrix-product kernel (for tests and benchmarks); it must be
    /// one of [`Self::matmul_kernels`].
    pub(crate) fn set_matmul_kernel(&self, k: MatmulKernel) -> Result<()> {
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
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Largest number of bytes one storage binding may span.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(self.binding_cap.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[cfg(feature = "test-hooks")]
    /// Pretends the adapter allows at most `bytes` per storage binding, so that
    /// the splitting of large operands can be tested on small data.
    pub(crate) fn cap_binding_size(&self, bytes: u64) {
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
}
