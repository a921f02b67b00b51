//! `widenet kernel --rows I/N` (one block of rows into a shared `.npy`) and
//! `widenet kernel --check K.npy`.

use widenet::Backend;
use widenet::arch::Arch;
use widenet::error::{Error, Result};
use widenet::kernel::Want;
use widenet::matrix::Matrix;
use widenet::npy_rows::{self, RowJob};

/// What one worker computes.
pub(crate) struct Job<'a> {
    pub arch: &'a Arch,
    pub x1: &'a Matrix,
    pub x2: Option<&'a Matrix>,
    pub get: &'a str,
    pub want: Want,
    pub f64: bool,
}

fn parse_rows(text: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::invalid(format!(
            "--rows: expected I/N with 0 <= I < N (e.g. 0/8), got '{text}'"
        ))
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Hash of everything the kernel depends on, so that workers of another job
/// are refused.
fn inputs_hash(j: &Job<'_>) -> String {
    let mut bytes = serde_json::to_vec(j.arch).unwrap_or_default();
    bytes.extend_from_slice(j.get.as_bytes());
    for m in [Some(j.x1), j.x2].into_iter().flatten() {
        bytes.extend_from_slice(&(m.rows() as u64).to_le_bytes());
        for v in m.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    widenet::experiments::shard::fingerprint_hash(&bytes)
}

/// Computes block `I/N` of the rows and writes it into `out`.
pub(crate) fn run(
    dev: Option<&dyn Backend>,
    j: &Job<'_>,
    rows: &str,
    out: &std::path::Path,
    quiet: bool,
) -> Result<()> {
    let (i, n) = parse_rows(rows)?;
    let cols = j.x2.map_or(j.x1.rows(), |x| x.rows());
    let job = RowJob {
        rows: j.x1.rows(),
        cols,
        dtype: if j.f64 { "<f8" } else { "<f4" }.into(),
        count: n,
        inputs: inputs_hash(j),
    };
    npy_rows::prepare(out, &job)?;
    let (a, b) = job.block(i);
    let d = j.x1.cols();
    let block = Matrix::from_vec(b - a, d, j.x1.data()[a * d..b * d].to_vec())?;
    let mut bytes = Vec::with_capacity((b - a) * cols * if j.f64 { 8 } else { 4 });
    if b > a {
        let k = super::kernel::compute(
            dev,
            j.arch,
            &block,
            Some(j.x2.unwrap_or(j.x1)),
            j.want,
            quiet,
        )?;
        let mut m = k
            .nngp
            .or(k.ntk)
            .ok_or_else(|| Error::invalid("no kernel computed"))?;
        if j.x2.is_none() {
            // The block against all of x1 holds the block's diagonal entries
            // (i, a + i) among the off-diagonal ones, where the f32 angle of a
            // point with itself loses digits (1e-4 for ReLU); the block's own
            // kernel takes them by the exact diagonal path, as the whole
            // kernel does. Costs a 1/N-th more.
            let own = super::kernel::compute(dev, j.arch, &block, None, j.want, quiet)?;
            let own = own
                .nngp
                .or(own.ntk)
                .ok_or_else(|| Error::invalid("no kernel computed"))?;
            let r = b - a;
            for i in 0..r {
                m.data_mut()[i * cols + a + i] = own.data()[i * r + i];
            }
        }
        for v in m.data() {
            if j.f64 {
                bytes.extend_from_slice(&v.to_le_bytes());
            } else {
                bytes.extend_from_slice(&(*v as f32).to_le_bytes());
            }
        }
    }
    npy_rows::write_block(out, &job, i, &bytes)?;
    let left = npy_rows::missing(out, &job).len();
    eprintln!(
        "wrote rows {a}..{b} of {} ({} x {}); {left} of {n} blocks still missing",
        out.display(),
        job.rows,
        job.cols
    );
    Ok(())
}

/// `--check K.npy`: complete, or the missing blocks (exit code 2).
pub(crate) fn check(path: &std::path::Path) -> Result<()> {
    let job = npy_rows::read_job(path)?;
    let missing = npy_rows::missing(path, &job);
    if missing.is_empty() {
        println!(
            "{}: complete ({} x {} {}, {} blocks)",
            path.display(),
            job.rows,
            job.cols,
            job.dtype,
            job.count
        );
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|&i| {
            let (a, b) = job.block(i);
            format!("{i}/{} (rows {a}..{b})", job.count)
        })
        .collect();
    Err(Error::invalid(format!(
        "{}: incomplete, {} of {} blocks missing: {}",
        path.display(),
        missing.len(),
        job.count,
        names.join(", ")
    )))
}
