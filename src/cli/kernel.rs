//! `widenet kernel` and `widenet predict`: infinite-width kernels and the
//! predictions of infinitely wide networks, from `.npy` to `.npy`.

use std::path::PathBuf;
use widenet::activation::Activation;
use widenet::arch::{Arch, Mlp, Parameterization};
use widenet::error::{Error, Result};
use widenet::kernel::{Kernels, Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;
use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};
use widenet::{Backend, npy};

/// The architecture flags shared by `kernel`, `predict` and `bench kernel`.
#[derive(clap::Args, Debug, Clone)]
pub struct ArchArgs {
    /// The architecture: a JSON file, or the layers inline in JSON or the short form, e.g.
    /// 'Dense(512, W_std=1.5, b_std=0.1), Relu, Residual(Relu, Dense(512)), LayerNorm, Dense(1)'
    /// (see README, "Architectures"). Replaces the shorthand flags below.
    #[arg(long)]
    pub arch: Option<String>,
    /// Shorthand activation: identity (or linear), relu, leaky-relu[:ALPHA], abs, abrelu:A,B, erf[:A,B,C], tanh, sigmoid, gelu, sign.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Number of hidden layers (Dense then activation); a Dense(1) readout follows.
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// Weight standard deviation W_std of every Dense layer.
    #[arg(long, default_value_t = 1.0)]
    pub w_std: f64,
    /// Bias standard deviation b_std of every Dense layer.
    #[arg(long, default_value_t = 0.0)]
    pub b_std: f64,
    /// ntk or standard (neural-tangents' Dense parameterization).
    #[arg(long, default_value = "ntk")]
    pub parameterization: String,
    /// Hidden width; only the standard-parameterization NTK depends on it.
    #[arg(long, default_value_t = 512)]
    pub width: usize,
}

impl ArchArgs {
    /// The architecture the flags describe, checked for `d_in` inputs.
    pub fn build(&self, d_in: usize) -> Result<Arch> {
        let a = match &self.arch {
            Some(spec) => read_arch(spec)?,
            None => {
                super::check_sizes(&[("--width", self.width)])?;
                super::check_scales(&[("--w-std", self.w_std), ("--b-std", self.b_std)])?;
                let parameterization = super::flag(
                    "--parameterization",
                    Parameterization::parse(&self.parameterization),
                )?;
                if !parameterization.is_per_layer() {
                    return Err(Error::invalid(
                        "--parameterization: kernels exist for ntk and standard",
                    ));
                }
                Arch::mlp(&Mlp {
                    depth: self.depth,
                    width: self.width,
                    activation: super::flag("--activation", Activation::parse(&self.activation))?,
                    w_std: self.w_std,
                    b_std: Some(self.b_std),
                    parameterization,
                    d_out: 1,
                })
            }
        };
        a.output_width(d_in)?;
        Ok(a)
    }
}

/// An architecture from `--arch`: a file holding the JSON form, or the
/// layers inline (JSON or the short form).
pub(crate) fn read_arch(spec: &str) -> Result<Arch> {
    let path = std::path::Path::new(spec);
    if !spec.trim_start().starts_with('[') && path.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, "read the architecture", e))?;
        return Arch::from_json(&text).map_err(|e| Error::file(path, e));
    }
    Arch::parse(spec).map_err(|e| Error::invalid(format!("--arch: {e}")))
}

#[derive(clap::Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = "Example:\n  widenet kernel --x1 x.npy --activation erf --depth 3 --w-std 1.5 --b-std 0.1 --get ntk --out k.npy\n\n\
Inputs are .npy arrays of shape [points, features] (float32, float64 or integers). The first\n\
layer sees x . x' / d_in, as in neural-tangents. Without --x2 the kernel of x1 with itself is computed\n\
(and only its upper triangle of tiles). f32 runs on the chosen device in tiles of 2048 x 2048, so any\n\
number of points fits; f64 runs on the CPU."
)]
pub struct KernelArgs {
    /// Points, a [n1, d] .npy array.
    #[arg(long)]
    pub x1: PathBuf,
    /// Second set of points [n2, d]; default: x1.
    #[arg(long)]
    pub x2: Option<PathBuf>,
    #[command(flatten)]
    pub arch: ArchArgs,
    /// nngp or ntk.
    #[arg(long, default_value = "ntk")]
    pub get: String,
    /// Output .npy file [n1, n2].
    #[arg(long)]
    pub out: PathBuf,
    /// f32 (on the device) or f64 (exact, on the CPU). The file is written in this precision.
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    F32,
    F64,
}

