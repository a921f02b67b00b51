//! Infinite-width kernels (NNGP and NTK) of fully connected networks, exactly
//! as neural-tangents' `stax.serial(Dense, activation, ..., Dense(1))` defines
//! them, in f64 on the CPU or in f32 on any backend (tiled, so that memory
//! stays bounded whatever the number of points).

pub mod recursion;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use std::collections::HashMap;

/// How a Dense layer scales its weights (neural-tangents' `parameterization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// `W_std / sqrt(fan_in) * W x + b_std * b` with standard normal `W`, `b`.
    Ntk,
    /// `W x + b` with `W ~ N(0, W_std^2 / fan_in)`, `b ~ N(0, b_std^2)`; its NTK
    /// depends on the finite widths.
    Standard,
}

impl Parameterization {
    /// Parses `ntk` or `standard`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ntk" => Ok(Parameterization::Ntk),
            "standard" | "sp" => Ok(Parameterization::Standard),
            _ => Err(Error::invalid(format!(
                "unknown parameterization '{s}' for kernels (expected ntk or standard)"
            ))),
        }
    }
}

/// A fully connected architecture: `depth` times (Dense(width) then
/// activation), then a Dense(1) readout, all with the same `W_std`, `b_std`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub depth: usize,
    pub activation: Activation,
    pub w_std: f64,
    pub b_std: f64,
    pub parameterization: Parameterization,
    /// Hidden width (only the `standard` NTK depends on it).
    pub width: usize,
    /// Input dimension.
    pub d_in: usize,
}

impl Architecture {
    /// Checks that the kernels of this architecture can be computed.
    pub fn validate(&self) -> Result<()> {
        if !self.activation.has_kernel() {
            return Err(Error::invalid(format!(
                "activation '{}' has no closed-form infinite-width kernel (use relu, leaky-relu, abs, abrelu, erf, gelu, sign or identity)",
                self.activation
            )));
        }
        if !(self.w_std.is_finite() && self.b_std.is_finite())
            || self.w_std < 0.0
            || self.b_std < 0.0
        {
            return Err(Error::invalid(format!(
                "--w-std and --b-std must be finite and non-negative (got {} and {})",
                self.w_std, self.b_std
            )));
        }
        if self.width == 0 {
            return Err(Error::invalid("--width must be at least 1"));
        }
        if self.depth > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "--depth must be at most {MAX_DEPTH}, got {}",
                self.depth
            )));
        }
        if self.d_in == 0 {
            return Err(Error::invalid("inputs must have at least one feature"));
        }
        Ok(())
    }
}

/// Which kernels to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub nngp: bool,
    pub ntk: bool,
}

impl Want {
    pub const BOTH: Want = Want {
        nngp: true,
        ntk: true,
    };
    pub const NNGP: Want = Want {
        nngp: true,
        ntk: false,
    };
    pub const NTK: Want = Want {
        nngp: false,
        ntk: true,
    };
}

/// The kernels asked for, `rows x cols` (x1 by x2).
#[derive(Clone, Debug)]
pub struct Kernels<T> {
    pub nngp: Option<Matrix<T>>,
    pub ntk: Option<Matrix<T>>,
}

fn check_inputs<T>(arch: &Architecture, x1: &Matrix<T>, x2: Option<&Matrix<T>>) -> Result<()> {
    arch.validate()?;
    if x1.rows == 0 {
        return Err(Error::invalid("x1 holds no point"));
    }
    if x1.cols != arch.d_in {
        return Err(Error::shape(
            "kernel",
            format!(
                "x1 has {} features but the architecture expects d_in = {}",
                x1.cols, arch.d_in
            ),
        ));
    }
    if let Some(x2) = x2 {
        if x2.rows == 0 {
            return Err(Error::invalid("x2 holds no point"));
        }
        if x2.cols != x1.cols {
            return Err(Error::shape(
                "kernel",
                format!("x1 has {} features but x2 has {}", x1.cols, x2.cols),
            ));
        }
    }
    Ok(())
}

fn sq_norms(x: &Matrix<f64>) -> Vec<f64> {
    (0..x.rows)
        .map(|i| x.row(i).iter().map(|v| v * v).sum::<f64>() / x.cols as f64)
        .collect()
}

