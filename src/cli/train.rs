//! `widenet init`, `widenet forward` and `widenet train`: MLP ensembles from
//! the command line, parameters in safetensors files, data in `.npy`.

use serde::Deserialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use widenet::activation::Activation;
use widenet::arch::Parameterization;
use widenet::backend::{Loss, Rule};
use widenet::error::{Error, Result};
use widenet::matrix::Matrix;
use widenet::net::ensemble::Ensemble;
use widenet::net::params::Params;
use widenet::net::train::{Schedule, TrainConfig, forward, train};
use widenet::net::{MlpSpec, NetSpec};
use widenet::npy;

#[derive(clap::Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  widenet init --d-in 10 --width 512 --depth 2 --d-out 1 --activation relu --parameterization ntk \\\n    --w-std 1.4 --b-std 0.1 --ensemble 16 --seed 0 --out p.safetensors\n  widenet init --arch 'Dense(512), Relu, Residual(Relu, Dense(512)), LayerNorm, Dense(1)' --d-in 10 \\\n    --ensemble 8 --out r.safetensors\n\n\
Writes layers.{l}.weight [E, fan_out, fan_in] and layers.{l}.bias [E, fan_out] (float32) for the Dense\n\
layers in order (depth first through residual blocks; a layer without b_std has no bias) and the\n\
network in the file's metadata. The same seed gives the same numbers everywhere; member e does not\n\
depend on the ensemble's size. Parameterizations: ntk and standard as neural-tangents' Dense; mup\n\
(Tensor Programs V, relative to --base-width); mean-field."
)]
pub struct InitArgs {
    /// Input features.
    #[arg(long)]
    pub d_in: usize,
    /// The architecture (a JSON file, or the layers inline; see `widenet kernel --help`);
    /// replaces --width, --depth, --d-out, --activation, --w-std and --b-std.
    #[arg(long)]
    pub arch: Option<String>,
    /// Shorthand: hidden width.
    #[arg(long, default_value_t = 512)]
    pub width: usize,
    /// Shorthand: hidden layers.
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// Shorthand: outputs.
    #[arg(long, default_value_t = 1)]
    pub d_out: usize,
    #[arg(long, help = super::ACTIVATION_HELP, default_value = "relu")]
    pub activation: String,
    /// ntk, standard, mup or mean-field for every Dense layer (default: ntk for the
    /// shorthand; with --arch, each Dense layer's own).
    #[arg(long)]
    pub parameterization: Option<String>,
    /// Weight standard deviation sigma_w of every Dense layer (neural-tangents' W_std).
    #[arg(long, default_value_t = 1.0)]
    pub w_std: f64,
    /// Bias standard deviation sigma_b of every Dense layer (neural-tangents' b_std; 0: no bias).
    #[arg(long, default_value_t = 0.0)]
    pub b_std: f64,
    /// muP's base width, where it coincides with standard (default: --width).
    #[arg(long)]
    pub base_width: Option<usize>,
    /// Members.
    #[arg(long, default_value_t = 1)]
    pub ensemble: usize,
    /// Seed of the data and of every initialization (the same seed reproduces the run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Parameter file to write (safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

/// `widenet init`.
pub fn run_init(a: &InitArgs) -> Result<()> {
    let p = a
        .parameterization
        .as_deref()
        .map(|p| super::flag("--parameterization", Parameterization::parse(p)))
        .transpose()?;
    let spec = match &a.arch {
        Some(text) => NetSpec {
            arch: super::kernel::read_arch(text)?,
            d_in: a.d_in,
            ensemble: a.ensemble,
            parameterization: p,
            base_width: a.base_width.unwrap_or(a.width),
        },
        None => {
            super::check_sizes(&[
                ("--d-in", a.d_in),
                ("--width", a.width),
                ("--d-out", a.d_out),
                ("--ensemble", a.ensemble),
            ])?;
            super::check_scales(&[("--w-std", a.w_std), ("--b-std", a.b_std)])?;
            MlpSpec {
                d_in: a.d_in,
                width: a.width,
                depth: a.depth,
                d_out: a.d_out,
                activation: super::flag("--activation", Activation::parse(&a.activation))?,
                parameterization: p.unwrap_or(Parameterization::Ntk),
                w_std: a.w_std,
                b_std: a.b_std,
                base_width: a.base_width.unwrap_or(a.width),
                ensemble: a.ensemble,
            }
            .net()
        }
    };
    super::check_sizes(&[("--d-in", a.d_in), ("--ensemble", a.ensemble)])?;
    super::check_out_ext(&a.out, "--out", "safetensors")?;
    Params::init(&spec, a.seed)?.save(&a.out)?;
    let members = if spec.ensemble == 1 {
        "member"
    } else {
        "members"
    };
    eprintln!("wrote {} ({} {members})", a.out.display(), spec.ensemble);
    Ok(())
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  widenet forward --params p.safetensors --x x.npy --out f.npy    # f: [E, n, d_out]"
)]
pub struct ForwardArgs {
    /// Parameter file (safetensors, as written by `widenet init` or `widenet train`).
    #[arg(long)]
    pub params: PathBuf,
    /// Inputs [n, d_in].
    #[arg(long)]
    pub x: PathBuf,
    /// Outputs [E, n, d_out], float32.
    #[arg(long)]
    pub out: PathBuf,
}

