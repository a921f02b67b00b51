//! `widenet learning-curves` and `widenet random-labels`: generalization
//! from the kernel's eigenstructure.

use std::path::PathBuf;
use widenet::arch::{Arch, Mlp, Parameterization};
use widenet::error::{Error, Result};
use widenet::experiments::OutDir;
use widenet::experiments::learning_curves::{self, LearningCurvesConfig, parse_sizes};
use widenet::experiments::random_labels::{self, RandomLabelsConfig};
use widenet::experiments::task::{Source, Task};

/// The data flags of both commands.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct DataArgs {
    /// Your inputs, a [rows, d] .npy array (with --y); replaces the sphere.
    #[arg(long, requires = "y", conflicts_with_all = ["data", "d", "target"])]
    pub x: Option<PathBuf>,
    /// Your labels, [rows] or [rows, 1] .npy.
    #[arg(long, requires = "x")]
    pub y: Option<PathBuf>,
    /// Synthetic data: `sphere` (uniform on the sphere of radius sqrt(d), the default).
    #[arg(long)]
    pub data: Option<String>,
    /// Input dimension of the sphere.
    #[arg(long)]
    pub d: Option<usize>,
    /// The sphere's target: power:B[:K] (power ~ k^-B in degrees 1..K) or DEGREE:POWER,...
    #[arg(long)]
    pub target: Option<String>,
    /// Test points.
    #[arg(long)]
    pub n_test: Option<usize>,
}

impl DataArgs {
    fn source(&self, base: &Source) -> Result<Source> {
        if let (Some(x), Some(y)) = (&self.x, &self.y) {
            return Ok(Source::Files {
                x: x.display().to_string(),
                y: y.display().to_string(),
            });
        }
        if let Some(d) = &self.data {
            if d != "sphere" {
                return Err(Error::invalid(format!(
                    "--data: the synthetic data set is 'sphere', got '{d}' (your own data: --x and --y)"
                )));
            }
        }
        let (d0, t0) = match base {
            Source::Sphere { d, target } => (*d, target.clone()),
            Source::Files { .. } => (3, "power:3".to_string()),
        };
        Ok(Source::Sphere {
            d: self.d.unwrap_or(d0),
            target: self.target.clone().unwrap_or(t0),
        })
    }
}

/// The architecture flags of both commands (as `widenet kernel` takes them).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct NetArgs {
    /// The architecture: a JSON file, or the layers inline (see `widenet kernel --help`).
    /// Hidden Dense layers are set to each width of --widths for the finite networks.
    #[arg(long, conflicts_with_all = ["depth", "activation", "w_std", "b_std", "parameterization"])]
    pub arch: Option<String>,
    /// Shorthand: hidden layers (Dense then activation), then Dense(1).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Shorthand: the nonlinearity (relu, erf, tanh, ...).
    #[arg(long)]
    pub activation: Option<String>,
    /// Shorthand: W_std of every Dense layer.
    #[arg(long)]
    pub w_std: Option<f64>,
    /// Shorthand: b_std of every Dense layer.
    #[arg(long)]
    pub b_std: Option<f64>,
    /// Shorthand: ntk or standard.
    #[arg(long)]
    pub parameterization: Option<String>,
}

impl NetArgs {
    /// The architecture the flags ask for, `None` to keep the default.
    fn build(&self, depth0: usize) -> Result<Option<Arch>> {
        if let Some(a) = &self.arch {
            return super::kernel::read_arch(a).map(Some);
        }
        if self.depth.is_none()
            && self.activation.is_none()
            && self.w_std.is_none()
            && self.b_std.is_none()
            && self.parameterization.is_none()
        {
            return Ok(None);
        }
        let (w_std, b_std) = (self.w_std.unwrap_or(1.4), self.b_std.unwrap_or(0.1));
        super::check_scales(&[("--w-std", w_std), ("--b-std", b_std)])?;
        let depth = self.depth.unwrap_or(depth0);
        super::check_sizes(&[("--depth", depth)])?;
        let parameterization = super::flag(
            "--parameterization",
            Parameterization::parse(self.parameterization.as_deref().unwrap_or("ntk")),
        )?;
        if !parameterization.is_per_layer() {
            return Err(Error::invalid(
                "--parameterization: kernels exist for ntk and standard",
            ));
        }
        let activation = super::flag(
            "--activation",
            widenet::Activation::parse(self.activation.as_deref().unwrap_or("relu")),
        )?;
        Ok(Some(Arch::mlp(&Mlp {
            depth,
            width: 512,
            activation,
            w_std,
            b_std: Some(b_std),
            parameterization,
            d_out: 1,
        })))
    }
}

