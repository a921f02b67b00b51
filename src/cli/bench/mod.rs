//! `widenet bench`: kernel throughput with the adapter in every record.

mod hvp;
mod measure;
mod superposition;

use measure as bench;
use serde_json::json;
use widenet::Backend;
use widenet::arch::Arch;
use widenet::error::{Error, Result};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// The whole suite (copy bandwidth, matmul with fractions of the best rate, NTK, a training
    /// step) on one device, or on every adapter with `--device all`.
    All {
        /// Timed runs per measurement (after one warm-up).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Print every record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A full-batch training step of an ensemble against its matrix products alone, and
    /// batched members against one-member runs.
    Train(TrainArgs),
    /// The signal-propagation theory grid of `widenet chaos` over grid sizes and quadrature degrees.
    Chaos(super::chaos::BenchArgs),
    /// A Hessian-vector product of an ensemble's loss against a training step of the same
    /// ensemble, and a Lanczos step (product and reorthogonalization), timed in one run.
    Hvp(HvpArgs),
    /// The toy models of superposition (`widenet superposition`'s groups) as one batched run
    /// against a loop of one-member runs of the same steps.
    Superposition(SuperpositionArgs),
    /// End-to-end NTK of a set of random points with itself (f32); entries per second.
    Kernel(KernelArgs),
    /// f32 matrix products C = A * B of square sizes; GFLOP/s from the median of several runs.
    Matmul {
        /// Comma-separated sizes (m = n = k).
        #[arg(long, default_value = "256,512,1024,2048")]
        sizes: String,
        /// Timed runs per size (after one warm-up).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Operand storage: f32, or f16 (f32 sums; GPU adapters with SHADER_F16).
        #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
        dtype: String,
        /// Print {"adapter": {...}, "results": [...]} as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `bench train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Members of the ensemble.
    #[arg(long, default_value_t = 16)]
    ensemble: usize,
    /// The architecture (JSON file or inline, see `widenet kernel --help`); default: a ReLU MLP
    /// of --depth hidden layers of --width.
    #[arg(long)]
    arch: Option<String>,
    /// Hidden width of the default MLP.
    #[arg(long, default_value_t = 1024)]
    width: usize,
    /// Hidden layers of the default MLP.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Training points.
    #[arg(long, default_value_t = 512)]
    n: usize,
    /// Input dimension.
    #[arg(long, default_value_t = 64)]
    d: usize,
    /// Members of the batched-against-solo comparison (width --solo-width; 0 skips it).
    #[arg(long, default_value_t = 64)]
    solo_members: usize,
    /// Hidden width of the batched-against-solo comparison.
    #[arg(long, default_value_t = 256)]
    solo_width: usize,
    /// Steps of each whole run in the batched-against-solo comparison of whole runs
    /// (wall clock, setup and read-back included; 0 skips it).
    #[arg(long, default_value_t = 10)]
    run_steps: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print {"adapter": {...}, "results": [...]} as JSON.
    #[arg(long)]
    json: bool,
}

/// `bench hvp`.
#[derive(clap::Args, Debug)]
pub struct HvpArgs {
    /// Members of the ensemble.
    #[arg(long, default_value_t = 16)]
    ensemble: usize,
    /// The architecture (JSON file or inline, see `widenet kernel --help`); default: a ReLU MLP
    /// of --depth hidden layers of --width.
    #[arg(long)]
    arch: Option<String>,
    /// Hidden width of the default MLP.
    #[arg(long, default_value_t = 512)]
    width: usize,
    /// Hidden layers of the default MLP.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Training points.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Input dimension.
    #[arg(long, default_value_t = 64)]
    d: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print {"adapter": {...}, "results": [...]} as JSON.
    #[arg(long)]
    json: bool,
}

/// `bench superposition`.
#[derive(clap::Args, Debug)]
pub struct SuperpositionArgs {
    /// The members of `widenet superposition --quick` instead of the default sweep's.
    #[arg(long)]
    quick: bool,
    /// Compose the gradient from products and elementwise passes even where the backend
    /// fuses it (the CPU backend does), to measure what the fusion buys.
    #[arg(long)]
    composed: bool,
    /// Training steps timed per run.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print {"adapter": {...}, "results": [...]} as JSON.
    #[arg(long)]
    json: bool,
}

/// `bench kernel`.
#[derive(clap::Args, Debug)]
pub struct KernelArgs {
    /// Number of points.
    #[arg(long, default_value_t = 4000)]
    n: usize,
    /// Input dimension.
    #[arg(long, default_value_t = 64)]
    d: usize,
    /// The architecture (JSON file or inline); default: a ReLU MLP of --depth hidden layers.
    #[arg(long)]
    arch: Option<String>,
    /// Hidden layers of the default MLP.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print {"adapter": {...}, "results": [...]} as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `bench` subcommand.
pub fn run(cmd: BenchCommand, device: Option<&str>) -> Result<()> {
    match cmd {
        BenchCommand::All { runs, json } => run_all(runs, json, device),
        BenchCommand::Train(a) => run_train(&a, device),
        BenchCommand::Hvp(a) => run_hvp(&a, device),
        BenchCommand::Kernel(a) => run_kernel(&a, device),
        BenchCommand::Superposition(a) => run_superposition(&a, device),
        BenchCommand::Chaos(a) => super::chaos::bench(&a, device),
        BenchCommand::Matmul {
            sizes,
            runs,
            dtype,
            json,
        } => run_matmul(&sizes, runs, &dtype, json, device),
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::invalid(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Every adapter (and the CPU backend) for `--device all`, else the one device.
fn devices_for(device: Option<&str>) -> Result<Vec<Box<dyn Backend>>> {
    if !device.is_some_and(|d| d.eq_ignore_ascii_case("all")) {
        return Ok(vec![super::open_device(device)?]);
    }
    let mut v: Vec<Box<dyn Backend>> = Vec::new();
    for (_, info) in widenet::gpu::enumerate() {
        let choice = widenet::DeviceChoice::Gpu(Some(info.index));
        if let Some(g) = widenet::gpu::GpuBackend::open(&choice, &super::gpu_options())? {
            super::tune::at_first_use(&g);
            v.push(Box::new(g));
        }
    }
    v.push(Box::new(widenet::cpu::CpuBackend));
    Ok(v)
}

fn run_all(runs: usize, json: bool, device: Option<&str>) -> Result<()> {
    if runs == 0 {
        return Err(Error::invalid("--runs must be at least 1"));
    }
    let mut all = Vec::new();
    for b in devices_for(device)? {
        if !json {
            println!("{}", b.describe());
        }
        let r = bench::all(b.as_ref(), runs)?;
        if !json {
            print!("{}", bench::suite_table(&r));
        }
        all.extend(r);
    }
    if json {
        print_json(&json!(all))?;
    }
    Ok(())
}

/// The architecture of `--arch`, or the ReLU MLP of the shorthand.
fn arch_or_mlp(arch: &Option<String>, depth: usize, width: usize) -> Result<Arch> {
    match arch {
        Some(a) => super::kernel::read_arch(a),
        None => Ok(bench::relu_mlp(depth, width)),
    }
}

fn run_train(a: &TrainArgs, device: Option<&str>) -> Result<()> {
    if [a.ensemble, a.width, a.n, a.d, a.runs].contains(&0) {
        return Err(Error::invalid("every size and --runs must be at least 1"));
    }
    let arch = arch_or_mlp(&a.arch, a.depth, a.width)?;
    arch.output_width(a.d)?;
    let b = super::open_device(device)?;
    let r = bench::train_step(b.as_ref(), &arch, a.ensemble, a.n, a.d, a.runs)?;
    let solo = batched_against_solo(b.as_ref(), a)?;
    if a.json {
        let mut results = vec![json!(r)];
        results.extend(solo.iter().map(|s| s.json(a)));
        return print_json(&json!({"adapter": b.info(), "results": results}));
    }
    println!("training step on {}", b.describe());
    println!(
        "  E={} {} n={} d={}: {:.3} s per step ({:.2} steps/s), its matrix products alone {:.3} s: ratio {:.3}, {:.1}% outside matrix products",
        a.ensemble,
        arch,
        a.n,
        a.d,
        r.step_seconds,
        r.steps_per_second,
        r.matmul_seconds,
        r.step_over_matmul,
        100.0 * r.outside_matmul_share
    );
    for s in &solo {
        println!("  {}", s.line(a));
    }
    Ok(())
}

/// One batched-against-solo measurement of `bench train`.
enum Solo {
    /// One step of all members against one step of one member (device time).
    Step { batched: f64, solo: f64 },
    /// Whole runs, wall clock: one of all members against one per member.
    Runs { one: f64, each: f64 },
}

impl Solo {
    fn json(&self, a: &TrainArgs) -> serde_json::Value {
        let (m, w, depth, n, d) = (a.solo_members, a.solo_width, a.depth, a.n, a.d);
        match *self {
            Solo::Step { batched, solo } => json!({
                "op": "train_batched_vs_solo", "members": m, "width": w,
                "depth": depth, "n": n, "d": d, "batched_step_seconds": batched,
                "solo_step_seconds": solo, "speedup": solo * m as f64 / batched, "runs": a.runs,
                "timing": "device time per step (GPU timestamps where the adapter has them)"
            }),
            Solo::Runs { one, each } => json!({
                "op": "train_batched_vs_solo_runs", "members": m, "width": w,
                "depth": depth, "n": n, "d": d, "steps": a.run_steps, "batched_run_seconds": one,
                "solo_runs_seconds": each, "speedup": each / one,
                "timing": "wall clock of whole runs: upload, steps, parameters read back"
            }),
        }
    }

    fn line(&self, a: &TrainArgs) -> String {
        let (m, w) = (a.solo_members, a.solo_width);
        match *self {
            Solo::Step { batched, solo } => format!(
                "{m} members of width {w}: one batched step {batched:.4} s, one-member step {solo:.4} s ({m} of them {:.4} s): batched is {:.1}x faster",
                solo * m as f64,
                solo * m as f64 / batched
            ),
            Solo::Runs { one, each } => format!(
                "whole runs of {} steps, wall clock (upload, steps, parameters read back): one run of {m} members {one:.3} s, {m} one-member runs {each:.3} s: batched is {:.1}x faster",
                a.run_steps,
                each / one
            ),
        }
    }
}

fn batched_against_solo(b: &dyn Backend, a: &TrainArgs) -> Result<Vec<Solo>> {
    if a.solo_members == 0 {
        return Ok(Vec::new());
    }
    let arch = bench::relu_mlp(a.depth, a.solo_width);
    let (m, n, d, runs) = (a.solo_members, a.n, a.d, a.runs);
    let (batched, _) = bench::train_step_seconds(b, &arch, m, n, d, runs)?;
    let (solo, _) = bench::train_step_seconds(b, &arch, 1, n, d, runs)?;
    let mut out = vec![Solo::Step { batched, solo }];
    if a.run_steps > 0 {
        let one = bench::train_runs_seconds(b, &arch, m, n, d, a.run_steps, 1)?;
        let each = bench::train_runs_seconds(b, &arch, 1, n, d, a.run_steps, m)?;
        out.push(Solo::Runs { one, each });
    }
    Ok(out)
}

fn run_hvp(a: &HvpArgs, device: Option<&str>) -> Result<()> {
    if [a.ensemble, a.width, a.n, a.d, a.runs].contains(&0) {
        return Err(Error::invalid("every size and --runs must be at least 1"));
    }
    let arch = arch_or_mlp(&a.arch, a.depth, a.width)?;
    arch.output_width(a.d)?;
    let b = super::open_device(device)?;
    let r = hvp::hvp(b.as_ref(), &arch, a.ensemble, a.n, a.d, a.runs)?;
    if a.json {
        return print_json(&json!({"adapter": b.info(), "results": [r]}));
    }
    println!("Hessian-vector products on {}", b.describe());
    println!(
        "  E={} {} n={} d={} (median of {} runs, {:?}): training step {:.4} s; product {:.4} s ({:.2}x the step); \
         product from scratch {:.4} s ({:.2}x); Lanczos step {:.4} s ({:.2}x)",
        a.ensemble,
        arch,
        a.n,
        a.d,
        a.runs,
        r.timing,
        r.step_seconds,
        r.hvp_seconds,
        r.hvp_over_step,
        r.hvp_from_scratch_seconds,
        r.hvp_from_scratch_over_step,
        r.lanczos_step_seconds,
        r.lanczos_step_over_step
    );
    Ok(())
}

fn run_superposition(a: &SuperpositionArgs, device: Option<&str>) -> Result<()> {
    if a.steps == 0 || a.runs == 0 {
        return Err(Error::invalid("--steps and --runs must be at least 1"));
    }
    let cfg = if a.quick {
        widenet::experiments::superposition::SuperpositionConfig::quick()
    } else {
        Default::default()
    };
    let b = super::open_device(device)?;
    let r = superposition::superposition(b.as_ref(), &cfg, a.steps, a.runs, !a.composed)?;
    if a.json {
        return print_json(&json!({"adapter": b.info(), "results": [r]}));
    }
    println!(
        "toy models of superposition{}, {} steps (median of {} runs, wall clock), on {}",
        if a.composed {
            " (gradient composed)"
        } else {
            ""
        },
        a.steps,
        a.runs,
        b.describe()
    );
    for g in &r.groups {
        println!(
            "  {:<6} {:>4} members of {} features in {} dimensions, batch {}: batched {:.3} s, one-member loop {:.3} s: {:.1}x",
            g.group,
            g.members,
            g.features,
            g.hidden,
            g.batch,
            g.batched_seconds,
            g.solo_loop_seconds,
            g.solo_loop_seconds / g.batched_seconds.max(1e-12)
        );
    }
    println!(
        "  all groups: {:.0} member-steps/s batched against {:.0} in a loop of one-member runs: batched is {:.1}x faster",
        r.batched_member_steps_per_second, r.solo_member_steps_per_second, r.speedup
    );
    Ok(())
}

fn run_kernel(a: &KernelArgs, device: Option<&str>) -> Result<()> {
    if a.n == 0 || a.d == 0 || a.runs == 0 {
        return Err(Error::invalid("--n, --d and --runs must be at least 1"));
    }
    let arch = arch_or_mlp(&a.arch, a.depth, 512)?;
    arch.output_width(a.d)?;
    let b = super::open_device(device)?;
    let r = bench::ntk(b.as_ref(), &arch, a.n, a.d, a.runs)?;
    if a.json {
        return print_json(&json!({"adapter": b.info(), "arch": arch, "results": [r]}));
    }
    println!(
        "NTK of {arch}, {} points of dimension {}, f32, on {}",
        a.n,
        a.d,
        b.describe()
    );
    println!(
        "  {:.1} million entries per second (median of {} runs: {:.1} ms, end to end: Gram, recursion, result in host memory)",
        r.entries_per_second.unwrap_or(0.0) / 1e6,
        a.runs,
        r.seconds * 1e3
    );
    Ok(())
}

fn run_matmul(
    sizes: &str,
    runs: usize,
    dtype: &str,
    json: bool,
    device: Option<&str>,
) -> Result<()> {
    let sizes = super::parse_list("--sizes", sizes)?;
    if runs == 0 {
        return Err(Error::invalid("--runs must be at least 1"));
    }
    let half = dtype == "f16";
    let b: Box<dyn Backend> = if half {
        let g = super::open_gpu(device)?;
        if !g.has_f16() {
            return Err(Error::invalid(format!(
                "--dtype f16: {} has no SHADER_F16",
                g.describe()
            )));
        }
        Box::new(g)
    } else {
        super::open_device(device)?
    };
    let mut results = Vec::new();
    if !json {
        println!("matmul {dtype} on {}", b.describe());
        println!(
            "{:>6} {:>10} {:>12}  timing",
            "size", "GFLOP/s", "median ms"
        );
    }
    for s in sizes {
        let r = if half {
            bench::matmul_f16(b.as_ref(), s, s, s, runs)?
        } else {
            bench::matmul(b.as_ref(), s, s, s, runs)?
        };
        if !json {
            println!(
                "{:>6} {:>10.2} {:>12.3}  {:?}",
                s,
                r.gflops.unwrap_or(0.0),
                r.seconds * 1e3,
                r.timing
            );
        }
        results.push(r);
    }
    if json {
        print_json(&json!({"adapter": b.info(), "results": results}))?;
    }
    Ok(())
}
