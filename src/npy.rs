//! `.npy` files in and out (through the npyz crate). Reading accepts float32
//! and float64 in either byte order and C or Fortran order, and integers
//! (converted exactly to float); anything else is refused with the file named.
//! Writing goes to a temporary file renamed into place, so a failure never
//! leaves a half-written result.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use npyz::{TypeChar, WriterBuilder};
use std::path::Path;

/// An array read from a `.npy` file: its shape and values as f64, C order.
#[derive(Clone, Debug)]
pub struct Array {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, in C order.
    pub data: Vec<f64>,
    /// The element type as stored (`<f4`, `>f8`, `<i8`...).
    pub dtype: String,
}

fn read_as<T: npyz::Deserialize + Copy>(
    path: &Path,
    f: npyz::NpyFile<&[u8]>,
    conv: impl Fn(T) -> f64,
) -> Result<Vec<f64>> {
    let v = f
        .into_vec::<T>()
        .map_err(|e| Error::file(path, format!("truncated or corrupted .npy data: {e}")))?;
    Ok(v.into_iter().map(conv).collect())
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    parse(&bytes, path)
}

/// Parses the bytes of a `.npy` file (`path` names it in messages).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Array> {
    let f = npyz::NpyFile::new(bytes)
        .map_err(|e| Error::file(path, format!("not a valid .npy file: {e}")))?;
    let shape: Vec<usize> = f.shape().iter().map(|&s| s as usize).collect();
    let fortran = f.order() == npyz::Order::Fortran;
    let npyz::DType::Plain(ts) = f.dtype() else {
        return Err(Error::file(
            path,
            "structured or nested dtypes are not supported; save a plain float array",
        ));
    };
    let dtype = ts.to_string();
    let n = shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or_else(|| {
            Error::file(
                path,
                format!("the header announces an impossible shape {shape:?}"),
            )
        })?;
    let needed = n.saturating_mul(ts.num_bytes().unwrap_or(0));
    if bytes.len() < needed {
        return Err(Error::file(
            path,
            format!(
                "truncated: the header announces {n} values of {dtype} but the file is only {} bytes",
                bytes.len()
            ),
        ));
    }
    let data = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => read_as::<f32>(path, f, |v| v as f64)?,
        (TypeChar::Float, 8) => read_as::<f64>(path, f, |v| v)?,
        (TypeChar::Int, 1) => read_as::<i8>(path, f, |v| v as f64)?,
        (TypeChar::Int, 2) => read_as::<i16>(path, f, |v| v as f64)?,
        (TypeChar::Int, 4) => read_as::<i32>(path, f, |v| v as f64)?,
        (TypeChar::Int, 8) => read_as::<i64>(path, f, |v| v as f64)?,
        (TypeChar::Uint, 1) => read_as::<u8>(path, f, |v| v as f64)?,
        (TypeChar::Uint, 2) => read_as::<u16>(path, f, |v| v as f64)?,
        (TypeChar::Uint, 4) => read_as::<u32>(path, f, |v| v as f64)?,
        (TypeChar::Uint, 8) => read_as::<u64>(path, f, |v| v as f64)?,
        _ => {
            return Err(Error::file(
                path,
                format!(
                    "unsupported dtype {dtype}: widenet reads float32, float64 and integer arrays"
                ),
            ));
        }
    };
    if data.len() != n {
        return Err(Error::file(
            path,
            format!("truncated: expected {n} values, found {}", data.len()),
        ));
    }
    let data = if fortran && shape.len() > 1 {
        fortran_to_c(&shape, &data)
    } else {
        data
    };
    Ok(Array { shape, data, dtype })
}

fn fortran_to_c(shape: &[usize], data: &[f64]) -> Vec<f64> {
    let n = data.len();
    let mut out = vec![0.0; n];
    let nd = shape.len();
    let mut idx = vec![0usize; nd];
    for (c_pos, o) in out.iter_mut().enumerate() {
        // c_pos -> multi-index (C order) -> Fortran offset.
        let mut rem = c_pos;
        for d in (0..nd).rev() {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        let mut f = 0;
        let mut stride = 1;
        for d in 0..nd {
            f += idx[d] * stride;
            stride *= shape[d];
        }
        *o = data[f];
    }
    out
}

/// Reads a 2-D array of points (rows) by features (columns), requiring
/// finite values. A 1-D array is refused with the reshape that makes it one
/// (its n values could be n points of one feature or one point of n).
pub fn read_matrix(path: &Path, what: &str) -> Result<Matrix> {
    read_2d(path, what, false)
}

/// Reads targets: a 2-D array (points x outputs), or a 1-D array of n
/// values taken as n points of one output; finite values required.
pub fn read_targets(path: &Path, what: &str) -> Result<Matrix> {
    read_2d(path, what, true)
}

fn read_2d(path: &Path, what: &str, column: bool) -> Result<Matrix> {
    let a = read(path)?;
    let (rows, cols) = match a.shape.as_slice() {
        [n] if column => (*n, 1),
        [n] => {
            return Err(Error::file(
                path,
                format!(
                    "{what} is a 1-D array of {n} values; it must be 2-D (points x features): \
                     save x.reshape(-1, 1) for {n} points of one feature, or x.reshape(1, -1) \
                     for one point of {n} features"
                ),
            ));
        }
        [r, c] => (*r, *c),
        s => {
            return Err(Error::file(
                path,
                format!("{what} must be a 2-D array (points x features), got shape {s:?}"),
            ));
        }
    };
    if rows == 0 || cols == 0 {
        return Err(Error::file(
            path,
            format!("{what} is empty (shape {:?})", a.shape),
        ));
    }
    if let Some(p) = a.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::file(
            path,
            format!(
                "{what} has a non-finite value ({}) at row {}, column {}",
                a.data[p],
                p / cols,
                p % cols
            ),
        ));
    }
    Matrix::from_vec(rows, cols, a.data)
}

/// Writes `data` with `shape` as float32 or float64, atomically (streamed: a
/// large kernel is not copied in memory first).
pub fn write<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    crate::atomic::write_atomic_with(path, |w| {
        let mut npy = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape64)
            .writer(w)
            .begin_nd()?;
        npy.extend(data.iter().copied())?;
        npy.finish()
    })
}

/// Writes named f64 arrays as an `.npz` archive (stored entries, as numpy's
/// `savez` writes them), atomically.
pub fn write_npz(path: &Path, arrays: &[(String, Vec<usize>, Vec<f64>)]) -> Result<()> {
    crate::atomic::write_atomic_with(path, |w| {
        let mut zip = zip::ZipWriter::new(w);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, shape, data) in arrays {
            zip.start_file(format!("{name}.npy"), options)
                .map_err(std::io::Error::other)?;
            let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
            let mut npy = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape64)
                .writer(&mut zip)
                .begin_nd()?;
            npy.extend(data.iter().copied())?;
            npy.finish()?;
        }
        zip.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}
