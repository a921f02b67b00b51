//! `widenet hessian`: the top of the Hessian's spectrum and its trace for
//! every member of a parameter file, on the device.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use widenet::backend::Loss;
use widenet::error::{Error, Result};
use widenet::net::ensemble::Ensemble;
use widenet::net::hvp::Hvp;
use widenet::net::params::Params;
use widenet::net::spectrum::{SpectrumConfig, spectrum};
use widenet::npy;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  widenet hessian --params p.safetensors --x x.npy --y y.npy --top 5\n  widenet hessian --params p.safetensors --x x.npy --y labels.npy --loss xent --top 3 --json --out v.npy\n\n\
The Hessian is that of the training loss with respect to the parameters as stored in the file\n\
(layers.{l}.weight, layers.{l}.bias, file order): mse is 1/(2N) sum (f - y)^2 with N = y.size, xent\n\
the softmax cross-entropy averaged over rows (y: class labels [n] or rows of probabilities). Every\n\
member at once on the device: Lanczos with full reorthogonalization on exact Hessian-vector products\n\
(forward over reverse) for the top eigenvalues, Hutchinson's estimator (deflated by the Krylov basis)\n\
for the trace. --json prints {\"members\": [{\"eigenvalues\": [...], \"trace\": t, \"hvps\": k, ...}]}.\n\
--out writes the eigenvectors: .npy as [E, top, P] (each member's parameters flattened in file\n\
order), .safetensors as layers.{l}.weight [E, top, fan_out, fan_in] and layers.{l}.bias [E, top, fan_out]."
)]
pub struct HessianArgs {
    /// Parameters (safetensors, as `widenet init` and `widenet train` write them).
    #[arg(long)]
    pub params: PathBuf,
    /// Inputs [n, d_in].
    #[arg(long)]
    pub x: PathBuf,
    /// Targets [n, d_out], or class labels [n] for xent.
    #[arg(long)]
    pub y: PathBuf,
    /// mse or xent.
    #[arg(long, default_value = "mse")]
    pub loss: String,
    /// The largest eigenvalues wanted per member.
    #[arg(long, default_value_t = 1)]
    pub top: usize,
    /// Most Lanczos steps (Hessian-vector products) per member.
    #[arg(long, default_value_t = 100)]
    pub iters: usize,
    /// Convergence: each Ritz residual below this times the largest Ritz value.
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Hutchinson probes of the trace (0: no trace).
    #[arg(long, default_value_t = 10)]
    pub probes: usize,
    /// Seed of the Lanczos start vectors and the probes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the eigenvectors (.npy or .safetensors).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Parses `mse` or `xent`.
pub(crate) fn parse_loss(s: &str) -> Result<Loss> {
    match s {
        "mse" => Ok(Loss::Mse),
        "xent" | "cross-entropy" => Ok(Loss::Xent),
        o => Err(Error::invalid(format!(
            "--loss: unknown loss '{o}' (expected mse or xent)"
        ))),
    }
}

pub fn run(a: &HessianArgs, device: Option<&str>) -> Result<()> {
    let loss = parse_loss(&a.loss)?;
    super::check_sizes(&[("--top", a.top), ("--iters", a.iters)])?;
    if !(a.tol.is_finite() && a.tol > 0.0) {
        return Err(Error::invalid(format!(
            "--tol must be positive and finite, got {}",
            a.tol
        )));
    }
    if let Some(out) = &a.out {
        super::check_out(out)?;
        if !matches!(
            out.extension().and_then(|e| e.to_str()),
            Some("npy" | "safetensors")
        ) {
            return Err(Error::file(out, "--out must end in .npy or .safetensors"));
        }
    }
    let p = Params::load(&a.params)?;
    let x = npy::read_matrix(&a.x, "--x")?.to_f32();
    let y = npy::read_targets(&a.y, "--y")?.to_f32();
    let dev = super::open_device(device)?;
    let ens = Ensemble::new(dev.as_ref(), &p)?;
    let mut hvp = Hvp::new(&ens, &x, &y, loss)?;
    hvp.prepare()?;
    let cfg = SpectrumConfig {
        top: a.top,
        max_iters: a.iters,
        tol: a.tol,
        probes: a.probes,
        seed: a.seed,
    };
    let s = spectrum(&mut hvp, &cfg, None, a.out.is_some())?;
    if let (Some(out), Some(vecs)) = (&a.out, &s.eigenvectors) {
        // Per tensor [E, rows, n] from one direction per rank.
        let ranks = vecs
            .iter()
            .map(|v| v.read(dev.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let e = p.spec.ensemble;
        let host: Vec<Vec<f32>> = (0..ranks.first().map_or(0, |r| r.len()))
            .map(|t| {
                let n = ranks[0][t].len() / e;
                let mut v = Vec::with_capacity(e * ranks.len() * n);
                for m in 0..e {
                    for r in &ranks {
                        v.extend_from_slice(&r[t][m * n..(m + 1) * n]);
                    }
                }
                v
            })
            .collect();
        save_vectors(out, &p, &host, ranks.len())?;
    }
    let unconverged = s.members.iter().filter(|m| !m.converged).count();
    if unconverged > 0 {
        eprintln!(
            "warning: {unconverged} member(s) did not converge to --tol {} within --iters {} (residuals in the output)",
            a.tol, a.iters
        );
    }
    if a.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "members": s.members }))
            .map_err(|e| Error::invalid(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "Hessian of the {} loss of {} member(s) on {} points ({}), on {}",
        a.loss,
        p.spec.ensemble,
        x.rows(),
        p.spec.arch,
        dev.describe()
    );
    for (e, m) in s.members.iter().enumerate() {
        let vals: Vec<String> = m.eigenvalues.iter().map(|v| format!("{v:.6e}")).collect();
        let trace = match (m.trace, m.trace_stderr) {
            (Some(t), Some(se)) => format!("{t:.6e} +- {se:.1e}"),
            _ => "-".into(),
        };
        println!(
            "  member {e}: top eigenvalues [{}], trace {trace}, {} Hessian-vector products{}",
            vals.join(", "),
            m.hvps,
            if m.converged { "" } else { " (not converged)" }
        );
    }
    if let Some(out) = &a.out {
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// Writes the eigenvectors (`[E, rows, n]` per tensor, file order).
fn save_vectors(path: &Path, p: &Params, tensors: &[Vec<f32>], rows: usize) -> Result<()> {
    let e = p.spec.ensemble;
    let layers = p.spec.dense_layers();
    // (name, shape after [E, rows]) of every tensor, file order.
    let mut names: Vec<(String, Vec<usize>)> = Vec::new();
    for l in &layers {
        names.push((
            format!("layers.{}.weight", l.index),
            vec![l.fan_out, l.fan_in],
        ));
        if l.dense.has_bias() {
            names.push((format!("layers.{}.bias", l.index), vec![l.fan_out]));
        }
    }
    if path.extension().is_some_and(|x| x == "npy") {
        let per: usize = names.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        let mut flat = Vec::with_capacity(e * rows * per);
        for m in 0..e {
            for r in 0..rows {
                for ((_, shape), t) in names.iter().zip(tensors) {
                    let n: usize = shape.iter().product();
                    let at = (m * rows + r) * n;
                    flat.extend_from_slice(&t[at..at + n]);
                }
            }
        }
        return npy::write(path, &[e, rows, per], &flat);
    }
    let mut views = Vec::new();
    for ((name, shape), t) in names.iter().zip(tensors) {
        let mut full = vec![e, rows];
        full.extend(shape);
        let view = safetensors::tensor::TensorView::new(
            safetensors::tensor::Dtype::F32,
            full,
            bytemuck::cast_slice(t),
        )
        .map_err(|err| Error::file(path, err))?;
        views.push((name.clone(), view));
    }
    let spec = serde_json::to_string(&p.spec).map_err(|err| Error::file(path, err))?;
    let meta = HashMap::from([
        ("widenet.spec".to_string(), spec),
        (
            "widenet.content".to_string(),
            "hessian eigenvectors [E, top, ...]".to_string(),
        ),
    ]);
    let bytes =
        safetensors::tensor::serialize(views, Some(meta)).map_err(|err| Error::file(path, err))?;
    widenet::atomic::write_atomic(path, &bytes)
}
