//! What a device is and how a user names one: descriptors shared by every
//! backend, so that nothing above the backends depends on one of them.

use crate::error::{Error, Result};
use serde::Serialize;

/// What `widenet devices` shows of one device (a wgpu adapter or the CPU backend).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Position in the list of adapters (best first); 0 for the CPU backend.
    pub index: usize,
    /// The adapter's name.
    pub name: String,
    /// The vendor, named from its PCI or Khronos id.
    pub vendor: String,
    /// The vendor's PCI or Khronos id.
    pub vendor_id: u32,
    /// Vulkan, Metal, Dx12, Gl, or Cpu for the CPU backend.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version string.
    pub driver_info: String,
    /// f16 arithmetic in shaders (SHADER_F16).
    pub f16: bool,
    /// f64 arithmetic in shaders (SHADER_F64).
    pub f64: bool,
    /// Subgroup operations.
    pub subgroup: bool,
    /// Timestamp queries.
    pub timestamp: bool,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest storage binding, in bytes.
    pub max_binding_size: u64,
    /// Smallest and largest subgroup size.
    pub subgroup_sizes: (u32, u32),
    /// The cooperative-matrix tiles widenet's products can run on (square,
    /// f32 accumulators), from the adapter's reported configurations; empty
    /// where it has none.
    pub cooperative_matrix: Vec<CoopShape>,
}

impl DeviceInfo {
    /// The description of a device with the given name and kind and no
    /// optional feature (backends fill in what they have).
    pub fn new(
        name: impl Into<String>,
        backend: impl Into<String>,
        device_type: impl Into<String>,
    ) -> Self {
        DeviceInfo {
            index: 0,
            name: name.into(),
            vendor: "unknown".into(),
            vendor_id: 0,
            backend: backend.into(),
            device_type: device_type.into(),
            driver: String::new(),
            driver_info: String::new(),
            f16: false,
            f64: false,
            subgroup: false,
            timestamp: false,
            max_buffer_size: u64::MAX,
            max_binding_size: u64::MAX,
            subgroup_sizes: (1, 1),
            cooperative_matrix: Vec::new(),
        }
    }
}

/// A cooperative-matrix configuration widenet's products use: `side` x `side`
/// tiles of A, B and C (side 8 or 16), operands in f16 or f32, sums in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CoopShape {
    /// Tile side.
    pub side: u32,
    /// Operands in f16 (else f32).
    pub f16: bool,
}

impl std::fmt::Display for CoopShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.side;
        let ab = if self.f16 { "f16" } else { "f32" };
        write!(f, "{t}x{t}x{t} {ab}->f32")
    }
}

/// How the user asked for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A discrete, integrated or virtual GPU; else the faster (by measured
    /// product rate) of the best software adapter and the CPU backend; else
    /// the CPU backend (see [`crate::open_auto`]). At the level of
    /// [`crate::gpu::GpuBackend::open`], which knows only adapters: the best adapter.
    Auto,
    /// The CPU backend.
    Cpu,
    /// The best adapter, or the one at this index of `widenet devices`; never the CPU backend.
    Gpu(Option<usize>),
    /// The first adapter whose name contains this (case-insensitive).
    Name(String),
}

impl DeviceChoice {
    /// Parses `auto`, `cpu`, `gpu`, `gpu:INDEX` or a name substring.
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "" => return Err(Error::invalid("device: empty device name")),
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "gpu" => DeviceChoice::Gpu(None),
            _ => match lower.strip_prefix("gpu:") {
                Some(idx) => DeviceChoice::Gpu(Some(idx.parse().map_err(|_| {
                    Error::invalid(format!(
                        "device {t}: expected gpu:INDEX with INDEX a number from the device list"
                    ))
                })?)),
                None => DeviceChoice::Name(t.to_string()),
            },
        })
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DeviceChoice::parse(s)
    }
}

/// The name of a GPU vendor from its PCI id (or Khronos vendor id).
pub fn vendor_name(id: u32) -> &'static str {
    match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x106b => "Apple",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x1010 => "Imagination",
        0x1ae0 => "Google",
        0x14e4 => "Broadcom",
        0x144d => "Samsung",
        0x19e5 => "Huawei",
        0x1ed5 => "Moore Threads",
        0x15ad => "VMware",
        0x1af4 => "Red Hat (virtio)",
        0x1414 => "Microsoft",
        // Khronos vendor ids (VkVendorId), for vendors without a PCI id.
        0x10001 => "Vivante",
        0x10002 => "VeriSilicon",
        0x10003 => "Kazan",
        0x10004 => "Codeplay",
        0x10005 => "Mesa",
        0x10006 => "PoCL",
        0x10007 => "Mobileye",
        _ => "unknown",
    }
}
