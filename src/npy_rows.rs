//! A large `.npy` matrix filled block of rows by block of rows, by workers
//! that may run at once on a shared file system (`widenet kernel --rows I/N`).
//!
//! The first worker to arrive creates the full-size file (header, then
//! zeros) under a temporary name and links it into place, which fails for
//! every later worker (so exactly one creates it); each worker writes its
//! rows at their offsets through its own file handle, syncs, and then marks
//! its block done with a file of its own in `K.npy.blocks/` (no shared file
//! is written twice). `job.json` there records the shape, the element type,
//! the number of blocks and a hash of the inputs, so that workers of another
//! job are refused.

use crate::error::{Error, Result};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One job: a `rows x cols` matrix in `count` blocks of rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowJob {
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// `"<f4"` or `"<f8"`.
    pub dtype: String,
    /// Blocks of rows.
    pub count: usize,
    /// A hash of what is computed (inputs, architecture, kernel).
    pub inputs: String,
}

impl RowJob {
    /// Rows `[start, end)` of block `i`.
    pub fn block(&self, i: usize) -> (usize, usize) {
        (i * self.rows / self.count, (i + 1) * self.rows / self.count)
    }

    fn item(&self) -> usize {
        if self.dtype == "<f8" { 8 } else { 4 }
    }
}

/// The sidecar folder of `path`: `K.npy.blocks`.
pub fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".blocks");
    PathBuf::from(s)
}

fn header(job: &RowJob) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({}, {}), }}",
        job.dtype, job.rows, job.cols
    );
    // Magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Creates the file and its sidecar if no worker has, else checks that the
/// existing ones belong to the same job.
pub fn prepare(path: &Path, job: &RowJob) -> Result<()> {
    let side = sidecar(path);
    std::fs::create_dir_all(&side).map_err(|e| Error::io(&side, "create", e))?;
    let job_path = side.join("job.json");
    let text = serde_json::to_string_pretty(job).map_err(|e| Error::invalid(e.to_string()))?;
    let tmp = side.join(format!(".job.{}", std::process::id()));
    std::fs::write(&tmp, &text).map_err(|e| Error::io(&tmp, "write", e))?;
    // Exactly one worker's link succeeds.
    let _ = std::fs::hard_link(&tmp, &job_path);
    let _ = std::fs::remove_file(&tmp);
    let found = read_job(path)?;
    if &found != job {
        return Err(Error::file(
            path,
            format!(
                "belongs to another job ({}); remove it and {} to start afresh",
                describe(&found),
                side.display()
            ),
        ));
    }
    let h = header(job);
    let len = (h.len() + job.rows * job.cols * job.item()) as u64;
    if !path.exists() {
        let name = path
            .file_name()
            .ok_or_else(|| Error::file(path, "not a file path"))?;
        let tmp = path.with_file_name(format!(
            ".{}.new{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let made = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&h)?;
            f.set_len(len)?;
            f.sync_all()?;
            match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        made.map_err(|e| Error::io(path, "create", e))?;
    }
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    if size != len {
        return Err(Error::file(
            path,
            format!("has {size} bytes, the job needs {len}; remove it to start afresh"),
        ));
    }
    Ok(())
}

fn describe(j: &RowJob) -> String {
    format!("{} x {} {} in {} blocks", j.rows, j.cols, j.dtype, j.count)
}

/// The job recorded beside `path`.
pub fn read_job(path: &Path) -> Result<RowJob> {
    let p = sidecar(path).join("job.json");
    let text = std::fs::read_to_string(&p)
        .map_err(|e| Error::file(path, format!("no block record ({}): {e}", p.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&p, format!("invalid: {e}")))
}

/// Writes block `i` (its rows, `(end - start) * cols` values, little-endian
/// bytes of the job's type) at its offset, then marks it done.
pub fn write_block(path: &Path, job: &RowJob, i: usize, bytes: &[u8]) -> Result<()> {
    let (a, b) = job.block(i);
    let row = job.cols * job.item();
    if bytes.len() != (b - a) * row {
        return Err(Error::invalid(format!(
            "block {i}: {} bytes for rows {a}..{b}, expected {}",
            bytes.len(),
            (b - a) * row
        )));
    }
    let offset = (header(job).len() + a * row) as u64;
    (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(bytes)?;
        f.sync_all()
    })()
    .map_err(|e| Error::io(path, "write", e))?;
    let done = sidecar(path).join(format!("{i}-of-{}.done", job.count));
    crate::atomic::write_atomic(&done, format!("rows {a}..{b}\n").as_bytes())
}

/// The blocks not marked done yet.
pub fn missing(path: &Path, job: &RowJob) -> Vec<usize> {
    let side = sidecar(path);
    (0..job.count)
        .filter(|i| !side.join(format!("{i}-of-{}.done", job.count)).is_file())
        .collect()
}
