//! `widenet bench`: kernel throughput with the adapter in every record.

use crate::Backend;
use crate::bench;
use crate::error::{Error, Result};
use serde_json::json;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// The whole suite (copy bandwidth, matmul with fractions of the best rate, NTK, a training
    /// step) on one device, or on every adapter with `--device all`.
    All {
        /// Timed runs per measurement (after one warm-up).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
    /// A full-batch training step of an ensemble against its matrix products alone, and
    /// batched members against one-member runs.
    Train {
        #[arg(long, default_value_t = 16)]
        ensemble: usize,
        #[arg(long, default_value_t = 1024)]
        width: usize,
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Training points.
        #[arg(long, default_value_t = 512)]
        n: usize,
        /// Input dimension.
        #[arg(long, default_value_t = 64)]
        d: usize,
        /// Members of the batched-against-solo comparison (width --solo-width).
        #[arg(long, default_value_t = 64)]
        solo_members: usize,
        #[arg(long, default_value_t = 256)]
        solo_width: usize,
        /// Steps of each whole run in the batched-against-solo comparison of whole runs
        /// (wall clock, setup and read-back included; 0 skips it).
        #[arg(long, default_value_t = 10)]
        run_steps: usize,
        /// Timed runs (after one warm-up).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
    /// End-to-end NTK of a set of random points with itself (ReLU, f32); entries per second.
    Kernel {
        /// Number of points.
        #[arg(long, default_value_t = 4000)]
        n: usize,
        /// Input dimension.
        #[arg(long, default_value_t = 64)]
        d: usize,
        /// Hidden layers.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Timed runs (after one warm-up).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Print {"adapter": {...}, "results": [...]} as JSON.
        #[arg(long)]
        json: bool,
    },
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

pub fn run(cmd: BenchCommand, device: Option<&str>) -> Result<()> {
    match cmd {
        BenchCommand::All { runs, json } => {
            if runs == 0 {
                return Err(Error::invalid("--runs must be at least 1"));
            }
            let devices: Vec<Box<dyn crate::Backend>> =
                if device.is_some_and(|d| d.eq_ignore_ascii_case("all")) {
                    let mut v: Vec<Box<dyn crate::Backend>> = Vec::new();
                    for (a, info) in crate::gpu::enumerate() {
                        let g = crate::gpu::GpuBackend::from_context(crate::gpu::GpuContext::new(
                            &a, info,
                        )?);
                        super::tune::at_first_use(&g);
                        v.push(Box::new(g));
                    }
                    v.push(Box::new(crate::cpu::CpuBackend));
                    v
                } else {
                    vec![super::open_device(device)?]
                };
            let mut all = Vec::new();
            for b in &devices {
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
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all)
                        .map_err(|e| Error::invalid(e.to_string()))?
                );
            }
            Ok(())
        }
        BenchCommand::Train {
            ensemble,
            width,
            depth,
            n,
            d,
            solo_members,
            solo_width,
            run_steps,
            runs,
            json,
        } => {
            if [ensemble, width, n, d, solo_members, solo_width, runs].contains(&0) {
                return Err(Error::invalid("every size and --runs must be at least 1"));
            }
            let b = super::open_device(device)?;
            let r = bench::train_step(b.as_ref(), ensemble, width, depth, n, d, runs)?;
            let (batched, _) =
                bench::train_step_seconds(b.as_ref(), solo_members, solo_width, depth, n, d, runs)?;
            let (solo, _) =
                bench::train_step_seconds(b.as_ref(), 1, solo_width, depth, n, d, runs)?;
            let speedup = solo * solo_members as f64 / batched;
            // Whole runs, wall clock: one of all members against one per member.
            let whole = if run_steps > 0 {
                let one = bench::train_runs_seconds(
                    b.as_ref(),
                    solo_members,
                    solo_width,
                    depth,
                    n,
                    d,
                    run_steps,
                    1,
                )?;
                let each = bench::train_runs_seconds(
                    b.as_ref(),
                    1,
                    solo_width,
                    depth,
                    n,
                    d,
                    run_steps,
                    solo_members,
                )?;
                Some((one, each))
            } else {
                None
            };
            if json {
                let mut results = vec![
                    json!(r),
                    json!({
                        "op": "train_batched_vs_solo", "members": solo_members, "width": solo_width,
                        "depth": depth, "n": n, "d": d, "batched_step_seconds": batched,
                        "solo_step_seconds": solo, "speedup": speedup, "runs": runs,
                        "timing": "device time per step (GPU timestamps where the adapter has them)"
                    }),
                ];
                if let Some((one, each)) = whole {
                    results.push(json!({
                        "op": "train_batched_vs_solo_runs", "members": solo_members, "width": solo_width,
                        "depth": depth, "n": n, "d": d, "steps": run_steps, "batched_run_seconds": one,
                        "solo_runs_seconds": each, "speedup": each / one,
                        "timing": "wall clock of whole runs: upload, steps, parameters read back"
                    }));
                }
                let out = json!({"adapter": b.info(), "results": results});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::invalid(e.to_string()))?
                );
            } else {
                println!("training step on {}", b.describe());
                println!(
                    "  E={ensemble} width={width} depth={depth} n={n} d={d}: {:.3} s per step ({:.2} steps/s), its matrix products alone {:.3} s: ratio {:.3}, {:.1}% outside matrix products",
                    r.step_seconds,
                    r.steps_per_second,
                    r.matmul_seconds,
                    r.step_over_matmul,
                    100.0 * r.outside_matmul_share
                );
                println!(
                    "  {solo_members} members of width {solo_width}: one batched step {:.4} s, one-member step {:.4} s ({solo_members} of them {:.4} s): batched is {speedup:.1}x faster",
                    batched,
                    solo,
                    solo * solo_members as f64
                );
                if let Some((one, each)) = whole {
                    println!(
                        "  whole runs of {run_steps} steps, wall clock (upload, steps, parameters read back): one run of {solo_members} members {one:.3} s, {solo_members} one-member runs {each:.3} s: batched is {:.1}x faster",
                        each / one
                    );
                }
            }
            Ok(())
        }
        BenchCommand::Kernel {
            n,
            d,
            depth,
            runs,
            json,
        } => {
            if n == 0 || d == 0 || runs == 0 {
                return Err(Error::invalid("--n, --d and --runs must be at least 1"));
            }
            let b = super::open_device(device)?;
            let r = bench::ntk(b.as_ref(), n, d, depth, runs)?;
            if json {
                let out = json!({"adapter": b.info(), "results": [r]});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::invalid(e.to_string()))?
                );
            } else {
                println!(
                    "NTK of a depth-{depth} ReLU network, {n} points of dimension {d}, f32, on {}",
                    b.describe()
                );
                println!(
                    "  {:.1} million entries per second (median of {runs} runs: {:.1} ms, end to end: Gram, recursion, result in host memory)",
                    r.entries_per_second.unwrap_or(0.0) / 1e6,
                    r.seconds * 1e3
                );
            }
            Ok(())
        }
        BenchCommand::Matmul {
            sizes,
            runs,
            dtype,
            json,
        } => {
            let sizes = super::parse_list("--sizes", &sizes)?;
            if runs == 0 {
                return Err(Error::invalid("--runs must be at least 1"));
            }
            let half = dtype == "f16";
            let gpu = if half {
                let g = super::open_gpu(device)?;
                if !g.has_f16() {
                    return Err(Error::invalid(format!(
                        "--dtype f16: {} has no SHADER_F16",
                        g.describe()
                    )));
                }
                Some(g)
            } else {
                None
            };
            let b: Box<dyn crate::Backend> = match gpu {
                Some(g) => Box::new(g),
                None => super::open_device(device)?,
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
                let out = json!({"adapter": b.info(), "results": results});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out)
                        .map_err(|e| Error::invalid(e.to_string()))?
                );
            }
            Ok(())
        }
    }
}