fn floats(flag: &str, s: &str) -> Result<Vec<f64>> {
    if s.trim().is_empty() {
        return Err(Error::invalid(format!("{flag} is empty")));
    }
    s.split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            Error::invalid(format!(
                "{flag}: expected comma-separated numbers, got '{s}'"
            ))
        })
}

fn get(s: &str) -> Result<widenet::predict::Get> {
    super::flag("--get", widenet::predict::Get::parse(s))
}

#[derive(clap::Args, Debug, Default)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  widenet learning-curves                      sphere in R^3, pool 4096, 12 sizes up to 2048, 10 draws, two widths\n  widenet learning-curves --quick\n  widenet learning-curves --d 5 --target power:2.5 --n 32:1024:8 --ridge 1e-3 --noise 0.1\n  widenet learning-curves --x x.npy --y y.npy --n 50,100,200,400 --widths 256\n\n\
Kernel regression test and train MSE against the number of training points n, measured over random\n\
training sets drawn from a pool and predicted by eigenlearning from the kernel's spectrum on the pool\n\
(and, on the sphere, from the exact population spectrum); finite networks of each width at --finite-n;\n\
fitted exponents. Writes report.json, report.md and figures (SVG and PNG) to --out."
)]
pub struct LearningCurvesArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Small preset (seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs.
    #[arg(long)]
    pub large: bool,
    /// Pool points (the spectrum's; training sets are drawn from them).
    #[arg(long)]
    pub pool: Option<usize>,
    /// nngp or ntk.
    #[arg(long)]
    pub get: Option<String>,
    /// Training-set sizes: a list, or LO:HI:K (K sizes log-spaced from LO to HI).
    #[arg(long)]
    pub n: Option<String>,
    /// Ridge added to the raw train kernel's diagonal.
    #[arg(long)]
    pub ridge: Option<f64>,
    /// Standard deviation of Gaussian label noise (train and test labels).
    #[arg(long)]
    pub noise: Option<f64>,
    /// Random training sets per size.
    #[arg(long)]
    pub draws: Option<usize>,
    /// Widths of the finite networks (comma-separated).
    #[arg(long)]
    pub widths: Option<String>,
    /// Sizes at which the finite networks are measured.
    #[arg(long)]
    pub finite_n: Option<String>,
    /// Networks per width.
    #[arg(long)]
    pub members: Option<usize>,
    /// Test points for the finite networks.
    #[arg(long)]
    pub finite_test: Option<usize>,
    /// Highest degree of the sphere's exact spectrum.
    #[arg(long)]
    pub kmax: Option<usize>,
    /// Smallest size in the exponent fits.
    #[arg(long)]
    pub fit_min_n: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default runs/learning-curves-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out without recomputing its finished points.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl LearningCurvesArgs {
    /// The settings: preset, then flags.
    pub fn config(&self) -> Result<LearningCurvesConfig> {
        let mut c = if self.quick {
            LearningCurvesConfig::quick()
        } else if self.large {
            LearningCurvesConfig::large()
        } else {
            LearningCurvesConfig::default()
        };
        c.source = self.data.source(&c.source)?;
        if let Some(a) = self.net.build(2)? {
            c.arch = a;
        }
        if let Some(g) = &self.get {
            c.get = get(g)?;
        }
        if let Some(n) = &self.n {
            c.n = parse_sizes(n)?;
        }
        if let Some(w) = &self.widths {
            c.widths = super::parse_list("--widths", w)?;
        }
        if let Some(w) = &self.finite_n {
            c.finite_n = super::parse_list("--finite-n", w)?;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        over!(
            pool,
            ridge,
            noise,
            draws,
            members,
            finite_test,
            kmax,
            fit_min_n,
            seed
        );
        if let Some(t) = self.data.n_test {
            c.n_test = t;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run_learning_curves(a: &LearningCurvesArgs, device: Option<&str>) -> Result<()> {
    let cfg = a.config()?;
    let task = Task::build(&cfg.source, cfg.pool, cfg.n_test, cfg.seed)?;
    cfg.check_sizes(task.pool())?;
    cfg.arch.kernel_program(task.d())?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "learning-curves")?;
    if !super::quiet() {
        eprintln!(
            "widenet learning-curves on {}: pool {}, n {:?}, {} draws; writing {}",
            dev.describe(),
            task.pool(),
            cfg.n,
            cfg.draws,
            out.path.display()
        );
    }
    learning_curves::run(dev.as_ref(), &cfg, &task, &out, super::quiet(), a.resume)?;
    super::experiments::show(&out, super::quiet());
    Ok(())
}

#[derive(clap::Args, Debug, Default)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  widenet random-labels                        corruption 0, 0.2, 0.5, 0.8, 1 on the sphere in R^8\n  widenet random-labels --quick\n  widenet random-labels --corrupt 0,1 --widths 256,4096 --max-steps 10000\n\n\
Zhang et al. (2017), figure 1, for wide networks and their kernel: a fraction of the training labels\n\
replaced by random ones; ensembles trained by gradient descent until they fit the labels; training\n\
loss curves, steps to fit and test error against corruption, each with the kernel's prediction."
)]
pub struct RandomLabelsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Small preset (seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large preset for real GPUs.
    #[arg(long)]
    pub large: bool,
    /// Fractions of training labels replaced by random ones (comma-separated, in [0, 1]).
    #[arg(long)]
    pub corrupt: Option<String>,
    /// Training points.
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Widths (comma-separated).
    #[arg(long)]
    pub widths: Option<String>,
    /// Networks per width.
    #[arg(long)]
    pub members: Option<usize>,
    /// Most gradient-descent steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Learning rate (default n / largest eigenvalue of the train NTK).
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    /// Fitted below this fraction of the starting loss mean(y^2)/2.
    #[arg(long)]
    pub fit_tol: Option<f64>,
    /// Points on the training-loss curves.
    #[arg(long)]
    pub curve_points: Option<usize>,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default runs/random-labels-TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out without recomputing its finished points.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl RandomLabelsArgs {
    /// The settings: preset, then flags.
    pub fn config(&self) -> Result<RandomLabelsConfig> {
        let mut c = if self.quick {
            RandomLabelsConfig::quick()
        } else if self.large {
            RandomLabelsConfig::large()
        } else {
            RandomLabelsConfig::default()
        };
        c.source = self.data.source(&c.source)?;
        if let Some(a) = self.net.build(1)? {
            c.arch = a;
        }
        if let Some(s) = &self.corrupt {
            c.corrupt = floats("--corrupt", s)?;
        }
        if let Some(w) = &self.widths {
            c.widths = super::parse_list("--widths", w)?;
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        over!(n_train, members, max_steps, fit_tol, curve_points, seed);
        if self.lr.is_some() {
            c.lr = self.lr;
        }
        if let Some(t) = self.data.n_test {
            c.n_test = t;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run_random_labels(a: &RandomLabelsArgs, device: Option<&str>) -> Result<()> {
    let cfg = a.config()?;
    let task = Task::build(&cfg.source, cfg.n_train, cfg.n_test, cfg.seed)?;
    if task.pool() < cfg.n_train {
        return Err(Error::invalid(format!(
            "--n-train ({}) is more than the {} rows left after the {} test points",
            cfg.n_train,
            task.pool(),
            cfg.n_test
        )));
    }
    cfg.arch.kernel_program(task.d())?;
    let dev = super::open_device(device)?;
    let out = OutDir::create(a.out.as_deref(), "random-labels")?;
    if !super::quiet() {
        eprintln!(
            "widenet random-labels on {}: corruption {:?}, widths {:?}; writing {}",
            dev.describe(),
            cfg.corrupt,
            cfg.widths,
            out.path.display()
        );
    }
    random_labels::run(dev.as_ref(), &cfg, &task, &out, super::quiet(), a.resume)?;
    super::experiments::show(&out, super::quiet());
    Ok(())
}