fn precision(s: &str) -> Result<Precision> {
    match s {
        "f32" | "float32" => Ok(Precision::F32),
        "f64" | "float64" => Ok(Precision::F64),
        _ => Err(Error::invalid(format!(
            "--precision must be f32 or f64, got '{s}'"
        ))),
    }
}

fn want_of(get: Get) -> Want {
    match get {
        Get::Nngp => Want::NNGP,
        Get::Ntk => Want::NTK,
    }
}

fn progress(quiet: bool) -> impl FnMut(usize, usize) {
    move |done, total| {
        if !quiet && total > 1 {
            eprint!("\rtiles {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    }
}

/// Kernels of (x1, x2) in the requested precision, as f64 matrices.
fn compute(
    dev: Option<&dyn Backend>,
    arch: &Arch,
    x1: &Matrix,
    x2: Option<&Matrix>,
    want: Want,
    quiet: bool,
) -> Result<Kernels<f64>> {
    match dev {
        None => kernels_f64(arch, x1, x2, want),
        Some(d) => {
            let x2f = x2.map(|x| x.to_f32());
            let k = kernels_device(d, arch, &x1.to_f32(), x2f.as_ref(), want, progress(quiet))?;
            Ok(Kernels {
                nngp: k.nngp.map(|m| m.to_f64()),
                ntk: k.ntk.map(|m| m.to_f64()),
            })
        }
    }
}

pub fn run_kernel(a: &KernelArgs, device: Option<&str>) -> Result<()> {
    let prec = precision(&a.precision)?;
    let get = super::flag("--get", Get::parse(&a.get))?;
    super::check_out(&a.out)?;
    let x1 = npy::read_matrix(&a.x1, "--x1")?;
    let x2 =
        a.x2.as_ref()
            .map(|p| npy::read_matrix(p, "--x2"))
            .transpose()?;
    if let Some(x2) = &x2 {
        if x2.cols() != x1.cols() {
            return Err(Error::shape(
                "kernel",
                format!("--x1 has {} features but --x2 has {}", x1.cols(), x2.cols()),
            ));
        }
    }
    let arch = a.arch.build(x1.cols())?;
    let n2 = x2.as_ref().map_or(x1.rows(), |x| x.rows());
    match prec {
        Precision::F64 => {
            let k = kernels_f64(&arch, &x1, x2.as_ref(), want_of(get))?;
            let m = k
                .nngp
                .or(k.ntk)
                .ok_or_else(|| Error::invalid("no kernel computed"))?;
            npy::write(&a.out, &[x1.rows(), n2], m.data())?;
        }
        Precision::F32 => {
            let dev = super::open_device(device)?;
            let x2f = x2.as_ref().map(|x| x.to_f32());
            let k = kernels_device(
                dev.as_ref(),
                &arch,
                &x1.to_f32(),
                x2f.as_ref(),
                want_of(get),
                progress(a.quiet),
            )?;
            let m = k
                .nngp
                .or(k.ntk)
                .ok_or_else(|| Error::invalid("no kernel computed"))?;
            npy::write(&a.out, &[x1.rows(), n2], m.data())?;
        }
    }
    if !a.quiet {
        eprintln!(
            "wrote {} ({} x {} {} {:?})",
            a.out.display(),
            x1.rows(),
            n2,
            a.get,
            prec
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = "Example:\n  widenet predict --x-train xt.npy --y-train yt.npy --x-test xs.npy --get ntk --t 10 --mean-out m.npy --cov-out c.npy\n\n\
Mean and covariance of an infinite ensemble of infinitely wide networks trained by full-batch gradient\n\
descent on 1/(2N) sum (f - y)^2 (N = y.size) for time t = learning_rate * steps, as neural-tangents'\n\
predict.gradient_descent_mse_ensemble; --t inf gives the exact posterior (gp_inference). --get nngp\n\
trains only the readout. --diag-reg is relative to the mean of the train kernel's diagonal."
)]
pub struct PredictArgs {
    /// Training inputs [n, d].
    #[arg(long)]
    pub x_train: PathBuf,
    /// Training targets [n, outputs] (or [n]).
    #[arg(long)]
    pub y_train: PathBuf,
    /// Test inputs [m, d].
    #[arg(long)]
    pub x_test: PathBuf,
    #[command(flatten)]
    pub arch: ArchArgs,
    /// nngp or ntk.
    #[arg(long, default_value = "ntk")]
    pub get: String,
    /// Training time (a number, or inf).
    #[arg(long, default_value = "inf")]
    pub t: String,
    /// Learning rate: the time is t * learning_rate.
    #[arg(long, default_value_t = 1.0)]
    pub learning_rate: f64,
    /// Diagonal regularizer, relative to the mean diagonal of the train kernel.
    #[arg(long, default_value_t = 0.0)]
    pub diag_reg: f64,
    /// Output: mean [m, outputs].
    #[arg(long)]
    pub mean_out: PathBuf,
    /// Output: covariance [m, m].
    #[arg(long)]
    pub cov_out: Option<PathBuf>,
    /// Kernels in f64 (exact, CPU) or f32 (on the device); the linear algebra is f64 either way.
    #[arg(long, default_value = "f64")]
    pub precision: String,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_time(s: &str) -> Result<Option<f64>> {
    let t = s.trim().to_ascii_lowercase();
    if t == "inf" || t == "infinity" {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_infinite() && v > 0.0 => Ok(None),
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(Error::invalid(format!(
            "--t must be a non-negative number or inf, got '{s}'"
        ))),
    }
}

pub fn run_predict(a: &PredictArgs, device: Option<&str>) -> Result<()> {
    let prec = precision(&a.precision)?;
    let spec = PredictSpec {
        get: super::flag("--get", Get::parse(&a.get))?,
        t: parse_time(&a.t)?,
        learning_rate: a.learning_rate,
        diag_reg: a.diag_reg,
    };
    if !(spec.learning_rate.is_finite() && spec.learning_rate > 0.0) {
        return Err(Error::invalid(format!(
            "--learning-rate must be positive, got {}",
            spec.learning_rate
        )));
    }
    if !(spec.diag_reg.is_finite() && spec.diag_reg >= 0.0) {
        return Err(Error::invalid(format!(
            "--diag-reg must be non-negative, got {}",
            spec.diag_reg
        )));
    }
    super::check_out(&a.mean_out)?;
    if let Some(c) = &a.cov_out {
        super::check_out(c)?;
    }
    let xtr = npy::read_matrix(&a.x_train, "--x-train")?;
    let ytr = npy::read_matrix(&a.y_train, "--y-train")?;
    let xte = npy::read_matrix(&a.x_test, "--x-test")?;
    if ytr.rows() != xtr.rows() {
        return Err(Error::shape(
            "predict",
            format!(
                "--y-train has {} rows but --x-train has {} points",
                ytr.rows(),
                xtr.rows()
            ),
        ));
    }
    if xte.cols() != xtr.cols() {
        return Err(Error::shape(
            "predict",
            format!(
                "--x-test has {} features but --x-train has {}",
                xte.cols(),
                xtr.cols()
            ),
        ));
    }
    let arch = a.arch.build(xtr.cols())?;
    let dev = match prec {
        Precision::F64 => None,
        Precision::F32 => Some(super::open_device(device)?),
    };
    let d = dev.as_deref();
    let want = if spec.get == Get::Ntk {
        Want::BOTH
    } else {
        Want::NNGP
    };
    let dd = compute(d, &arch, &xtr, None, want, a.quiet)?;
    let td = compute(d, &arch, &xte, Some(&xtr), want, a.quiet)?;
    let tt = if a.cov_out.is_some() {
        compute(d, &arch, &xte, None, Want::NNGP, a.quiet)?.nngp
    } else {
        None
    };
    let missing = || Error::invalid("internal: kernel missing");
    let k = PredictKernels {
        dd_nngp: dd.nngp.ok_or_else(missing)?,
        dd_ntk: dd.ntk,
        td_nngp: td.nngp.ok_or_else(missing)?,
        td_ntk: td.ntk,
        tt_nngp: tt,
    };
    let out = gradient_descent_mse_ensemble(&k, &ytr, &spec)?;
    npy::write(
        &a.mean_out,
        &[out.mean.rows(), out.mean.cols()],
        out.mean.data(),
    )?;
    if let (Some(path), Some(cov)) = (&a.cov_out, &out.cov) {
        npy::write(path, &[cov.rows(), cov.cols()], cov.data())?;
    }
    if !a.quiet {
        eprintln!(
            "wrote {}{}",
            a.mean_out.display(),
            a.cov_out
                .as_ref()
                .map(|p| format!(" and {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
