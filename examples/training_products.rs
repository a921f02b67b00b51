//! Times each matrix product of one training step of an ensemble (64 members
//! of width 256, depth 3, 64 points of dimension 8 by default) on the chosen
//! device, with the autotuned plan: where a step's time goes.
//!
//! `cargo run --release --example training_products [-- MEMBERS WIDTH POINTS DIM]`

use widenet::backend::{Backend, Matmul};

fn main() -> widenet::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (e, w, n, d) = (arg(0, 64), arg(1, 256), arg(2, 64), arg(3, 8));
    let mut opts = widenet::GpuOptions::default();
    opts.autotune = false;
    let Some(g) = widenet::gpu::GpuBackend::open(&widenet::DeviceChoice::Gpu(None), &opts)? else {
        eprintln!("no GPU adapter: nothing to time");
        return Ok(());
    };
    let tuned =
        widenet::gpu::tune::autotune(&g, widenet::gpu::tune::Autotune::Cached, None, |_, _| {})?;
    println!("{}", g.describe());
    println!(
        "plan: {} ({})",
        widenet::gpu::tune::describe(&g.matmul_plan()),
        match tuned {
            widenet::gpu::tune::Tuned::Cached(_) => "cached",
            widenet::gpu::tune::Tuned::Measured(..) => "measured now",
            widenet::gpu::tune::Tuned::Forced => "forced",
        }
    );
    // The products of a step of a depth-3 MLP d -> w -> w -> w -> 1, as
    // src/net/ensemble.rs issues them: forward (NT), weight gradients (TN),
    // input gradients (NN).
    let products = [
        (
            "forward, first layer (NT)",
            Matmul::new(n, w, d)
                .trans(false, true)
                .broadcast(true, false),
        ),
        (
            "forward, hidden layer (NT)",
            Matmul::new(n, w, w).trans(false, true),
        ),
        (
            "forward, readout (NT, thin)",
            Matmul::new(n, 1, w).trans(false, true),
        ),
        (
            "weight gradient, first layer (TN)",
            Matmul::new(w, d, n)
                .trans(true, false)
                .broadcast(false, true),
        ),
        (
            "weight gradient, hidden layer (TN)",
            Matmul::new(w, w, n).trans(true, false),
        ),
        (
            "weight gradient, readout (TN, thin)",
            Matmul::new(1, w, n).trans(true, false),
        ),
        ("input gradient, hidden layer (NN)", Matmul::new(n, w, w)),
        ("input gradient, readout (NN)", Matmul::new(n, w, 1)),
    ];
    let mut rng = widenet::rng::Rng::new(1);
    println!("{e} members, width {w}, {n} points of dimension {d}; median of 5 runs");
    for (name, spec) in products {
        let spec = spec.batch(e);
        let a = g.upload(&rng.normals_f32(spec.a_len()))?;
        let b = g.upload(&rng.normals_f32(spec.b_len()))?;
        let mut c = g.zeros(spec.c_len())?;
        let (t, how) = median_time(&g, 5, &mut || g.matmul(&spec, &a, &b, &mut c))?;
        let flops = 2.0 * (spec.batch * spec.m * spec.n * spec.k) as f64;
        println!(
            "  {name:<38} {:>9.3} ms {:>7.1} GFLOP/s  ({how:?})",
            t * 1e3,
            flops / t * 1e-9
        );
    }
    Ok(())
}

/// The median of `runs` timings of `f` after a warm-up, on the device's clock where it has one.
fn median_time(
    g: &dyn Backend,
    runs: usize,
    f: &mut dyn FnMut() -> widenet::Result<()>,
) -> widenet::Result<(f64, widenet::backend::Timing)> {
    g.time(f)?;
    let mut times = Vec::new();
    let mut how = widenet::backend::Timing::Wall;
    for _ in 0..runs {
        let (t, h) = g.time(f)?;
        times.push(t);
        how = h;
    }
    Ok((widenet::stats::median(times), how))
}
