//! `widenet compare` (the default job) and the other experiments.

use std::path::{Path, PathBuf};
use widenet::error::{Error, Result};
use widenet::experiments::OutDir;
use widenet::experiments::compare::{self, CompareConfig};
use widenet::experiments::data::{Split, teacher};
use widenet::npy;

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet compare                      defaults: widths 64..2048, 16 seeds (about a minute on a CPU)\n  widenet compare --quick              a small run\n  widenet compare --large              for real GPUs\n  widenet compare --widths 128,512,2048 --seeds 32 --depth 2 --out runs/mine\n  widenet compare --x x.npy --y y.npy --n-train 200\n\n\
Trains an ensemble at every width by full-batch gradient descent (ntk parameterization) and compares\n\
it with the infinite-width NTK prediction at the same time t = lr * steps: kernel at initialization,\n\
deviation from the linearized dynamics, kernel movement, ensemble mean and spread, loss curves, and\n\
the fitted slopes in width against theory (-1/2 for kernel fluctuations, -1 for the kernel's\n\
movement), the ensemble-mean error against its Monte Carlo floor. Writes report.json, report.md and figures to --out."
)]
pub struct CompareArgs {
    /// TOML settings (keys as the flags, e.g. widths = [64, 256], seeds = 8), or a
    /// report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Small preset (seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs.
    #[arg(long)]
    pub large: bool,
    /// Comma-separated widths.
    #[arg(long)]
    pub widths: Option<String>,
    /// Members (seeds) per width.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// The architecture (JSON file, or the layers inline; see `widenet kernel --help`); every
    /// hidden Dense layer is set to each width of the sweep. Replaces --depth and --activation.
    #[arg(long)]
    pub arch: Option<String>,
    /// Hidden layers of the MLP (Dense(width), activation) before the readout.
    #[arg(long)]
    pub depth: Option<usize>,
    #[arg(long, help = super::ACTIVATION_HELP)]
    pub activation: Option<String>,
    /// Weight standard deviation sigma_w of every Dense layer (neural-tangents' W_std).
    #[arg(long)]
    pub w_std: Option<f64>,
    /// Bias standard deviation sigma_b of every Dense layer (neural-tangents' b_std; 0: no bias).
    #[arg(long)]
    pub b_std: Option<f64>,
    /// Training steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate (default: n_train / largest eigenvalue of the train NTK).
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    /// Training points of the synthetic task.
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Test points of the synthetic task.
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Input dimension of the synthetic task.
    #[arg(long)]
    pub d_in: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Inputs from a file instead of the synthetic task (first --n-train rows train, the rest test).
    #[arg(long, requires = "y")]
    pub x: Option<PathBuf>,
    /// Targets .npy: n x d_out, or n values for one output (with --x; replaces the synthetic task).
    #[arg(long, requires = "x")]
    pub y: Option<PathBuf>,
    /// Output folder (default runs/compare-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out: widths already finished there are not recomputed.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl CompareArgs {
    pub fn config(&self) -> Result<CompareConfig> {
        let mut c: CompareConfig = base_config(&self.config, self.quick, self.large)?;
        if let Some(w) = &self.widths {
            c.widths = super::parse_list("--widths", w)?;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        over!(
            seeds, depth, activation, w_std, b_std, steps, n_train, n_test, d_in, seed
        );
        if let Some(a) = &self.arch {
            c.arch = Some(super::kernel::read_arch(a)?);
        }
        if self.lr.is_some() {
            c.lr = self.lr;
        }
        c.validate()?;
        Ok(c)
    }
}

fn file_split(x: &Path, y: &Path, n_train: usize) -> Result<Split> {
    let xm = npy::read_matrix(x, "--x")?.to_f32();
    let ym = npy::read_targets(y, "--y")?.to_f32();
    if ym.rows() != xm.rows() {
        return Err(Error::shape(
            "compare",
            format!("--y has {} rows but --x has {}", ym.rows(), xm.rows()),
        ));
    }
    if n_train >= xm.rows() {
        return Err(Error::invalid(format!(
            "--n-train ({n_train}) must leave test points among the {} rows",
            xm.rows()
        )));
    }
    let take = |m: &widenet::matrix::Matrix<f32>, a: usize, b: usize| {
        widenet::matrix::Matrix::from_vec(
            b - a,
            m.cols(),
            m.data()[a * m.cols()..b * m.cols()].to_vec(),
        )
    };
    Ok(Split {
        x_train: take(&xm, 0, n_train)?,
        y_train: take(&ym, 0, n_train)?,
        x_test: take(&xm, n_train, xm.rows())?,
        y_test: take(&ym, n_train, xm.rows())?,
    })
}

pub fn run_compare(a: &CompareArgs, device: Option<&str>) -> Result<()> {
    let cfg = a.config()?;
    let data = match (&a.x, &a.y) {
        (Some(x), Some(y)) => file_split(x, y, cfg.n_train)?,
        _ => teacher(cfg.d_in, cfg.n_train, cfg.n_test, cfg.seed),
    };
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "compare")?;
    if !super::quiet() {
        eprintln!(
            "widenet compare on {}: widths {:?}, {} seeds; writing {}",
            dev.describe(),
            cfg.widths,
            cfg.seeds,
            out.path.display()
        );
    }
    compare::run(dev.as_ref(), &cfg, &data, &out, super::quiet(), a.resume)?;
    show(&out, super::quiet());
    Ok(())
}

