//! Finding adapters on every backend wgpu offers, describing them, and choosing
//! one (`--device auto | cpu | gpu | gpu:INDEX | NAME-SUBSTRING`).

use crate::error::{Error, Result};
use serde::Serialize;

/// What `widenet devices` shows of one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterInfo {
    pub index: usize,
    pub name: String,
    pub vendor: String,
    pub vendor_id: u32,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub f16: bool,
    pub f64: bool,
    pub subgroup: bool,
    pub timestamp: bool,
    pub max_buffer_size: u64,
    pub max_binding_size: u64,
    /// Smallest and largest subgroup size.
    pub subgroup_sizes: (u32, u32),
    /// The cooperative-matrix tiles widenet's products can run on (square,
    /// f32 accumulators), from the adapter's reported configurations; empty
    /// where it has none (or no EXPERIMENTAL_COOPERATIVE_MATRIX).
    pub cooperative_matrix: Vec<CoopShape>,
}

/// A cooperative-matrix configuration widenet's products use: `side` x `side`
/// tiles of A, B and C (side 8 or 16), operands in f16 or f32, sums in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CoopShape {
    pub side: u32,
    pub f16: bool,
}

impl std::fmt::Display for CoopShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.side;
        let ab = if self.f16 { "f16" } else { "f32" };
        write!(f, "{t}x{t}x{t} {ab}->f32")
    }
}

/// The configurations among an adapter's cooperative-matrix properties that
/// widenet's kernel takes: M = N = K of 8 or 16, A and B both f16 or both f32,
/// C f32, no saturation; at most one per operand type, the largest side first.
pub(crate) fn coop_shapes(adapter: &wgpu::Adapter) -> Vec<CoopShape> {
    if !adapter
        .features()
        .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        return Vec::new();
    }
    use wgpu::CooperativeScalarType as S;
    let mut found: Vec<CoopShape> = adapter
        .cooperative_matrix_properties()
        .into_iter()
        .filter(|p| {
            p.m_size == p.n_size
                && p.n_size == p.k_size
                && matches!(p.m_size, 8 | 16)
                && p.cr_type == S::F32
                && matches!(p.ab_type, S::F32 | S::F16)
                && !p.saturating_accumulation
        })
        .map(|p| CoopShape {
            side: p.m_size,
            f16: p.ab_type == S::F16,
        })
        .collect();
    found.sort_by_key(|c| (c.f16, std::cmp::Reverse(c.side)));
    found.dedup_by_key(|c| c.f16);
    found
}

/// How the user asked for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// Best adapter: discrete, integrated, virtual, software; else the CPU backend.
    Auto,
    /// The CPU reference backend.
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
            "" => return Err(Error::invalid("--device: empty device name")),
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "gpu" => DeviceChoice::Gpu(None),
            _ => match lower.strip_prefix("gpu:") {
                Some(idx) => DeviceChoice::Gpu(Some(idx.parse().map_err(|_| {
                    Error::invalid(format!("--device {t}: expected gpu:INDEX with INDEX a number from `widenet devices`"))
                })?)),
                None => DeviceChoice::Name(t.to_string()),
            },
        })
    }

    /// The `--device` value if given, else `WIDENET_DEVICE`, else auto.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<Self> {
        match flag {
            Some(f) => Self::parse(f),
            None => match std::env::var("WIDENET_DEVICE") {
                Ok(v) if !v.trim().is_empty() => Self::parse(&v),
                _ => Ok(DeviceChoice::Auto),
            },
        }
    }
}

pub(crate) fn vendor_name(id: u32) -> &'static str {
    match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x106b => "Apple",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x1010 => "Imagination",
        0x10005 => "Mesa",
        0x1414 => "Microsoft",
        _ => "unknown",
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 1,
        wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 3,
        _ => 4,
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::all();
    wgpu::Instance::new(desc)
}

/// All adapters, in a stable order (best first), with their descriptions.
pub fn enumerate() -> Vec<(wgpu::Adapter, AdapterInfo)> {
    let inst = instance();
    let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (
            type_rank(i.device_type),
            backend_rank(i.backend),
            i.name.clone(),
        )
    });
    adapters
        .into_iter()
        .enumerate()
        .map(|(index, a)| {
            let i = a.get_info();
            let f = a.features();
            let l = a.limits();
            let info = AdapterInfo {
                index,
                name: i.name.clone(),
                vendor: vendor_name(i.vendor).to_string(),
                vendor_id: i.vendor,
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
                driver: i.driver.clone(),
                driver_info: i.driver_info.clone(),
                f16: f.contains(wgpu::Features::SHADER_F16),
                f64: f.contains(wgpu::Features::SHADER_F64),
                subgroup: f.contains(wgpu::Features::SUBGROUP),
                timestamp: f.contains(wgpu::Features::TIMESTAMP_QUERY),
                max_buffer_size: l.max_buffer_size,
                max_binding_size: l.max_storage_buffer_binding_size,
                subgroup_sizes: (i.subgroup_min_size, i.subgroup_max_size),
                cooperative_matrix: coop_shapes(&a),
            };
            (a, info)
        })
        .collect()
}

/// Picks an adapter for a choice; `Ok(None)` means the CPU backend.
pub(crate) fn select(choice: &DeviceChoice) -> Result<Option<(wgpu::Adapter, AdapterInfo)>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(None);
    }
    let mut all = enumerate();
    match choice {
        DeviceChoice::Cpu => Ok(None),
        DeviceChoice::Auto => {
            if all.is_empty() {
                log::warn!("no GPU adapter found; running on the CPU backend");
                eprintln!(
                    "warning: no GPU adapter found; running on the CPU backend (see `widenet devices`)"
                );
                Ok(None)
            } else {
                Ok(Some(all.remove(0)))
            }
        }
        DeviceChoice::Gpu(None) => {
            if all.is_empty() {
                Err(Error::NoDevice("gpu".into()))
            } else {
                Ok(Some(all.remove(0)))
            }
        }
        DeviceChoice::Gpu(Some(i)) => {
            if *i < all.len() {
                Ok(Some(all.remove(*i)))
            } else {
                Err(Error::NoDevice(format!(
                    "gpu:{i} ({} adapter(s) found)",
                    all.len()
                )))
            }
        }
        DeviceChoice::Name(n) => {
            let needle = n.to_ascii_lowercase();
            match all.iter().position(|(_, i)| {
                i.name.to_ascii_lowercase().contains(&needle)
                    || i.backend.to_ascii_lowercase() == needle
            }) {
                Some(p) => Ok(Some(all.remove(p))),
                None => Err(Error::NoDevice(n.clone())),
            }
        }
    }
}