fn read_f32(path: &Path, what: &str) -> Result<Matrix<f32>> {
    let m = npy::read_matrix(path, what)?;
    Ok(m.to_f32())
}

pub fn run_forward(a: &ForwardArgs, device: Option<&str>) -> Result<()> {
    super::check_out_ext(&a.out, "--out", "npy")?;
    let p = Params::load(&a.params)?;
    let x = read_f32(&a.x, "--x")?;
    if x.cols() != p.spec.d_in {
        return Err(Error::shape(
            "forward",
            format!(
                "--x has {} features but the network has d_in = {}",
                x.cols(),
                p.spec.d_in
            ),
        ));
    }
    let dev = super::open_device(device)?;
    let ens = Ensemble::new(dev.as_ref(), &p)?;
    let f = forward(&ens, &x)?;
    npy::write(&a.out, &[p.spec.ensemble, x.rows(), p.spec.d_out()], &f)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

#[derive(clap::Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[command(
    allow_negative_numbers = true,
    after_help = "Example:\n  widenet train --params p.safetensors --x x.npy --y y.npy --optimizer adam --lr 1e-3 --steps 500 \\\n    --batch-size 64 --out p2.safetensors --log losses.json\n\n\
gd is full-batch gradient descent on L = 1/(2N) sum (f - y)^2 (N = y.size), so that lr * steps is the\n\
time t of `widenet predict`. --lr takes one rate or one per member (comma-separated). A member whose\n\
loss turns NaN or infinite is frozen and reported; the others go on. For xent, y holds class labels\n\
[n] or rows of probabilities [n, d_out]. Every flag can come from a TOML file (--config run.toml, keys\n\
as the flags without their leading dashes, e.g. lr = 0.01, batch-size = 64); flags given on the line win."
)]
pub struct TrainArgs {
    /// TOML file with any of these settings.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Parameter file (safetensors, as written by `widenet init` or `widenet train`).
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Inputs .npy: points x features.
    #[arg(long)]
    pub x: Option<PathBuf>,
    /// Targets .npy: n x d_out, or n values for one output (required, as --x and --params).
    #[arg(long)]
    pub y: Option<PathBuf>,
    /// gd (full batch), sgd, momentum or adam [default: gd].
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate, or one per member, comma-separated; `auto`: N / lambda_max of the
    /// network's NTK on --x (gd on mse; a gd rate above 2 N / lambda_max gets a warning) [default: 0.1].
    #[arg(long, visible_alias = "learning-rate")]
    #[serde(default, alias = "learning-rate", deserialize_with = "lr_list")]
    pub lr: Option<String>,
    /// Training steps [default: 100].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Minibatch size of sgd, momentum and adam [default: 32, or all points if fewer].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// mse or xent (cross-entropy) [default: mse].
    #[arg(long)]
    pub loss: Option<String>,
    /// constant or cosine [default: constant].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Momentum coefficient (momentum) [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Adam's first-moment decay beta1 [default: 0.9].
    #[arg(long)]
    pub beta1: Option<f32>,
    /// Adam's second-moment decay beta2 [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f32>,
    /// Adam's epsilon [default: 1e-8].
    #[arg(long)]
    pub eps: Option<f32>,
    /// Read the losses back every this many steps [default: 10].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Seed of the minibatch shuffling [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Trained parameters.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Losses as JSON.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// `quiet = true` in a --config file: as the global `--quiet` (no step lines).
    #[arg(skip)]
    #[serde(default)]
    pub quiet: bool,
}