/// The kernels in f64 on the CPU (the exact reference). `x2 = None` means x1 with itself.
pub fn kernels_f64(
    arch: &Architecture,
    x1: &Matrix<f64>,
    x2: Option<&Matrix<f64>>,
    want: Want,
) -> Result<Kernels<f64>> {
    check_inputs(arch, x1, x2)?;
    x1.check_finite("x1")?;
    if let Some(x2) = x2 {
        x2.check_finite("x2")?;
    }
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let t1: Vec<Vec<f64>> = sq_norms(x1)
        .into_iter()
        .map(|c| recursion::diag_table(arch, c))
        .collect();
    let t2: Vec<Vec<f64>> = if same {
        t1.clone()
    } else {
        sq_norms(x2m)
            .into_iter()
            .map(|c| recursion::diag_table(arch, c))
            .collect()
    };
    let (n1, n2) = (x1.rows, x2m.rows);
    let mut nngp = Matrix::zeros(n1, n2);
    let mut ntk = Matrix::zeros(n1, n2);
    let d = x1.cols as f64;
    // Rows are independent: split them over the machine's threads.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n1);
    let rows_per = n1.div_ceil(threads);
    std::thread::scope(|s| {
        for (chunk, (qs, ts)) in nngp
            .data
            .chunks_mut(rows_per * n2)
            .zip(ntk.data.chunks_mut(rows_per * n2))
            .enumerate()
        {
            let (t1, t2) = (&t1, &t2);
            s.spawn(move || {
                for (local, (qrow, trow)) in qs.chunks_mut(n2).zip(ts.chunks_mut(n2)).enumerate() {
                    let i = chunk * rows_per + local;
                    for (j, (qv, tv)) in qrow.iter_mut().zip(trow.iter_mut()).enumerate() {
                        // For a set with itself, entries below the diagonal are
                        // the mirror of those above; computing them costs the
                        // same as copying across threads, and is exact too.
                        let q0 = x1
                            .row(i)
                            .iter()
                            .zip(x2m.row(j))
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / d;
                        let (q, t) = recursion::entry(arch, q0, &t1[i], &t2[j], same && i == j);
                        *qv = q;
                        *tv = t;
                    }
                }
            });
        }
    });
    Ok(Kernels {
        nngp: want.nngp.then_some(nngp),
        ntk: want.ntk.then_some(ntk),
    })
}

/// One tile of the layer recursion for [`Backend::kernel_tile`].
#[derive(Clone, Copy, Debug)]
pub struct KernelTile {
    pub arch: Architecture,
    pub rows: usize,
    /// Columns, a multiple of 4 (padding columns are computed and ignored).
    pub cols: usize,
    /// Features of the input blocks, `d_in` padded with zeros to a multiple of 4.
    pub k: usize,
    /// The tile sits on the diagonal of a kernel of a set with itself: entry
    /// (i, i) pairs a point with itself, and a backend may leave the entries
    /// below the diagonal unwritten (the caller mirrors the upper triangle).
    pub same_diag: bool,
    pub want: Want,
}

impl KernelTile {
    /// Where the column points' variances start in each layer's section of
    /// the variance table: after the rows', padded to a multiple of 4 so that
    /// the device loads four columns' values as one vector.
    pub fn table_cols_at(&self) -> usize {
        self.rows.next_multiple_of(4)
    }

    /// Values per layer in the variance table: `x1` rows (padded to a multiple
    /// of 4), then `x2` columns.
    pub fn table_stride(&self) -> usize {
        self.table_cols_at() + self.cols
    }
}

/// Largest tile side used by [`kernels_device`]; a tile's buffers stay at or
/// under `TILE^2 * 4` bytes (1 MiB), far below every adapter's binding limit; on
/// lavapipe 512 measured faster than 256, 1024 and 2048 (cache, and less
/// work wasted on the diagonal tiles of a symmetric kernel).
pub const TILE: usize = 512;

/// Values in the per-tile variance table handed to [`Backend::kernel_tile`]
/// (`depth * KernelTile::table_stride()` used, the rest padding): 64 KiB, the uniform-buffer
/// size every WebGPU adapter offers.
pub const DIAG_CAPACITY: usize = 16384;

