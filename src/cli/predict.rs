//! `widenet predict`: the mean and covariance of infinitely wide networks
//! trained by gradient descent, at several times and for both kernels at
//! once, on the test points and on the training points, in one `.npz`.

use super::kernel::{ArchArgs, Precision, compute, precision};
use std::path::PathBuf;
use widenet::error::{Error, Result};
use widenet::kernel::Want;
use widenet::npy;
use widenet::predict::{Get, PredictKernels, PredictSpec, gradient_descent_mse_ensemble};

#[derive(clap::Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  widenet predict --x-train xt.npy --y-train yt.npy --x-test xs.npy --t 1,10,inf --get nngp,ntk --out p.npz\n  widenet predict --x-train xt.npy --y-train yt.npy --x-test xs.npy --t 10 --mean-out m.npy --cov-out c.npy\n\n\
Mean and covariance of an infinite ensemble of infinitely wide networks trained by full-batch gradient\n\
descent on 1/(2N) sum (f - y)^2 (N = y.size) for time t = lr * steps, as neural-tangents'\n\
predict.gradient_descent_mse_ensemble; t = inf gives the exact posterior (gp_inference). nngp trains\n\
only the readout, ntk every layer. --diag-reg is relative to the mean of the train kernel's diagonal.\n\n\
--out writes one .npz: `times` [T] (inf as infinity), and for each kernel K in --get: `K_mean`\n\
[T, m, outputs] and `K_cov` [T, m, m] on the test points, `K_train_mean` [T, n, outputs] on the\n\
training points. --mean-out and --cov-out write one time and one kernel as .npy."
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
    /// Kernels that drive training: nngp, ntk, or both as nngp,ntk.
    #[arg(long, default_value = "ntk")]
    pub get: String,
    /// Training times: a comma-separated list of numbers and inf.
    #[arg(long, default_value = "inf")]
    pub t: String,
    /// Learning rate: the time is t * lr.
    #[arg(long, visible_alias = "learning-rate", default_value_t = 1.0)]
    pub lr: f64,
    /// Diagonal regularizer, relative to the mean diagonal of the train kernel.
    #[arg(long, default_value_t = 0.0)]
    pub diag_reg: f64,
    /// Output: one .npz with every time and kernel (see below).
    #[arg(long, required_unless_present = "mean_out")]
    pub out: Option<PathBuf>,
    /// Output for one time and one kernel: the test mean [m, outputs] as .npy.
    #[arg(long)]
    pub mean_out: Option<PathBuf>,
    /// Output for one time and one kernel: the test covariance [m, m] as .npy.
    #[arg(long, requires = "mean_out")]
    pub cov_out: Option<PathBuf>,
    /// Kernels in f64 (exact, CPU) or f32 (on the device); the linear algebra is f64 either way.
    #[arg(long, default_value = "f64")]
    pub precision: String,
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
            "--t must be non-negative numbers or inf, got '{s}'"
        ))),
    }
}

/// The settings, checked: times and kernels.
fn settings(a: &PredictArgs) -> Result<(Vec<Option<f64>>, Vec<Get>)> {
    let times: Vec<Option<f64>> = a.t.split(',').map(parse_time).collect::<Result<_>>()?;
    let gets: Vec<Get> = a
        .get
        .split(',')
        .map(|g| super::flag("--get", Get::parse(g.trim())))
        .collect::<Result<_>>()?;
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(Error::invalid(format!(
            "--lr must be positive, got {}",
            a.lr
        )));
    }
    if !(a.diag_reg.is_finite() && a.diag_reg >= 0.0) {
        return Err(Error::invalid(format!(
            "--diag-reg must be non-negative, got {}",
            a.diag_reg
        )));
    }
    if a.mean_out.is_some() && (times.len() > 1 || gets.len() > 1) {
        return Err(Error::invalid(
            "--mean-out and --cov-out take one time and one kernel; use --out P.npz for several",
        ));
    }
    for path in [&a.out, &a.mean_out, &a.cov_out].into_iter().flatten() {
        super::check_out(path)?;
    }
    if let Some(out) = &a.out {
        if out.extension().is_none_or(|e| e != "npz") {
            eprintln!(
                "warning: --out {} does not end in .npz; it is an .npz archive",
                out.display()
            );
        }
    }
    Ok((times, gets))
}

