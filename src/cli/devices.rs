//! `widenet devices` and the default job's self-check.

use widenet::backend::DeviceInfo;
use widenet::backend::Matmul;
use widenet::error::{Error, Result};
use widenet::gpu::{enumerate, tune};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn mib(b: u64) -> String {
    if b == u64::MAX {
        "-".to_string()
    } else {
        format!("{} MiB", b >> 20)
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The vendor named from its PCI or Khronos id, with the id where the name
/// is not known.
fn vendor(i: &DeviceInfo) -> String {
    if i.vendor == "unknown" {
        format!("unknown ({:#06x})", i.vendor_id)
    } else {
        i.vendor.clone()
    }
}

/// The subgroup sizes the adapter reports ("8", or a range such as "4-64";
/// any size in the range may run), or "no" without subgroup operations.
fn lanes(i: &DeviceInfo) -> String {
    match (i.subgroup, i.subgroup_sizes) {
        (false, _) => "no".into(),
        (true, (lo, hi)) if lo == hi => lo.to_string(),
        (true, (lo, hi)) => format!("{lo}-{hi}"),
    }
}

/// The adapters' table, with each one's measured product rate (`rates`,
/// GFLOP/s, one per device, `None` where none is known) in the last column.
pub(crate) fn table(infos: &[DeviceInfo], rates: &[Option<f64>]) -> String {
    let header = [
        "#",
        "name",
        "vendor",
        "backend",
        "type",
        "driver",
        "f16",
        "subgroup lanes",
        "timestamp",
        "coop matrix",
        "max buffer",
        "max binding",
        "GFLOP/s",
    ];
    let rows: Vec<Vec<String>> = infos
        .iter()
        .zip(rates)
        .map(|(i, rate)| {
            vec![
                if i.backend == "Cpu" {
                    "cpu".to_string()
                } else {
                    i.index.to_string()
                },
                i.name.clone(),
                vendor(i),
                i.backend.clone(),
                i.device_type.clone(),
                format!("{} {}", i.driver, i.driver_info).trim().to_string(),
                yes(i.f16).into(),
                lanes(i),
                yes(i.timestamp).into(),
                if i.cooperative_matrix.is_empty() {
                    "no".to_string()
                } else {
                    let v: Vec<String> =
                        i.cooperative_matrix.iter().map(|c| c.to_string()).collect();
                    v.join(", ")
                },
                mib(i.max_buffer_size),
                mib(i.max_binding_size),
                rate.map_or("-".to_string(), |r| format!("{r:.1}")),
            ]
        })
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The devices (adapters, then the CPU backend), each one's measured product
/// rate where known (an adapter's from its cached autotune; the CPU
/// backend's measured now if not cached, unless the autotune is off), and
/// what `--device auto` picks.
pub fn run(a: &Args) -> Result<()> {
    let mut infos: Vec<DeviceInfo> = enumerate().into_iter().map(|(_, i)| i).collect();
    let path = widenet::device::cache_path(&super::gpu_options());
    let mut rates: Vec<Option<f64>> = infos
        .iter()
        .map(|i| {
            let p = path.as_deref()?;
            tune::product_rate(&tune::cached_for(i, p)?)
        })
        .collect();
    let tuning = !super::tune::disabled();
    let best_software = infos.first().map(widenet::device::is_software);
    // The CPU backend's rate matters where auto would weigh it.
    let cpu_rate = match (best_software, tuning) {
        (Some(false), _) => None,
        (_, true) => Some(widenet::device::cpu_rate(path.as_deref())?.gflops),
        (_, false) => path
            .as_deref()
            .and_then(|p| tune::cached_cpu_rate(p, &widenet::cpu::rate::key()).map(|r| r.gflops)),
    };
    let (cpu_chosen, reason) = match best_software {
        None => (true, "no GPU adapter found".to_string()),
        Some(sw) => widenet::device::decide(sw, rates[0], cpu_rate),
    };
    infos.push(widenet::Backend::info(&widenet::cpu::CpuBackend));
    rates.push(cpu_rate);
    let chosen = if cpu_chosen { infos.len() - 1 } else { 0 };
    if a.json {
        let list: Vec<serde_json::Value> = infos
            .iter()
            .zip(&rates)
            .enumerate()
            .map(|(k, (i, r))| {
                let mut v = serde_json::json!(i);
                v["gflops"] = serde_json::json!(r);
                v["auto"] = (k == chosen).into();
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).map_err(|e| Error::invalid(e.to_string()))?
        );
        return Ok(());
    }
    if infos.len() == 1 {
        println!("No GPU adapter found; widenet will run on its CPU backend.");
        println!(
            "On Linux, a software Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1"
        );
        println!();
    }
    print!("{}", table(&infos, &rates));
    for skipped in widenet::gpu::without_compute() {
        println!("not listed: {skipped}: no compute shaders");
    }
    println!(
        "GFLOP/s: the geometric mean of the autotune's large products (an adapter's from its cached tune, `widenet tune`; the CPU backend's timed once and cached)."
    );
    println!("--device auto: {} ({reason})", infos[chosen].name);
    Ok(())
}

/// The default job until `compare` exists: the device table, then a product
/// checked against the CPU backend on the chosen device.
pub fn self_check(device: Option<&str>) -> Result<()> {
    run(&Args { json: false })?;
    let b = super::open_device(device)?;
    println!("\nSelf-check on {}:", b.describe());
    let (m, n, k) = (257, 129, 65);
    let mut rng = widenet::rng::Rng::new(7);
    let a = rng.normals_f32(m * k);
    let bm = rng.normals_f32(k * n);
    let spec = Matmul::new(m, n, k);
    let ga = b.upload(&a)?;
    let gb = b.upload(&bm)?;
    let mut gc = b.zeros(m * n)?;
    b.matmul(&spec, &ga, &gb, &mut gc)?;
    let got = b.read(&gc)?;
    let mut want = vec![0.0f64; m * n];
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    widenet::cpu::ops::matmul(&spec, &wide(&a), &wide(&bm), &mut want);
    let (num, den) = got.iter().zip(&want).fold((0.0, 0.0), |(n, d), (&g, &w)| {
        (n + (g as f64 - w).powi(2), d + w * w)
    });
    let err = (num / den).sqrt();
    let ok = err < 1e-5;
    println!(
        "  matmul {m}x{k} * {k}x{n}: relative error {err:.2e} against the f64 reference ({})",
        if ok { "ok" } else { "FAILED" }
    );
    if !ok {
        return Err(Error::Numerical(format!(
            "self-check failed: relative error {err:.2e}"
        )));
    }
    if let Some(g) = b.as_any().downcast_ref::<widenet::gpu::GpuBackend>() {
        every_kernel(g)?;
    }
    Ok(())
}

fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let (num, den) = got.iter().zip(want).fold((0.0, 0.0), |(n, d), (&g, &w)| {
        (n + (g as f64 - w).powi(2), d + w * w)
    });
    (num / den).sqrt()
}

/// Every matrix-product kernel the adapter offers (and f16 operands where it
/// has them), each on a product all of them take, against the f64 reference
/// within 1e-4: on a new machine, one command checks the variants the test
/// suite could not reach on the machines it ran on (cooperative matrices).
fn every_kernel(g: &widenet::gpu::GpuBackend) -> Result<()> {
    use widenet::Backend;
    use widenet::gpu::{MatmulConfig, MatmulPlan};
    const TOL: f64 = 1e-4;
    let ctx = g;
    let (m, n, k) = (256, 128, 64);
    let spec = Matmul::new(m, n, k);
    let mut rng = widenet::rng::Rng::new(8);
    let a = rng.normals_f32(m * k);
    let bm = rng.normals_f32(k * n);
    let mut want = vec![0.0f64; m * n];
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    widenet::cpu::ops::matmul(&spec, &wide(&a), &wide(&bm), &mut want);
    let (ga, gb) = (g.upload(&a)?, g.upload(&bm)?);
    let mut gc = g.zeros(m * n)?;
    let before = ctx.matmul_plan();
    let mut failed = Vec::new();
    let mut check = |what: String, got: Result<Vec<f32>>, want: &[f64]| -> Result<()> {
        let err = rel_err(&got?, want);
        let ok = err < TOL;
        println!(
            "  {what}: relative error {err:.2e} ({})",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(what);
        }
        Ok(())
    };
    println!("  matmul {m}x{k} * {k}x{n} on every kernel:");
    for kernel in ctx.matmul_kernels() {
        ctx.set_matmul_plan(MatmulPlan::uniform(MatmulConfig::default_for(kernel)))?;
        let got = g.matmul(&spec, &ga, &gb, &mut gc).and_then(|_| g.read(&gc));
        let tiles = match kernel {
            widenet::gpu::MatmulKernel::Coop => ctx
                .coop_shape(false)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        check(format!("  {kernel:?}{tiles}, f32"), got, &want)?;
    }
    ctx.set_matmul_plan(before)?;
    if g.has_f16() {
        let rounded = |v: &[f32]| -> Vec<f64> {
            v.iter().map(|&x| half::f16::from_f32(x).to_f64()).collect()
        };
        let mut want16 = vec![0.0f64; m * n];
        widenet::cpu::ops::matmul(&spec, &rounded(&a), &rounded(&bm), &mut want16);
        let (ha, hb) = (g.upload_f16(&a)?, g.upload_f16(&bm)?);
        let tiles = ctx.coop_shape(true);
        for coop in [false, true] {
            let path = match (coop, tiles) {
                (false, _) => format!("{:?}", before.large.kernel),
                (true, Some(c)) => format!("cooperative matrices {c}"),
                (true, None) => continue,
            };
            ctx.set_matmul_plan(MatmulPlan {
                f16_coop: coop,
                ..before
            })?;
            let got = g
                .matmul_f16(&spec, &ha, &hb, &mut gc)
                .and_then(|_| g.read(&gc));
            check(format!("  f16 operands, {path}"), got, &want16)?;
        }
        ctx.set_matmul_plan(before)?;
    }
    if !failed.is_empty() {
        return Err(Error::Numerical(format!(
            "self-check failed on: {}",
            failed.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, vendor_id: u32, subgroup: bool, sizes: (u32, u32)) -> DeviceInfo {
        let mut i = DeviceInfo::new(name, "Vulkan", "Cpu");
        i.vendor_id = vendor_id;
        i.vendor = widenet::backend::vendor_name(vendor_id).to_string();
        i.subgroup = subgroup;
        i.subgroup_sizes = sizes;
        i.driver = "driver".into();
        i
    }

    #[test]
    fn the_table_names_vendors_and_subgroup_sizes() {
        let t = table(
            &[
                adapter("SwiftShader Device (Subzero)", 0x1ae0, true, (4, 4)),
                adapter("llvmpipe", 0x10005, true, (8, 8)),
                adapter("NVIDIA H200", 0x10de, true, (32, 32)),
                adapter("Radeon", 0x1002, true, (32, 64)),
                adapter("llvmpipe GL", 0x10005, false, (4, 128)),
                adapter("mystery", 0xabcd, false, (1, 1)),
            ],
            &[None; 6],
        );
        let rows: Vec<Vec<&str>> = t
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(rows[0][2], "vendor", "{t}");
        assert_eq!(rows[0][7], "subgroup lanes", "{t}");
        let got: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[2], r[7])).collect();
        assert_eq!(
            got,
            [
                ("Google", "4"),
                ("Mesa", "8"),
                ("NVIDIA", "32"),
                ("AMD", "32-64"),
                ("Mesa", "no"),
                ("unknown (0xabcd)", "no"),
            ],
            "{t}"
        );
    }
}