/// Tile side for a depth: as large as [`TILE`] while the variance table fits.
pub fn tile_side(depth: usize) -> usize {
    match (DIAG_CAPACITY / 2).checked_div(depth) {
        None => TILE,
        Some(s) => (s / 4 * 4).clamp(4, TILE),
    }
}

/// Deepest network whose variance table fits [`DIAG_CAPACITY`] with tiles of 4.
pub const MAX_DEPTH: usize = DIAG_CAPACITY / 8;

/// The kernels in f32 on a backend, tile by tile: the Gram block through the
/// matrix product, then one pass of the layer recursion per entry. For a set
/// with itself only the tiles on and above the diagonal are computed.
pub fn kernels_device(
    dev: &dyn Backend,
    arch: &Architecture,
    x1: &Matrix<f32>,
    x2: Option<&Matrix<f32>>,
    want: Want,
    mut progress: impl FnMut(usize, usize),
) -> Result<Kernels<f32>> {
    check_inputs(arch, x1, x2)?;
    for (name, x) in [("x1", Some(x1)), ("x2", x2)] {
        if let Some(x) = x {
            if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "{name} has a non-finite value at row {}, column {}",
                    p / x.cols,
                    p % x.cols
                )));
            }
        }
    }
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let (n1, n2, d) = (x1.rows, x2m.rows, x1.cols);
    let norms = |x: &Matrix<f32>| -> Vec<Vec<f64>> {
        (0..x.rows)
            .map(|i| {
                let c = x.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
                recursion::diag_table(arch, c)
            })
            .collect()
    };
    let t1 = norms(x1);
    let t2 = if same { t1.clone() } else { norms(x2m) };
    let side = tile_side(arch.depth);
    let blocks = |n: usize| -> Vec<(usize, usize)> {
        (0..n).step_by(side).map(|s| (s, side.min(n - s))).collect()
    };
    let (rb, cb) = (blocks(n1), blocks(n2));
    // Features and tile columns are padded with zeros to multiples of 4 (which
    // changes no dot product), so that the fast matrix kernels and the vec4
    // recursion apply to any shape. Row blocks are [r, d4]; column blocks are
    // uploaded transposed, [d4, c4], so that the Gram tile is a plain product.
    let d4 = d.next_multiple_of(4);
    let row_block = |x: &Matrix<f32>, s: usize, r: usize| -> Result<crate::Buffer> {
        let mut v = vec![0.0f32; r * d4];
        for i in 0..r {
            v[i * d4..i * d4 + d].copy_from_slice(x.row(s + i));
        }
        dev.upload(&v)
    };
    let col_block = |x: &Matrix<f32>, s: usize, c: usize| -> Result<crate::Buffer> {
        let c4 = c.next_multiple_of(4);
        let mut v = vec![0.0f32; d4 * c4];
        for j in 0..c {
            for (f, &val) in x.row(s + j).iter().enumerate() {
                v[f * c4 + j] = val;
            }
        }
        dev.upload(&v)
    };
    let xr: Vec<crate::Buffer> = rb
        .iter()
        .map(|&(s, r)| row_block(x1, s, r))
        .collect::<Result<_>>()?;
    let xc: Vec<crate::Buffer> = cb
        .iter()
        .map(|&(s, c)| col_block(x2m, s, c))
        .collect::<Result<_>>()?;
    let mut nngp = want.nngp.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut ntk = want.ntk.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut diag = dev.zeros(DIAG_CAPACITY)?;
    let mut bufs: HashMap<(usize, usize), (crate::Buffer, crate::Buffer)> = HashMap::new();
    let tiles: Vec<(usize, usize)> = (0..rb.len())
        .flat_map(|bi| (0..cb.len()).map(move |bj| (bi, bj)))
        .filter(|&(bi, bj)| !same || bj >= bi)
        .collect();
    let total = tiles.len();
    let mut pending: Option<(Placement, [Option<crate::backend::ReadHandle>; 2])> = None;
    for (done, &(bi, bj)) in tiles.iter().enumerate() {
        let ((r0, r), (c0, c)) = (rb[bi], cb[bj]);
        let c4 = c.next_multiple_of(4);
        let (bn, bt) = match bufs.entry((r, c4)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((dev.zeros(r * c4)?, dev.zeros(r * c4)?))
            }
        };
        let tile = KernelTile {
            arch: *arch,
            rows: r,
            cols: c4,
            k: d4,
            same_diag: same && bi == bj,
            want,
        };
        let mut table = vec![0.0f32; DIAG_CAPACITY];
        for (l, layer) in table
            .chunks_mut(tile.table_stride())
            .take(arch.depth)
            .enumerate()
        {
            let (rows, cols) = layer.split_at_mut(tile.table_cols_at());
            for (v, i) in rows.iter_mut().zip(r0..r0 + r) {
                *v = t1[i][l] as f32;
            }
            for (v, j) in cols.iter_mut().zip(c0..c0 + c) {
                *v = t2[j][l] as f32;
            }
        }
        dev.write(&mut diag, &table)?;
        dev.kernel_tile(&tile, &xr[bi], &xc[bj], &diag, bn, bt)?;
        // Start copying this tile back, then place the previous one while the
        // device works on this one (and, next round, on the one after).
        let handles = [
            want.nngp.then(|| dev.read_begin(bn)).transpose()?,
            want.ntk.then(|| dev.read_begin(bt)).transpose()?,
        ];
        let place = Placement {
            r0,
            r,
            c0,
            c,
            c4,
            mirror: same && bi != bj,
            diagonal: same && bi == bj,
        };
        if let Some((p, h)) = pending.replace((place, handles)) {
            p.place(dev, h, [&mut nngp, &mut ntk])?;
            progress(done, total);
        }
    }
    if let Some((p, h)) = pending.take() {
        p.place(dev, h, [&mut nngp, &mut ntk])?;
        progress(total, total);
    }
    Ok(Kernels { nngp, ntk })
}

