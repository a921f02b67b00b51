//! `widenet tune` and the autotune every GPU command runs at first use.

use std::sync::atomic::{AtomicBool, Ordering};
use widenet::error::{Error, Result};
use widenet::gpu::GpuBackend;
use widenet::gpu::tune::{self, Autotune, Tuned};

/// Cleared by `--no-autotune` or `WIDENET_NO_AUTOTUNE=1`.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the first-use autotune off for this process.
pub(crate) fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// Whether the autotune is off for this process (`--no-autotune` or
/// `WIDENET_NO_AUTOTUNE`).
pub(crate) fn disabled() -> bool {
    !ENABLED.load(Ordering::Relaxed) || env_disables()
}

/// Whether `WIDENET_NO_AUTOTUNE` asks to skip the autotune.
pub(crate) fn env_disables() -> bool {
    std::env::var("WIDENET_NO_AUTOTUNE").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Measure again even if a result for this adapter is cached.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn tune_with_progress(g: &GpuBackend, mode: Autotune, quiet: bool) -> Result<Tuned> {
    let mut bar: Option<indicatif::ProgressBar> = None;
    let path = super::gpu_options()
        .cache_dir
        .map(|d| d.join(tune::CACHE_NAME));
    tune::autotune(g, mode, path, |done, total| {
        let b = bar.get_or_insert_with(|| {
            if !quiet {
                eprintln!(
                    "tuning matrix products for {} (once per adapter and driver; --no-autotune skips it)",
                    widenet::Backend::info(g).name
                );
            }
            widenet::experiments::progress(quiet, total as u64, "autotune")
        });
        b.set_position(done as u64);
        if done == total {
            b.finish_and_clear();
        }
    })
}

/// The autotune at first use: the cached plan, or a short tune that is then
/// cached. A failure leaves the built-in plan and is reported, not fatal.
pub(crate) fn at_first_use(g: &GpuBackend) {
    if !ENABLED.load(Ordering::Relaxed) || env_disables() {
        return;
    }
    match tune_with_progress(g, Autotune::Cached, super::quiet()) {
        Ok(Tuned::Measured(e, path)) if !super::quiet() => {
            eprintln!(
                "  chosen: {}; the tune took {:.1} s{}",
                tune::describe(&e.plan),
                e.seconds,
                path.map(|p| format!(" (cached in {})", p.display()))
                    .unwrap_or_default()
            );
        }
        Ok(_) => {}
        Err(e) => log::warn!("autotune failed ({e}); the built-in kernel choice is used"),
    }
}

/// `widenet tune`.
pub fn run(args: &Args, device: Option<&str>) -> Result<()> {
    let choice = super::device_choice(device)?;
    let Some(g) = GpuBackend::open(&choice, &super::gpu_options())? else {
        return Err(Error::invalid(
            "the CPU backend has no kernels to tune; pick a GPU adapter with --device",
        ));
    };
    let mode = if args.force {
        Autotune::Force
    } else {
        Autotune::Cached
    };
    let (entry, source) = match tune_with_progress(&g, mode, args.json || super::quiet())? {
        Tuned::Forced => {
            return Err(Error::invalid(
                "WIDENET_MATMUL_KERNEL chooses the kernel; unset it to tune",
            ));
        }
        Tuned::Cached(e) => (e, "cached".to_string()),
        Tuned::Measured(e, Some(p)) => (e, format!("measured now, cached in {}", p.display())),
        Tuned::Measured(e, None) => (e, "measured now, not cached".to_string()),
    };
    if args.json {
        let out = serde_json::json!({
            "adapter": widenet::Backend::info(&g),
            "source": source,
            "cache": super::gpu_options().cache_dir.map(|d| d.join(tune::CACHE_NAME)).or_else(tune::cache_file),
            "tune": entry,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Error::invalid(e.to_string()))?
        );
        return Ok(());
    }
    println!("matrix-product autotune on {} ({source})", entry.adapter);
    println!(
        "  GFLOP/s of every configuration on each shape; a class takes the best geometric mean"
    );
    let f16_chosen = if entry.plan.f16_coop {
        widenet::gpu::MatmulConfig::default_for(widenet::gpu::MatmulKernel::Coop)
    } else {
        entry.plan.large
    };
    for (class, chosen, on) in [
        ("large", entry.plan.large, "large"),
        ("small", entry.plan.small, "small"),
        ("f16", f16_chosen, "large"),
    ] {
        if !entry.trials.iter().any(|t| t.class == class) {
            continue;
        }
        let shapes: Vec<(usize, usize, usize, usize)> = tune::SHAPES
            .iter()
            .filter(|s| s.0 == on)
            .map(|&(_, b, m, n, k)| (b, m, n, k))
            .collect();
        let heads: Vec<String> = shapes
            .iter()
            .map(|&(b, m, n, k)| {
                if b == 1 {
                    format!("{m}x{n}x{k}")
                } else {
                    format!("{b}x({m}x{n}x{k})")
                }
            })
            .collect();
        match class {
            "f16" => println!(
                "  f16 operands (cooperative-matrix tiles against the large class's choice):"
            ),
            _ => println!(
                "  {class} (m {} {}):",
                if class == "large" { ">=" } else { "<" },
                widenet::gpu::matmul::SMALL_M
            ),
        }
        println!(
            "    {:<8} {:>5} {:<8} {} {:>9}",
            "kernel",
            "WG_Y",
            "walk",
            heads.iter().map(|h| format!("{h:>18}")).collect::<String>(),
            "geo-mean"
        );
        let mut seen = Vec::new();
        for t in entry.trials.iter().filter(|t| t.class == class) {
            if seen.contains(&t.config) {
                continue;
            }
            seen.push(t.config);
            let cells: String = shapes
                .iter()
                .map(|&(b, m, n, k)| {
                    entry
                        .trials
                        .iter()
                        .find(|u| {
                            u.class == class
                                && u.config == t.config
                                && (u.batch, u.m, u.n, u.k) == (b, m, n, k)
                        })
                        .map_or(format!("{:>18}", "-"), |u| {
                            let bad = if u.rel_err > 1e-4 { " (wrong)" } else { "" };
                            format!("{:>18}", format!("{:.2}{bad}", u.gflops))
                        })
                })
                .collect();
            println!(
                "    {:<8} {:>5} {:<8} {cells} {:>9.2}{}",
                format!("{:?}", t.config.kernel).to_lowercase(),
                t.config.wg_y,
                if t.config.walk_m { "rows" } else { "columns" },
                tune::class_score(&entry.trials, class, &t.config).unwrap_or(0.0),
                if t.config == chosen {
                    "  <- chosen"
                } else {
                    ""
                }
            );
        }
    }
    println!(
        "  timing {}; the tune took {:.1} s",
        entry.timing, entry.seconds
    );
    println!("  plan: {}", tune::describe(&entry.plan));
    Ok(())
}
