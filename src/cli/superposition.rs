//! `widenet superposition`: the toy models of superposition.

use std::path::PathBuf;
use widenet::error::{Error, Result};
use widenet::experiments::OutDir;
use widenet::experiments::superposition::{SuperpositionConfig, model::Output, run};

#[derive(clap::Args, Debug, Default)]
#[command(
    after_help = "Examples:\n  widenet superposition                 the paper's sweep: 20 features in 5 dimensions, importance 0.7^i,\n                                        20 sparsities from 0 to 0.999, 3 seeds, ReLU and linear models,\n                                        and the two-feature phase diagram, as one batched run\n  widenet superposition --quick         a small run (seconds)\n  widenet superposition --features 40 --hidden 10 --importance-decay 1,0.9 --sparsity 0,0.9,0.99\n\n\
Elhage et al. (2022), \"Toy Models of Superposition\", section 3: n sparse features (each zero with\n\
probability S, else uniform on [0, 1]) through m < n hidden dimensions, x' = ReLU(W^T W x + b), trained\n\
on importance-weighted squared error with Adam. Every (model, sparsity, importance, seed) is a member\n\
of one batched run, its data drawn on the device every step. Reports each feature's norm,\n\
superposition and dimensionality, the features represented and the dimensions per feature, and the\n\
phase of every point of the two-feature diagram (n = 2, m = 1) against the theory. Writes\n\
report.json, report.md, figures and weights.safetensors (every member's W and b) to --out."
)]
pub struct SuperpositionArgs {
    /// TOML settings (keys as the flags), or a report.json to rerun its configuration; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Small preset (seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs.
    #[arg(long)]
    pub large: bool,
    /// Features n.
    #[arg(long)]
    pub features: Option<usize>,
    /// Hidden dimensions m (fewer than the features).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Comma-separated sparsities S in [0, 1) (probability that a feature is zero).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Comma-separated importance decays R in (0, 1]: feature i has importance R^i.
    #[arg(long)]
    pub importance_decay: Option<String>,
    /// Seeds per (sparsity, importance) point.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Comma-separated output models: relu, linear.
    #[arg(long)]
    pub models: Option<String>,
    /// Adam steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Draws per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    /// Points of the two-feature phase diagram along each axis (0: none).
    #[arg(long)]
    pub phase_grid: Option<usize>,
    /// Restarts per point of the phase diagram (the lowest loss counts).
    #[arg(long)]
    pub phase_seeds: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default runs/superposition-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out from its saved training state.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl SuperpositionArgs {
    /// The settings: a file or a preset, then the flags.
    pub fn config(&self) -> Result<SuperpositionConfig> {
        let mut c: SuperpositionConfig =
            super::experiments::base_config(&self.config, self.quick, self.large)?;
        if let Some(s) = &self.sparsity {
            c.sparsity = super::experiments::parse_floats("--sparsity", s)?;
        }
        if let Some(s) = &self.importance_decay {
            c.importance_decay = super::experiments::parse_floats("--importance-decay", s)?;
        }
        if let Some(s) = &self.models {
            c.models = s
                .split(',')
                .map(|m| match m.trim() {
                    "relu" => Ok(Output::Relu),
                    "linear" => Ok(Output::Linear),
                    other => Err(Error::invalid(format!(
                        "--models: expected relu or linear, got '{other}'"
                    ))),
                })
                .collect::<Result<_>>()?;
        }
        if let Some(g) = self.phase_grid {
            c.phase_importances = g;
            c.phase_densities = g;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        over!(features, hidden, seeds, steps, batch, lr, seed, phase_seeds);
        c.validate()?;
        Ok(c)
    }
}

/// Runs `widenet superposition`.
pub fn run_superposition(a: &SuperpositionArgs, device: Option<&str>) -> Result<()> {
    let c = a.config()?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "superposition")?;
    if !super::quiet() {
        eprintln!(
            "widenet superposition on {}: {} + {} members, {} steps; writing {}",
            dev.describe(),
            c.sweep_members() * c.models.len(),
            c.phase_importances * c.phase_densities * c.phase_seeds,
            c.steps,
            out.path.display()
        );
    }
    run(dev.as_ref(), &c, &out, super::quiet(), a.resume)?;
    super::experiments::show(&out, super::quiet());
    Ok(())
}