/// Where a tile's values go in the full kernel.
struct Placement {
    r0: usize,
    r: usize,
    c0: usize,
    c: usize,
    c4: usize,
    /// Also write the transpose (a tile above the diagonal of a symmetric kernel).
    mirror: bool,
    /// A tile on the diagonal of a symmetric kernel: entries below its
    /// diagonal are unspecified and taken from those above.
    diagonal: bool,
}

impl Placement {
    /// Collects the tile's reads and writes them (and their mirror) into the kernels.
    fn place(
        &self,
        dev: &dyn Backend,
        handles: [Option<crate::backend::ReadHandle>; 2],
        outs: [&mut Option<Matrix<f32>>; 2],
    ) -> Result<()> {
        for (h, out) in handles.into_iter().zip(outs) {
            let (Some(h), Some(m)) = (h, out.as_mut()) else {
                continue;
            };
            dev.read_end_with(h, &mut |v| self.put(m, v))?;
        }
        Ok(())
    }

    /// Writes one of the tile's read-back outputs `v` (`[r, c4]`) into `m`.
    fn put(&self, m: &mut Matrix<f32>, v: &[f32]) {
        let n2 = m.cols;
        for i in 0..self.r {
            let row = (self.r0 + i) * n2 + self.c0;
            m.data[row..row + self.c].copy_from_slice(&v[i * self.c4..i * self.c4 + self.c]);
        }
        if self.diagonal {
            // Only entries on and above the diagonal were computed.
            mirror_lower(m, self.r0, self.r);
        } else if self.mirror {
            mirror(m, v, self.r0, self.r, self.c0, self.c, self.c4);
        }
    }
}

/// Copies the upper triangle of the square block at `(s, s)` of side `r` onto
/// its lower triangle.
fn mirror_lower(m: &mut Matrix<f32>, s: usize, r: usize) {
    let n2 = m.cols;
    for i in 1..r {
        for j in 0..i {
            m.data[(s + i) * n2 + s + j] = m.data[(s + j) * n2 + s + i];
        }
    }
}

/// Writes the transpose of a computed tile below the diagonal, in small blocks
/// so that both sides stay in cache.
fn mirror(m: &mut Matrix<f32>, v: &[f32], r0: usize, r: usize, c0: usize, c: usize, c4: usize) {
    const B: usize = 32;
    let n2 = m.cols;
    for ib in (0..r).step_by(B) {
        for jb in (0..c).step_by(B) {
            for j in jb..(jb + B).min(c) {
                let dst = &mut m.data[(c0 + j) * n2 + r0..];
                for i in ib..(ib + B).min(r) {
                    dst[i] = v[i * c4 + j];
                }
            }
        }
    }
}
