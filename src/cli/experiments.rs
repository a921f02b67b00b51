//! `widenet compare` (the default job) and the other experiments.

use crate::error::{Error, Result};
use crate::experiments::OutDir;
use crate::experiments::compare::{self, CompareConfig};
use crate::experiments::data::{Split, teacher};
use crate::npy;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet compare                      defaults: widths 64..2048, 16 seeds (about a minute on a CPU)\n  widenet compare --quick              a small run\n  widenet compare --large              for real GPUs\n  widenet compare --widths 128,512,2048 --seeds 32 --depth 2 --out runs/mine\n  widenet compare --x x.npy --y y.npy --n-train 200\n\n\
Trains an ensemble at every width by full-batch gradient descent (ntk parameterization) and compares\n\
it with the infinite-width NTK prediction at the same time t = lr * steps: kernel at initialization,\n\
deviation from the linearized dynamics, kernel movement, ensemble mean and spread, loss curves, and\n\
the fitted slopes in width (theory: -1/2). Writes report.json, report.md and SVG plots to --out."
)]
pub struct CompareArgs {
    /// TOML settings (keys as the flags, e.g. widths = [64, 256], seeds = 8); flags win.
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
    #[arg(long)]
    pub depth: Option<usize>,
    #[arg(long)]
    pub activation: Option<String>,
    #[arg(long)]
    pub w_std: Option<f64>,
    #[arg(long)]
    pub b_std: Option<f64>,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate (default: n_train / largest eigenvalue of the train NTK).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub n_train: Option<usize>,
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Input dimension of the synthetic task.
    #[arg(long)]
    pub d_in: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Inputs from a file instead of the synthetic task (first --n-train rows train, the rest test).
    #[arg(long, requires = "y")]
    pub x: Option<PathBuf>,
    #[arg(long, requires = "x")]
    pub y: Option<PathBuf>,
    /// Output folder (default runs/compare-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

fn load_config(path: &Path) -> Result<CompareConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| Error::file(path, format!("invalid config: {e}")))
}

impl CompareArgs {
    pub fn config(&self) -> Result<CompareConfig> {
        let mut c = match &self.config {
            Some(p) => load_config(p)?,
            None if self.quick => CompareConfig::quick(),
            None if self.large => CompareConfig::large(),
            None => CompareConfig::default(),
        };
        if let Some(w) = &self.widths {
            c.widths = super::parse_list("--widths", w)?;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        over!(
            seeds, depth, activation, w_std, b_std, steps, n_train, n_test, d_in, seed
        );
        if self.lr.is_some() {
            c.lr = self.lr;
        }
        c.validate()?;
        Ok(c)
    }
}

fn file_split(x: &Path, y: &Path, n_train: usize) -> Result<Split> {
    let xm = npy::read_matrix(x, "--x")?.to_f32();
    let ym = npy::read_matrix(y, "--y")?.to_f32();
    if ym.rows != xm.rows {
        return Err(Error::shape(
            "compare",
            format!("--y has {} rows but --x has {}", ym.rows, xm.rows),
        ));
    }
    if n_train >= xm.rows {
        return Err(Error::invalid(format!(
            "--n-train ({n_train}) must leave test points among the {} rows",
            xm.rows
        )));
    }
    let take = |m: &crate::matrix::Matrix<f32>, a: usize, b: usize| crate::matrix::Matrix {
        rows: b - a,
        cols: m.cols,
        data: m.data[a * m.cols..b * m.cols].to_vec(),
    };
    Ok(Split {
        x_train: take(&xm, 0, n_train),
        y_train: take(&ym, 0, n_train),
        x_test: take(&xm, n_train, xm.rows),
        y_test: take(&ym, n_train, xm.rows),
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
    if !a.quiet {
        eprintln!(
            "widenet compare on {}: widths {:?}, {} seeds; writing {}",
            dev.describe(),
            cfg.widths,
            cfg.seeds,
            out.path.display()
        );
    }
    let report = compare::run(dev.as_ref(), &cfg, &data, &out, a.quiet)?;
    if !a.quiet {
        println!(
            "{}",
            std::fs::read_to_string(out.file("report.md")).unwrap_or_default()
        );
        let _ = report;
    }
    Ok(())
}