/// `widenet predict`.
pub fn run(a: &PredictArgs, device: Option<&str>) -> Result<()> {
    let prec = precision(&a.precision)?;
    let (times, gets) = settings(a)?;
    let xtr = npy::read_matrix(&a.x_train, "--x-train")?;
    let ytr = npy::read_targets(&a.y_train, "--y-train")?;
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
    let want = if gets.contains(&Get::Ntk) {
        Want::BOTH
    } else {
        Want::NNGP
    };
    let dd = compute(d, &arch, &xtr, None, want, super::quiet())?;
    let td = compute(d, &arch, &xte, Some(&xtr), want, super::quiet())?;
    let tt = compute(d, &arch, &xte, None, Want::NNGP, super::quiet())?.nngp;
    let missing = || Error::invalid("internal: kernel missing");
    let test = PredictKernels {
        dd_nngp: dd.nngp.clone().ok_or_else(missing)?,
        dd_ntk: dd.ntk.clone(),
        td_nngp: td.nngp.ok_or_else(missing)?,
        td_ntk: td.ntk,
        tt_nngp: tt,
    };
    let train = PredictKernels {
        td_nngp: test.dd_nngp.clone(),
        td_ntk: test.dd_ntk.clone(),
        tt_nngp: None,
        ..test.clone()
    };
    let spec = |get, t| PredictSpec {
        get,
        t,
        learning_rate: a.lr,
        diag_reg: a.diag_reg,
    };
    if let Some(mean_out) = &a.mean_out {
        let out = gradient_descent_mse_ensemble(&test, &ytr, &spec(gets[0], times[0]))?;
        npy::write(
            mean_out,
            &[out.mean.rows(), out.mean.cols()],
            out.mean.data(),
        )?;
        eprintln!("wrote {}", mean_out.display());
        if let (Some(path), Some(cov)) = (&a.cov_out, &out.cov) {
            npy::write(path, &[cov.rows(), cov.cols()], cov.data())?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let Some(path) = &a.out else {
        return Err(Error::invalid("give --out P.npz (or --mean-out)"));
    };
    let mut arrays: Vec<(String, Vec<usize>, Vec<f64>)> = vec![(
        "times".into(),
        vec![times.len()],
        times.iter().map(|t| t.unwrap_or(f64::INFINITY)).collect(),
    )];
    let (n, m, outs) = (xtr.rows(), xte.rows(), ytr.cols());
    for &get in &gets {
        let name = if get == Get::Ntk { "ntk" } else { "nngp" };
        let (mut mean, mut cov, mut train_mean) = (Vec::new(), Vec::new(), Vec::new());
        for &t in &times {
            let p = gradient_descent_mse_ensemble(&test, &ytr, &spec(get, t))?;
            mean.extend_from_slice(p.mean.data());
            cov.extend_from_slice(p.cov.as_ref().ok_or_else(missing)?.data());
            let q = gradient_descent_mse_ensemble(&train, &ytr, &spec(get, t))?;
            train_mean.extend_from_slice(q.mean.data());
        }
        let k = times.len();
        arrays.push((format!("{name}_mean"), vec![k, m, outs], mean));
        arrays.push((format!("{name}_cov"), vec![k, m, m], cov));
        arrays.push((format!("{name}_train_mean"), vec![k, n, outs], train_mean));
    }
    npy::write_npz(path, &arrays)?;
    let names: Vec<&str> = arrays.iter().map(|a| a.0.as_str()).collect();
    eprintln!("wrote {} ({})", path.display(), names.join(", "));
    Ok(())
}
