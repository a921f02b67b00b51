//! `widenet kernel` and `widenet predict`: infinite-width kernels and the
//! predictions of infinitely wide networks, from `.npy` to `.npy`.

use std::path::PathBuf;
use widenet::activation::Activation;
use widenet::arch::{Arch, Mlp, Parameterization};
use widenet::error::{Error, Result};
use widenet::kernel::{Kernels, Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;
use widenet::predict::Get;
use widenet::{Backend, npy};

/// The architecture flags shared by `kernel`, `predict` and `bench kernel`.
#[derive(clap::Args, Debug, Clone)]
pub struct ArchArgs {
    /// The architecture: a JSON file, or the layers inline in JSON or the short form, e.g.
    /// 'Dense(512, W_std=1.5, b_std=0.1), Relu, Residual(Relu, Dense(512)), LayerNorm, Dense(1)'
    /// (see README, "Architectures"). Replaces the shorthand flags below.
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long, help = super::ACTIVATION_HELP, default_value = "relu")]
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
    /// Points, a [n1, d] .npy array (`--x` is the same flag).
    #[arg(long, alias = "x", required_unless_present = "check")]
    pub x1: Option<PathBuf>,
    /// Second set of points [n2, d]; default: x1.
    #[arg(long)]
    pub x2: Option<PathBuf>,
    #[command(flatten)]
    pub arch: ArchArgs,
    /// nngp or ntk.
    #[arg(long, default_value = "ntk")]
    pub get: String,
    /// Output .npy file [n1, n2].
    #[arg(long, required_unless_present = "check")]
    pub out: Option<PathBuf>,
    /// Compute only block I of N of the rows (rows I*n1/N up to (I+1)*n1/N) into --out, which
    /// the first worker creates at full size: N workers, at once or not, on a shared file
    /// system fill one kernel. A folder OUT.blocks records the finished blocks.
    #[arg(long, value_name = "I/N", conflicts_with = "check")]
    pub rows: Option<String>,
    /// Say whether every block of a kernel written with --rows is finished (exit code 2 if not,
    /// naming the missing blocks).
    #[arg(long, value_name = "K.npy")]
    pub check: Option<PathBuf>,
    /// f32 (on the device) or f64 (exact, on the CPU). The file is written in this precision.
    #[arg(long, default_value = "f32")]
    pub precision: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    /// On the device.
    F32,
    /// Exact, on the CPU.
    F64,
}

pub(crate) fn precision(s: &str) -> Result<Precision> {
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
pub(crate) fn compute(
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
    if let Some(k) = &a.check {
        return super::kernel_rows::check(k);
    }
    let (Some(x1_path), Some(out)) = (&a.x1, &a.out) else {
        return Err(Error::invalid("--x1 and --out are needed"));
    };
    let prec = precision(&a.precision)?;
    let get = super::flag("--get", Get::parse(&a.get))?;
    super::check_out_ext(out, "--out", "npy")?;
    let x1 = npy::read_matrix(x1_path, "--x1")?;
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
    if let Some(rows) = &a.rows {
        let dev = match prec {
            Precision::F64 => None,
            Precision::F32 => Some(super::open_device(device)?),
        };
        let job = super::kernel_rows::Job {
            arch: &arch,
            x1: &x1,
            x2: x2.as_ref(),
            get: &a.get,
            want: want_of(get),
            f64: prec == Precision::F64,
        };
        return super::kernel_rows::run(dev.as_deref(), &job, rows, out, super::quiet());
    }
    match prec {
        Precision::F64 => {
            let k = kernels_f64(&arch, &x1, x2.as_ref(), want_of(get))?;
            let m = k
                .nngp
                .or(k.ntk)
                .ok_or_else(|| Error::invalid("no kernel computed"))?;
            npy::write(out, &[x1.rows(), n2], m.data())?;
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
                progress(super::quiet()),
            )?;
            let m = k
                .nngp
                .or(k.ntk)
                .ok_or_else(|| Error::invalid("no kernel computed"))?;
            npy::write(out, &[x1.rows(), n2], m.data())?;
        }
    }
    eprintln!(
        "wrote {} ({} x {} {} {:?})",
        out.display(),
        x1.rows(),
        n2,
        a.get,
        prec
    );
    Ok(())
}