fn lr_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lr {
        One(f64),
        Many(Vec<f64>),
        Text(String),
    }
    Ok(Some(match Lr::deserialize(d)? {
        Lr::One(v) => v.to_string(),
        Lr::Many(v) => v
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
        Lr::Text(s) => s,
    }))
}

impl TrainArgs {
    /// Flags over the config file.
    fn merged(&self) -> Result<TrainArgs> {
        let Some(path) = &self.config else {
            return Ok(TrainArgs {
                quiet: super::quiet(),
                ..self.clone_fields()
            });
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| widenet::Error::io(path, "read", e))?;
        let file: TrainArgs =
            toml::from_str(&text).map_err(|e| Error::file(path, format!("invalid config: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: Option<PathBuf>| p.map(|p| if p.is_relative() { base.join(p) } else { p });
        let me = self.clone_fields();
        Ok(TrainArgs {
            config: None,
            params: me.params.or(rel(file.params)),
            x: me.x.or(rel(file.x)),
            y: me.y.or(rel(file.y)),
            optimizer: me.optimizer.or(file.optimizer),
            lr: me.lr.or(file.lr),
            steps: me.steps.or(file.steps),
            batch_size: me.batch_size.or(file.batch_size),
            loss: me.loss.or(file.loss),
            schedule: me.schedule.or(file.schedule),
            momentum: me.momentum.or(file.momentum),
            beta1: me.beta1.or(file.beta1),
            beta2: me.beta2.or(file.beta2),
            eps: me.eps.or(file.eps),
            log_every: me.log_every.or(file.log_every),
            seed: me.seed.or(file.seed),
            out: me.out.or(rel(file.out)),
            log: me.log.or(rel(file.log)),
            quiet: super::quiet() || file.quiet,
        })
    }

    fn clone_fields(&self) -> TrainArgs {
        TrainArgs {
            config: self.config.clone(),
            params: self.params.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            optimizer: self.optimizer.clone(),
            lr: self.lr.clone(),
            steps: self.steps,
            batch_size: self.batch_size,
            loss: self.loss.clone(),
            schedule: self.schedule.clone(),
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            log_every: self.log_every,
            seed: self.seed,
            out: self.out.clone(),
            log: self.log.clone(),
            quiet: self.quiet,
        }
    }
}

fn need<T: Clone>(v: &Option<T>, flag: &str) -> Result<T> {
    v.clone().ok_or_else(|| {
        Error::invalid(format!(
            "{flag} is required (on the command line or in --config)"
        ))
    })
}

pub fn run_train(a: &TrainArgs, device: Option<&str>) -> Result<()> {
    let a = a.merged()?;
    let (params, xp, yp, out) = (
        need(&a.params, "--params")?,
        need(&a.x, "--x")?,
        need(&a.y, "--y")?,
        need(&a.out, "--out")?,
    );
    super::check_out_ext(&out, "--out", "safetensors")?;
    if let Some(l) = &a.log {
        super::check_out(l)?;
    }
    let optimizer = a.optimizer.clone().unwrap_or_else(|| "gd".into());
    let rule = match optimizer.as_str() {
        "gd" | "sgd" => Rule::Sgd,
        "momentum" => Rule::Momentum {
            mu: a.momentum.unwrap_or(0.9),
        },
        "adam" => Rule::Adam {
            b1: a.beta1.unwrap_or(0.9),
            b2: a.beta2.unwrap_or(0.999),
            eps: a.eps.unwrap_or(1e-8),
        },
        o => {
            return Err(Error::invalid(format!(
                "unknown optimizer '{o}' (expected gd, sgd, momentum or adam)"
            )));
        }
    };
    let loss = match a.loss.as_deref().unwrap_or("mse") {
        "mse" => Loss::Mse,
        "xent" | "cross-entropy" => Loss::Xent,
        o => {
            return Err(Error::invalid(format!(
                "unknown loss '{o}' (expected mse or xent)"
            )));
        }
    };
    let schedule = match a.schedule.as_deref().unwrap_or("constant") {
        "constant" => Schedule::Constant,
        "cosine" => Schedule::Cosine,
        o => {
            return Err(Error::invalid(format!(
                "unknown schedule '{o}' (expected constant or cosine)"
            )));
        }
    };
    let lr_text = a.lr.clone().unwrap_or_else(|| "0.1".into());
    let p = Params::load(&params)?;
    let x = read_f32(&xp, "--x")?;
    let y = npy::read_targets(&yp, "--y")?.to_f32();
    let lr = learning_rates(&lr_text, &optimizer, matches!(loss, Loss::Mse), &p, &x, &y)?;
    let batch_size = match (optimizer.as_str(), a.batch_size) {
        ("gd", Some(_)) => {
            return Err(Error::invalid(
                "--batch-size does not apply to gd (full batch); use sgd",
            ));
        }
        ("gd", None) => None,
        (_, Some(b)) => Some(b),
        (_, None) => Some(32.min(x.rows())),
    };
    let cfg = TrainConfig {
        rule,
        lr,
        steps: a.steps.unwrap_or(100),
        batch_size,
        loss,
        schedule,
        log_every: a.log_every.unwrap_or(10),
        seed: a.seed.unwrap_or(0),
    };
    let dev = super::open_device(device)?;
    let mut ens = Ensemble::new(dev.as_ref(), &p)?;
    let quiet = a.quiet;
    let log = train(&mut ens, &x, &y, &cfg, |step, total| {
        if !quiet {
            if std::io::stderr().is_terminal() {
                eprint!("\rstep {step}/{total}");
                if step == total {
                    eprintln!();
                }
            } else {
                eprintln!("step {step}/{total}");
            }
        }
    })?;
    ens.params()?.save(&out)?;
    if let Some(path) = &a.log {
        let json = serde_json::json!({
            "config": cfg,
            "device": dev.info(),
            "steps": log.steps,
            "loss": log.loss,
            "final_loss": log.final_loss.iter().map(|v| if v.is_finite() { Some(*v) } else { None }).collect::<Vec<_>>(),
            "diverged_at": log.diverged_at,
        });
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| Error::invalid(e.to_string()))?;
        widenet::atomic::write_atomic(path, text.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if !quiet {
        let alive: Vec<f64> = log
            .final_loss
            .iter()
            .cloned()
            .filter(|v| v.is_finite())
            .collect();
        let diverged = log.diverged_at.iter().filter(|d| d.is_some()).count();
        let mean = alive.iter().sum::<f64>() / alive.len().max(1) as f64;
        eprintln!(
            "final loss (mean over {} members): {mean:.6e}; diverged: {diverged}",
            alive.len()
        );
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The learning rates of `--lr`: numbers (one, or one per member), or
/// `auto`, `N / lambda_max` of the network's infinite-width NTK on the
/// training inputs (`N` = the targets' size, as the loss divides by it),
/// half the largest rate gradient descent on the squared error can take.
/// A gradient-descent rate above `2 N / lambda_max` gets a warning (checked
/// up to 4096 points: the kernel costs n^2).
fn learning_rates(
    text: &str,
    optimizer: &str,
    mse: bool,
    p: &Params,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
) -> Result<Vec<f64>> {
    let big_n = (y.rows() * y.cols()) as f64;
    if text.trim().eq_ignore_ascii_case("auto") {
        if optimizer != "gd" || !mse {
            return Err(Error::invalid(
                "--lr auto is the gradient-descent step on the squared error: use it with \
                 --optimizer gd and --loss mse, or give a number",
            ));
        }
        let lam = super::stable_lr::ntk_lambda_max(&p.spec, x)?.ok_or_else(|| {
            Error::invalid(
                "--lr auto needs the ntk or standard parameterization (muP and mean-field \
                 scale each layer's rate); give a number",
            )
        })?;
        if lam.is_nan() || lam <= 0.0 {
            return Err(Error::invalid("--lr auto: the NTK on --x is zero"));
        }
        let lr = big_n / lam;
        eprintln!("--lr auto: {lr:.4e} (N / lambda_max, lambda_max = {lam:.4e} of the NTK on --x)");
        return Ok(vec![lr]);
    }
    let lr: Vec<f64> = text
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            Error::invalid(format!(
                "--lr must be a number, a comma-separated list or auto, got '{text}'"
            ))
        })?;
    if optimizer == "gd" && mse && x.rows() <= 4096 {
        if let Some(lam) = super::stable_lr::ntk_lambda_max(&p.spec, x)? {
            let limit = 2.0 * big_n / lam;
            if let Some(big) = lr.iter().find(|&&v| v > limit) {
                eprintln!(
                    "warning: --lr {big} is above 2 N / lambda_max = {limit:.4e} of the NTK on \
                     --x: gradient descent diverges at infinite width (wide members may too); \
                     --lr auto takes {:.4e}",
                    limit / 2.0
                );
            }
        }
    }
    Ok(lr)
}
