//! The tiled f32 driver: Gram blocks through the backend's matrix product,
//! one pass of the recursion per tile, tiles read back while the next runs.

use super::{Control, Kernels, Want, program_for};
use crate::arch::Arch;
use crate::backend::{Backend, Buffer, DIAG_CAPACITY, KernelTile, ReadHandle, tile_side};
use crate::error::{Error, Result};
use crate::matrix::{Matrix, MatrixRef};
use std::collections::HashMap;

/// The kernels in f32 on a backend, tile by tile: the Gram block through the
/// matrix product, then one pass of the layer recursion per entry. For a set
/// with itself only the tiles on and above the diagonal are computed.
/// `progress(done, total)` is called as tiles are placed.
pub fn kernels_device(
    dev: &dyn Backend,
    arch: &Arch,
    x1: &Matrix<f32>,
    x2: Option<&Matrix<f32>>,
    want: Want,
    progress: impl FnMut(usize, usize),
) -> Result<Kernels<f32>> {
    kernels_device_with(
        dev,
        arch,
        x1.view(),
        x2.map(Matrix::view),
        want,
        Control::default(),
        progress,
    )
}

/// [`kernels_device`] on borrowed inputs, with a tile side and a stop flag
/// checked between tiles ([`Control`]).
pub fn kernels_device_with(
    dev: &dyn Backend,
    arch: &Arch,
    x1: MatrixRef<'_, f32>,
    x2: Option<MatrixRef<'_, f32>>,
    want: Want,
    ctl: Control<'_>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Kernels<f32>> {
    let program = program_for(arch, x1, x2)?;
    if ctl.tile == Some(0) {
        return Err(Error::invalid("the tile side must be at least 1"));
    }
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let (n1, n2, d) = (x1.rows(), x2m.rows(), x1.cols());
    let norms = |x: MatrixRef<'_, f32>| -> Vec<Vec<f64>> {
        (0..x.rows())
            .map(|i| {
                let c = x.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
                program.variances(c)
            })
            .collect()
    };
    let t1 = norms(x1);
    let t2 = if same { t1.clone() } else { norms(x2m) };
    let side = tile_side(program.slots).min(ctl.tile.unwrap_or(usize::MAX));
    let blocks = |n: usize| -> Vec<(usize, usize)> {
        (0..n).step_by(side).map(|s| (s, side.min(n - s))).collect()
    };
    let (rb, cb) = (blocks(n1), blocks(n2));
    // Features and tile columns are padded with zeros to multiples of 4 (which
    // changes no dot product), so that the fast matrix kernels and the vec4
    // recursion apply to any shape. Row blocks are [r, d4]; column blocks are
    // uploaded transposed, [d4, c4], so that the Gram tile is a plain product.
    let d4 = d.next_multiple_of(4);
    let row_block = |x: MatrixRef<'_, f32>, s: usize, r: usize| -> Result<Buffer> {
        let mut v = vec![0.0f32; r * d4];
        for i in 0..r {
            v[i * d4..i * d4 + d].copy_from_slice(x.row(s + i));
        }
        dev.upload(&v)
    };
    let col_block = |x: MatrixRef<'_, f32>, s: usize, c: usize| -> Result<Buffer> {
        let c4 = c.next_multiple_of(4);
        let mut v = vec![0.0f32; d4 * c4];
        for j in 0..c {
            for (f, &val) in x.row(s + j).iter().enumerate() {
                v[f * c4 + j] = val;
            }
        }
        dev.upload(&v)
    };
    let xr: Vec<Buffer> = rb
        .iter()
        .map(|&(s, r)| row_block(x1, s, r))
        .collect::<Result<_>>()?;
    let xc: Vec<Buffer> = cb
        .iter()
        .map(|&(s, c)| col_block(x2m, s, c))
        .collect::<Result<_>>()?;
    let mut nngp = want.nngp.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut ntk = want.ntk.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut diag = dev.zeros(DIAG_CAPACITY)?;
    let mut bufs: HashMap<(usize, usize), (Buffer, Buffer)> = HashMap::new();
    let tiles: Vec<(usize, usize)> = (0..rb.len())
        .flat_map(|bi| (0..cb.len()).map(move |bj| (bi, bj)))
        .filter(|&(bi, bj)| !same || bj >= bi)
        .collect();
    let total = tiles.len();
    let mut pending: Option<(Placement, [Option<ReadHandle>; 2])> = None;
    for (done, &(bi, bj)) in tiles.iter().enumerate() {
        if ctl.stopped() {
            return Err(Error::Cancelled);
        }
        let ((r0, r), (c0, c)) = (rb[bi], cb[bj]);
        let c4 = c.next_multiple_of(4);
        let (bn, bt) = match bufs.entry((r, c4)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((dev.zeros(r * c4)?, dev.zeros(r * c4)?))
            }
        };
        let tile = KernelTile {
            program: &program,
            rows: r,
            cols: c4,
            k: d4,
            same_diag: same && bi == bj,
            want,
        };
        let mut table = vec![0.0f32; DIAG_CAPACITY];
        for (l, layer) in table
            .chunks_mut(tile.table_stride())
            .take(program.slots)
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
        handles: [Option<ReadHandle>; 2],
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
