//! Finding adapters on every backend wgpu offers, describing them, and choosing
//! one (`--device auto | cpu | gpu | gpu:INDEX | NAME-SUBSTRING`).

use crate::backend::{CoopShape, DeviceChoice, DeviceInfo, vendor_name};
use crate::error::{Error, Result};

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

/// Whether an adapter can run compute shaders at all: every kernel of
/// widenet is one. A GL context below 4.3 (NVIDIA's EGL gives 3.3 where no
/// display is attached) cannot, and opening it fails.
fn computes(a: &wgpu::Adapter) -> bool {
    let i = a.get_info();
    a.get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        && (i.backend != wgpu::Backend::Gl || gl_version_computes(&i.driver_info))
}

/// Whether a GL context's version (`driver_info`: "4.5 (Core Profile) Mesa
/// ..." or "OpenGL ES 3.2 ...") has compute shaders in its shading
/// language: desktop 4.3, ES 3.1. wgpu offers compute on an older context
/// that has the `GL_ARB_compute_shader` extension, but its shader compiler
/// writes the context's GLSL version, which then has none (NVIDIA's 3.3
/// context over EGL). An unreadable version is trusted.
fn gl_version_computes(driver_info: &str) -> bool {
    let (es, rest) = match driver_info.strip_prefix("OpenGL ES ") {
        Some(r) => (true, r),
        None => (false, driver_info),
    };
    let mut parts = rest
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= if es { (3, 1) } else { (4, 3) },
        _ => true,
    }
}

/// The adapters wgpu finds that cannot run compute shaders, as
/// `NAME (BACKEND)`: left out of [`enumerate`], named by `widenet devices`.
pub fn without_compute() -> Vec<String> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .filter(|a| !computes(a))
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {})", i.name, i.backend, i.driver_info)
        })
        .collect()
}

/// All adapters that run compute shaders, in a stable order (best first),
/// with their descriptions.
pub fn enumerate() -> Vec<(wgpu::Adapter, DeviceInfo)> {
    let inst = instance();
    let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters.retain(computes);
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
            let info = describe(&a, index);
            (a, info)
        })
        .collect()
}

/// The description of an adapter at position `index` of the list.
pub(crate) fn describe(a: &wgpu::Adapter, index: usize) -> DeviceInfo {
    let i = a.get_info();
    let f = a.features();
    let l = a.limits();
    let mut info = DeviceInfo::new(
        i.name.clone(),
        format!("{:?}", i.backend),
        format!("{:?}", i.device_type),
    );
    info.index = index;
    info.vendor = vendor_name(i.vendor).to_string();
    info.vendor_id = i.vendor;
    info.driver = i.driver.clone();
    info.driver_info = i.driver_info.clone();
    info.f16 = f.contains(wgpu::Features::SHADER_F16);
    info.f64 = f.contains(wgpu::Features::SHADER_F64);
    info.subgroup = f.contains(wgpu::Features::SUBGROUP);
    info.timestamp = f.contains(wgpu::Features::TIMESTAMP_QUERY);
    info.max_buffer_size = l.max_buffer_size;
    info.max_binding_size = l.max_storage_buffer_binding_size;
    info.subgroup_sizes = (i.subgroup_min_size, i.subgroup_max_size);
    info.cooperative_matrix = coop_shapes(a);
    info
}

/// Picks an adapter for a choice; `Ok(None)` means the CPU backend.
pub(crate) fn select(choice: &DeviceChoice) -> Result<Option<(wgpu::Adapter, DeviceInfo)>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(None);
    }
    let mut all = enumerate();
    match choice {
        DeviceChoice::Cpu => Ok(None),
        DeviceChoice::Auto => {
            if all.is_empty() {
                log::warn!("no GPU adapter found; running on the CPU backend");
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

#[cfg(test)]
mod tests {
    use super::gl_version_computes;

    #[test]
    fn gl_contexts_compute_from_desktop_4_3_and_es_3_1() {
        assert!(gl_version_computes("4.5 (Core Profile) Mesa 22.3.6"));
        assert!(gl_version_computes("4.3.0 NVIDIA 580.159.04"));
        assert!(!gl_version_computes("3.3.0 NVIDIA 580.159.04"));
        assert!(!gl_version_computes("4.1 Metal - 88"));
        assert!(gl_version_computes("OpenGL ES 3.2 Mesa 23.0"));
        assert!(gl_version_computes("OpenGL ES 3.1"));
        assert!(!gl_version_computes("OpenGL ES 3.0 Mesa 20.0"));
        assert!(gl_version_computes(""));
    }
}
