//! `widenet empirical-kernel`: the NTK or NNGP of every member of a trained
//! (or freshly initialized) ensemble, and its distance to the analytic kernel.

use std::path::PathBuf;
use widenet::error::{Error, Result};
use widenet::kernel::{Want, kernels_f64};
use widenet::matrix::Matrix;
use widenet::net::empirical::{empirical_kernels, kernel_distance};
use widenet::net::{Ensemble, Params};
use widenet::npy;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  widenet empirical-kernel --params p.safetensors --x1 x.npy --get ntk --out k.npy\n  widenet empirical-kernel --params p.safetensors --x1 a.npy --x2 b.npy --get nngp --out k.npy --against-analytic\n\n\
Writes [E, n1, n2] float32: member e's kernel between the points of --x1 and --x2 (default --x1). The\n\
NTK is that of the parameters as stored, sum over parameters of df(x)/dp df(x')/dp, averaged over the\n\
outputs (neural-tangents' empirical_ntk_fn with trace_axes=(-1,)); the NNGP is that of the readout given\n\
the features it reads (the network must end with a Dense layer). --against-analytic prints each\n\
member's relative Frobenius distance to the infinite-width kernel of the same architecture (ntk and\n\
standard parameterizations; it shrinks like width^-1/2)."
)]
pub struct EmpiricalArgs {
    /// Parameters (safetensors written by `widenet init` or `widenet train`).
    #[arg(long)]
    pub params: PathBuf,
    /// Points [n1, d_in].
    #[arg(long)]
    pub x1: PathBuf,
    /// Second set of points [n2, d_in]; default: --x1.
    #[arg(long)]
    pub x2: Option<PathBuf>,
    /// ntk or nngp.
    #[arg(long, default_value = "ntk")]
    pub get: String,
    /// Output .npy [E, n1, n2].
    #[arg(long)]
    pub out: PathBuf,
    /// Also print each member's relative distance to the analytic kernel.
    #[arg(long)]
    pub against_analytic: bool,
}

/// `widenet empirical-kernel`.
pub fn run(a: &EmpiricalArgs, device: Option<&str>) -> Result<()> {
    super::check_out_ext(&a.out, "--out", "npy")?;
    let ntk = match a.get.to_ascii_lowercase().as_str() {
        "ntk" => true,
        "nngp" => false,
        other => {
            return Err(Error::invalid(format!(
                "--get must be ntk or nngp, got '{other}'"
            )));
        }
    };
    let p = Params::load(&a.params)?;
    let x1 = npy::read_matrix(&a.x1, "--x1")?.to_f32();
    let x2 =
        a.x2.as_ref()
            .map(|x| npy::read_matrix(x, "--x2"))
            .transpose()?
            .map(|m| m.to_f32());
    for (flag, x) in [("--x1", Some(&x1)), ("--x2", x2.as_ref())] {
        if let Some(x) = x {
            if x.cols() != p.spec.d_in {
                return Err(Error::shape(
                    "empirical-kernel",
                    format!(
                        "{flag} has {} features but the network has d_in = {}",
                        x.cols(),
                        p.spec.d_in
                    ),
                ));
            }
        }
    }
    // One set of points: x1, then x2 when given; the kernel's x1-by-x2 block.
    let (n1, n2) = (x1.rows(), x2.as_ref().map_or(x1.rows(), |x| x.rows()));
    let mut data = x1.data().to_vec();
    if let Some(x) = &x2 {
        data.extend_from_slice(x.data());
    }
    let n = n1 + if x2.is_some() { n2 } else { 0 };
    let z = Matrix::from_vec(n, p.spec.d_in, data)?;
    let dev = super::open_device(device)?;
    let mut ens = Ensemble::new(dev.as_ref(), &p)?;
    let k = empirical_kernels(&mut ens, &z)?;
    let full = if ntk {
        k.ntk
    } else {
        k.nngp.ok_or_else(|| {
            Error::invalid("--get nngp: the network does not end with a Dense layer")
        })?
    };
    let e = p.spec.ensemble;
    let c0 = if x2.is_some() { n1 } else { 0 };
    let mut out = Vec::with_capacity(e * n1 * n2);
    for m in 0..e {
        for i in 0..n1 {
            let row = (m * n + i) * n + c0;
            out.extend_from_slice(&full[row..row + n2]);
        }
    }
    if a.against_analytic {
        report_distances(&p, &x1, x2.as_ref(), &out, ntk, n1 * n2)?;
    }
    npy::write(&a.out, &[e, n1, n2], &out)?;
    eprintln!(
        "wrote {} ({e} x {n1} x {n2} {})",
        a.out.display(),
        if ntk { "ntk" } else { "nngp" }
    );
    Ok(())
}

/// Prints each member's relative Frobenius distance to the analytic kernel.
fn report_distances(
    p: &Params,
    x1: &Matrix<f32>,
    x2: Option<&Matrix<f32>>,
    kernels: &[f32],
    ntk: bool,
    per: usize,
) -> Result<()> {
    if p.spec.parameterization.is_some_and(|q| !q.is_per_layer()) {
        return Err(Error::invalid(
            "--against-analytic: muP and mean-field networks have no infinite-width kernel here",
        ));
    }
    let want = if ntk { Want::NTK } else { Want::NNGP };
    let x2_64 = x2.map(|x| x.to_f64());
    let k = kernels_f64(&p.spec.arch, &x1.to_f64(), x2_64.as_ref(), want)?;
    let analytic: Vec<f32> = k
        .ntk
        .or(k.nngp)
        .ok_or_else(|| Error::invalid("internal: no analytic kernel"))?
        .data()
        .iter()
        .map(|&v| v as f32)
        .collect();
    let d: Vec<f64> = kernels
        .chunks(per)
        .map(|m| kernel_distance(m, &analytic))
        .collect();
    let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
    println!("relative distance to the analytic kernel: mean {mean:.4e}");
    for (m, v) in d.iter().enumerate() {
        println!("  member {m}: {v:.4e}");
    }
    Ok(())
}
