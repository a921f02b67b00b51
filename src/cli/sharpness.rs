//! `widenet sharpness`: the edge of stability across learning rates, widths
//! and parameterizations.

use super::experiments::{base_config, parse_floats, show};
use std::path::PathBuf;
use widenet::arch::Parameterization;
use widenet::error::Result;
use widenet::experiments::OutDir;
use widenet::experiments::sharpness::{SharpnessConfig, data, run};

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet sharpness --quick\n  widenet sharpness                     widths 32..256, ntk and muP, 3 learning rates, 2 seeds\n  widenet sharpness --lrs 0.05,0.1 --widths 64,256 --parameterization mup --steps 1000 --every 10\n\n\
Full-batch gradient descent with every (learning rate, seed) of a width a member of one ensemble;\n\
every --every steps the sharpness (top eigenvalue of the loss Hessian, preconditioned by the\n\
parameterization's learning-rate multipliers; Lanczos on exact Hessian-vector products on the device)\n\
of every member. Cohen et al. (2021): the sharpness rises until it reaches 2/eta and hovers there.\n\
Without --lrs the learning rates are --lr-fractions of 2/lambda0, lambda0 the median sharpness at\n\
initialization at the smallest width. Writes report.json, report.md and figures to --out."
)]
pub struct SharpnessArgs {
    /// TOML settings (keys as the flags), or a report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Small preset (seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs.
    #[arg(long)]
    pub large: bool,
    /// Comma-separated learning rates (the same for every width and parameterization).
    #[arg(long, visible_alias = "learning-rates")]
    pub lrs: Option<String>,
    /// Comma-separated fractions of the stability threshold at initialization (without --lrs).
    #[arg(long)]
    pub lr_fractions: Option<String>,
    /// Comma-separated widths.
    #[arg(long)]
    pub widths: Option<String>,
    /// Comma-separated parameterizations (ntk, mup, standard).
    #[arg(long)]
    pub parameterization: Option<String>,
    /// Members (seeds) per learning rate.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Gradient-descent steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Measure the sharpness every this many steps.
    #[arg(long)]
    pub every: Option<usize>,
    /// The architecture (JSON file, or the layers inline; see `widenet kernel --help`); every
    /// hidden Dense layer is set to each width. Replaces --depth and --activation.
    #[arg(long)]
    pub arch: Option<String>,
    /// Hidden layers of the default MLP.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Nonlinearity of the default MLP.
    #[arg(long)]
    pub activation: Option<String>,
    /// Weight scale.
    #[arg(long)]
    pub w_std: Option<f64>,
    /// Bias scale.
    #[arg(long)]
    pub b_std: Option<f64>,
    /// Input dimension of the synthetic task.
    #[arg(long)]
    pub d_in: Option<usize>,
    /// Training points.
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Most Lanczos steps per measurement.
    #[arg(long)]
    pub lanczos_iters: Option<usize>,
    /// Seed of the data, the initializations and the Lanczos start vectors.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default runs/sharpness-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out without recomputing its finished points.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl SharpnessArgs {
    /// The settings: the preset or file, then the flags.
    pub fn config(&self) -> Result<SharpnessConfig> {
        let mut c: SharpnessConfig = base_config(&self.config, self.quick, self.large)?;
        if let Some(s) = &self.lrs {
            c.lrs = Some(parse_floats("--lrs", s)?);
        }
        if let Some(s) = &self.lr_fractions {
            c.lr_fractions = parse_floats("--lr-fractions", s)?;
        }
        if let Some(w) = &self.widths {
            c.widths = super::parse_list("--widths", w)?;
        }
        if let Some(s) = &self.parameterization {
            c.parameterizations = s
                .split(',')
                .map(|p| Parameterization::parse(p.trim()))
                .collect::<Result<_>>()?;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        over!(
            seeds,
            steps,
            every,
            depth,
            activation,
            w_std,
            b_std,
            d_in,
            n_train,
            lanczos_iters,
            seed
        );
        if let Some(a) = &self.arch {
            c.arch = Some(super::kernel::read_arch(a)?);
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs `widenet sharpness`.
pub fn run_sharpness(a: &SharpnessArgs, device: Option<&str>) -> Result<()> {
    let cfg = a.config()?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "sharpness")?;
    if !super::quiet() {
        eprintln!(
            "widenet sharpness on {}: widths {:?}, {} steps; writing {}",
            dev.describe(),
            cfg.widths,
            cfg.steps,
            out.path.display()
        );
    }
    run(
        dev.as_ref(),
        &cfg,
        &data(&cfg),
        &out,
        super::quiet(),
        a.resume,
    )?;
    show(&out, super::quiet());
    Ok(())
}
