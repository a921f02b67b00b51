//! `widenet chaos` and `widenet bench chaos`: the edge of chaos.

use std::path::{Path, PathBuf};
use widenet::chaos::{Axis, theory_grid};
use widenet::error::{Error, Result};
use widenet::experiments::OutDir;
use widenet::experiments::chaos::{ChaosConfig, run, trainability::Task};
use widenet::matrix::Matrix;
use widenet::npy;

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet chaos                           tanh, the default 128 x 128 grid and every finite-network part\n  widenet chaos --quick                   a small run (under a minute on a CPU)\n  widenet chaos --activation relu --sw2 0.5:4:64 --sb2 0:0.5:64\n  widenet chaos --quick --x x.npy --y labels.npy   trainability on your data (labels 0..K-1)\n\n\
The infinite-width signal-propagation theory (Poole et al. 2016; Schoenholz et al. 2017) on a grid\n\
of (sigma_w^2, sigma_b^2), on the device: q*, c*, chi_1, the depth scales xi_q and xi_c, and the\n\
critical line chi_1 = 1. Then finite deep MLPs against it: q_l and c_l of two inputs through depth\n\
at several widths against the iterated maps, the gradient reaching each layer against chi_1^l, and\n\
a trainability map over sigma_w^2 and depth with the curve 6 xi_c. Writes report.json, report.md\n\
and figures (SVG and PNG) to --out."
)]
pub struct ChaosArgs {
    /// TOML settings (keys as in report.json's config), or a report.json to rerun its
    /// configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Small preset (under a minute on a CPU).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs (wider networks, more seeds, longer training).
    #[arg(long)]
    pub large: bool,
    /// The activation (any of `widenet kernel --activation`: relu, erf, tanh, gelu, ...).
    #[arg(long)]
    pub activation: Option<String>,
    /// The sigma_w^2 axis of the theory grid, LO:HI:N.
    #[arg(long)]
    pub sw2: Option<String>,
    /// The sigma_b^2 axis of the theory grid, LO:HI:N.
    #[arg(long)]
    pub sb2: Option<String>,
    /// Gauss-Hermite nodes for activations without a closed form.
    #[arg(long)]
    pub degree: Option<usize>,
    /// Quadrature even where a closed form exists.
    #[arg(long)]
    pub quadrature: bool,
    /// Hidden layers of the signal-propagation networks.
    #[arg(long)]
    pub prop_depth: Option<usize>,
    /// Comma-separated widths of the signal-propagation networks.
    #[arg(long)]
    pub widths: Option<String>,
    /// Networks per point and width.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// The sigma_w^2 axis of the trainability map, LO:HI:N.
    #[arg(long)]
    pub train_sw2: Option<String>,
    /// Comma-separated depths (hidden layers) of the trainability map.
    #[arg(long)]
    pub depths: Option<String>,
    /// Hidden width of the trained networks.
    #[arg(long)]
    pub train_width: Option<usize>,
    /// SGD steps per network.
    #[arg(long)]
    pub steps: Option<usize>,
    /// SGD learning rate.
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    /// Inputs of a classification task for the trainability map (.npy, n x d).
    #[arg(long, requires = "y")]
    pub x: Option<PathBuf>,
    /// Its labels (.npy, n values 0..K-1).
    #[arg(long, requires = "x")]
    pub y: Option<PathBuf>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue an interrupted run in --out without recomputing its finished parts.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Output folder: report.json, report.md, figures, points/ (default runs/COMMAND-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn axis(flag: &str, s: &str) -> Result<Axis> {
    Axis::parse(s).map_err(|e| match e {
        Error::Invalid(m) => Error::invalid(format!("{flag}: {m}")),
        e => e,
    })
}

/// The task of `--x` and `--y`: labels as integers, classes counted.
fn user_task(x: &Path, y: &Path) -> Result<Task> {
    let xm = npy::read_matrix(x, "--x")?.to_f32();
    let ym = npy::read_targets(y, "--y")?.to_f32();
    if ym.rows() * ym.cols() != xm.rows() {
        return Err(Error::invalid(format!(
            "--y needs one label per row of --x ({} rows), got {} x {}",
            xm.rows(),
            ym.rows(),
            ym.cols()
        )));
    }
    let labels = ym.into_data();
    let classes = labels.iter().fold(0.0f32, |m, v| m.max(*v)) as usize + 1;
    let task = Task {
        x: Matrix::from_vec(xm.rows(), xm.cols(), xm.data().to_vec())?,
        y: Matrix::from_vec(labels.len(), 1, labels)?,
        classes,
    };
    task.validate()
        .map_err(|e| Error::invalid(format!("--y: {e}")))?;
    Ok(task)
}

/// `widenet chaos`.
pub fn run_chaos(a: &ChaosArgs, device: Option<&str>) -> Result<()> {
    let mut c: ChaosConfig = super::experiments::base_config(&a.config, a.quick, a.large)?;
    if let Some(s) = &a.activation {
        c.activation = s.clone();
    }
    if let Some(s) = &a.sw2 {
        c.sw2 = axis("--sw2", s)?;
    }
    if let Some(s) = &a.sb2 {
        c.sb2 = axis("--sb2", s)?;
    }
    if let Some(s) = &a.train_sw2 {
        c.train_sw2 = axis("--train-sw2", s)?;
    }
    if let Some(s) = &a.widths {
        c.widths = super::parse_list("--widths", s)?;
    }
    if let Some(s) = &a.depths {
        c.depths = super::parse_list("--depths", s)?;
    }
    if a.quadrature {
        c.quadrature = true;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    over!(degree, prop_depth, seeds, train_width, steps, lr, seed);
    c.validate()?;
    let task = match (&a.x, &a.y) {
        (Some(x), Some(y)) => Some(user_task(x, y)?),
        _ => None,
    };
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "chaos")?;
    run(
        dev.as_ref(),
        &c,
        task.as_ref(),
        &out,
        a.resume,
        super::quiet(),
    )?;
    super::experiments::show(&out, super::quiet());
    Ok(())
}

/// `widenet bench chaos`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The activation.
    #[arg(long, default_value = "tanh")]
    activation: String,
    /// Comma-separated grid sizes (N x N points).
    #[arg(long, default_value = "32,64,128,256")]
    sizes: String,
    /// Comma-separated Gauss-Hermite degrees.
    #[arg(long, default_value = "40,80,120")]
    degrees: String,
    /// Timed runs per size (after one warm-up); the minimum is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Times the theory grid (q*, c*, chi_1, xi_q, xi_c) over sizes and degrees.
pub fn bench(a: &BenchArgs, device: Option<&str>) -> Result<()> {
    let act = widenet::activation::Activation::parse(&a.activation)?;
    let sizes = super::parse_list("--sizes", &a.sizes)?;
    let degrees = super::parse_list("--degrees", &a.degrees)?;
    let dev = super::open_device(device)?;
    println!("device: {}", dev.describe());
    println!(
        "{:>6} {:>7} {:>10} {:>14}",
        "grid", "degree", "seconds", "points/s"
    );
    for &d in &degrees {
        for &n in &sizes {
            let sw2 = Axis {
                lo: 0.5,
                hi: 4.0,
                n,
            };
            let sb2 = Axis {
                lo: 0.0,
                hi: 0.5,
                n,
            };
            theory_grid(dev.as_ref(), act, false, d, &sw2, &sb2)?;
            let mut best = f64::INFINITY;
            for _ in 0..a.runs.max(1) {
                let t = std::time::Instant::now();
                theory_grid(dev.as_ref(), act, false, d, &sw2, &sb2)?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{:>6} {d:>7} {best:>10.4} {:>14.0}",
                format!("{n}x{n}"),
                (n * n) as f64 / best
            );
        }
    }
    Ok(())
}