pub(super) fn parse_floats(flag: &str, s: &str) -> Result<Vec<f64>> {
    s.split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            Error::invalid(format!(
                "{flag}: expected comma-separated numbers, got '{s}'"
            ))
        })
}

/// Settings from a TOML file, or from a run's `report.json` (its `config`
/// object), so that every report reproduces its run.
fn toml_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| widenet::Error::io(path, "read", e))?;
    if path.extension().is_some_and(|e| e == "json") {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("invalid JSON: {e}")))?;
        let cfg = v.get("config").cloned().unwrap_or(v);
        return serde_json::from_value(cfg)
            .map_err(|e| Error::file(path, format!("invalid config: {e}")));
    }
    toml::from_str(&text).map_err(|e| Error::file(path, format!("invalid config: {e}")))
}

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet deep-linear\n  widenet deep-linear --layers 2 --singular-values 4,2,1 --u0 1e-4 --tau 200 --steps 6000\n\n\
Deep linear networks (2 and 3 weight layers by default) learn the singular modes of their task one\n\
by one, in order of singular value (Saxe, McClelland and Ganguli 2014). The report gives each mode's\n\
strength over training against the exact solutions and the largest deviation."
)]
pub struct DeepLinearArgs {
    /// TOML settings (keys as the flags), or a report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Large preset for real GPUs.
    #[arg(long, conflicts_with = "quick")]
    pub large: bool,
    /// Small preset (seconds), for a first look and for tests; its numbers are noisy.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated numbers of weight layers.
    #[arg(long)]
    pub layers: Option<String>,
    /// Comma-separated singular values of the task.
    #[arg(long)]
    pub singular_values: Option<String>,
    /// Width of the hidden layers.
    #[arg(long)]
    pub width: Option<usize>,
    /// Members (seeds) per point of the sweep.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Initial strength of every mode.
    #[arg(long)]
    pub u0: Option<f64>,
    /// Time constant in steps (sets the learning rate).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Training steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Read the modes every this many steps.
    #[arg(long)]
    pub every: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder: report.json, report.md, figures, points/ (default runs/COMMAND-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_deep_linear(a: &DeepLinearArgs, device: Option<&str>) -> Result<()> {
    use widenet::experiments::deep_linear::{DeepLinearConfig, run};
    let mut c: DeepLinearConfig = base_config(&a.config, a.quick, a.large)?;
    if let Some(l) = &a.layers {
        c.layers = super::parse_list("--layers", l)?;
    }
    if let Some(s) = &a.singular_values {
        c.singular_values = parse_floats("--singular-values", s)?;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    over!(width, seeds, u0, tau, steps, every, seed);
    c.validate()?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "deep-linear")?;
    run(dev.as_ref(), &c, &out, super::quiet())?;
    show(&out, super::quiet());
    Ok(())
}

#[derive(clap::Args, Debug, Default)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  widenet mutransfer\n  widenet mutransfer --widths 128,256,512,1024 --sgd-log2-lrs=-8,-6,-4,-2,0,2 --steps 200\n\n\
Sweeps the learning rate at every width under the standard parameterization and muP (base width:\n\
the smallest width, whatever the order of --widths), with SGD and Adam, and reports the best learning\n\
rate per width and its shift per doubling of the width (theory: -1 under SP, 0 under muP). Where a\n\
best rate falls on the edge of its grid, that width's grid is widened by two grid steps on that side\n\
and rerun, up to --widen times (default 2); a best rate still on the edge is flagged in report.json\n\
and report.md. Diverged runs are recorded as diverged and marked in the figures."
)]
pub struct MuTransferArgs {
    /// Continue an interrupted sweep in --out without recomputing its finished points.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// TOML settings (keys as the flags), or a report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Large preset for real GPUs.
    #[arg(long, conflicts_with = "quick")]
    pub large: bool,
    /// Small preset (seconds), for a first look and for tests; its numbers are noisy.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated widths of the sweep.
    #[arg(long)]
    pub widths: Option<String>,
    /// Comma-separated log2 learning rates for SGD.
    #[arg(long)]
    pub sgd_log2_lrs: Option<String>,
    /// Comma-separated log2 learning rates for Adam.
    #[arg(long)]
    pub adam_log2_lrs: Option<String>,
    /// Members (seeds) per point of the sweep.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Times a width's grid is widened (two grid steps on that side) while its best rate lies on
    /// the grid's edge (default 2; 0: never).
    #[arg(long)]
    pub widen: Option<usize>,
    /// The architecture (JSON file, or the layers inline; see `widenet kernel --help`); every
    /// hidden Dense layer is set to each width of the sweep. Replaces --depth and --activation.
    #[arg(long)]
    pub arch: Option<String>,
    /// Hidden layers of the MLP (Dense(width), activation) before the readout.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Training steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder: report.json, report.md, figures, points/ (default runs/COMMAND-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_mutransfer(a: &MuTransferArgs, device: Option<&str>) -> Result<()> {
    use widenet::experiments::mutransfer::{MuTransferConfig, run};
    let mut c: MuTransferConfig = base_config(&a.config, a.quick, a.large)?;
    if let Some(w) = &a.widths {
        c.widths = super::parse_list("--widths", w)?;
    }
    if let Some(s) = &a.sgd_log2_lrs {
        c.sgd_log2_lrs = parse_floats("--sgd-log2-lrs", s)?;
    }
    if let Some(s) = &a.adam_log2_lrs {
        c.adam_log2_lrs = parse_floats("--adam-log2-lrs", s)?;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    over!(seeds, depth, steps, seed, widen);
    if let Some(arch) = &a.arch {
        c.arch = Some(super::kernel::read_arch(arch)?);
    }
    c.validate()?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "mutransfer")?;
    run(dev.as_ref(), &c, &out, super::quiet(), a.resume)?;
    show(&out, super::quiet());
    Ok(())
}

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet drift\n  widenet drift --widths 64,256,1024,4096 --seeds 8 --steps 300\n\n\
Relative change of the empirical NTK and of the hidden features during training, against width under\n\
the ntk parameterization (lazy: the features move like width^-1/2, the NTK like 1/width by\n\
perturbation theory) and muP (rich: both stay of order one; base width: the first of --widths), and\n\
against an output scale alpha in the style of Chizat and Bach (both shrink like 1/alpha)."
)]
pub struct DriftArgs {
    /// Continue an interrupted run in --out without recomputing its finished points.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// TOML settings (keys as the flags), or a report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Large preset for real GPUs.
    #[arg(long, conflicts_with = "quick")]
    pub large: bool,
    /// Small preset (seconds), for a first look and for tests; its numbers are noisy.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated widths of the sweep.
    #[arg(long)]
    pub widths: Option<String>,
    /// Members (seeds) per point of the sweep.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// The architecture (JSON file, or the layers inline; see `widenet kernel --help`); every
    /// hidden Dense layer is set to each width of the sweep. Replaces --depth and --activation.
    #[arg(long)]
    pub arch: Option<String>,
    /// Hidden layers of the MLP (Dense(width), activation) before the readout.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Training steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Comma-separated output scales.
    #[arg(long)]
    pub alphas: Option<String>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder: report.json, report.md, figures, points/ (default runs/COMMAND-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_drift(a: &DriftArgs, device: Option<&str>) -> Result<()> {
    use widenet::experiments::drift::{DriftConfig, run};
    let mut c: DriftConfig = base_config(&a.config, a.quick, a.large)?;
    if let Some(w) = &a.widths {
        c.widths = super::parse_list("--widths", w)?;
    }
    if let Some(s) = &a.alphas {
        c.alphas = parse_floats("--alphas", s)?;
    }
    macro_rules! over {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    over!(seeds, depth, steps, seed);
    if let Some(arch) = &a.arch {
        c.arch = Some(super::kernel::read_arch(arch)?);
    }
    c.validate()?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "drift")?;
    run(dev.as_ref(), &c, &out, super::quiet(), a.resume)?;
    show(&out, super::quiet());
    Ok(())
}

/// Prints the report unless quiet, and where it is (always); for a shard,
/// where its shard.json is.
pub(crate) fn show(out: &OutDir, quiet: bool) {
    if widenet::experiments::shard::shard_written() {
        eprintln!(
            "wrote {} (this shard's units; `widenet merge` joins the shards into the report)",
            out.file("shard.json").display()
        );
        return;
    }
    if !quiet {
        println!(
            "{}",
            std::fs::read_to_string(out.file("report.md")).unwrap_or_default()
        );
    }
    eprintln!(
        "wrote {} (report.md, report.json, figures)",
        out.path.display()
    );
}

/// The settings a run starts from: a file, else a preset, else the defaults.
pub(super) fn base_config<T: widenet::experiments::Preset>(
    file: &Option<PathBuf>,
    quick: bool,
    large: bool,
) -> Result<T> {
    match file {
        Some(p) => toml_config(p),
        None if quick => Ok(T::quick()),
        None if large => Ok(T::large()),
        None => Ok(T::default()),
    }
}
