//! One tile of the infinite-width kernels, as the backends compute it.

use super::check_len;
use crate::arch::KernelProgram;
use crate::error::{Error, Result};

/// Which kernels to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// The NNGP.
    pub nngp: bool,
    /// The NTK.
    pub ntk: bool,
}

impl Want {
    /// Both kernels.
    pub const BOTH: Want = Want {
        nngp: true,
        ntk: true,
    };
    /// The NNGP alone.
    pub const NNGP: Want = Want {
        nngp: true,
        ntk: false,
    };
    /// The NTK alone.
    pub const NTK: Want = Want {
        nngp: false,
        ntk: true,
    };
}

/// One tile of the layer recursion for [`Backend::kernel_tile`](super::Backend::kernel_tile).
#[derive(Clone, Copy, Debug)]
pub struct KernelTile<'a> {
    /// The recursion.
    pub program: &'a KernelProgram,
    /// Rows (points of x1).
    pub rows: usize,
    /// Columns, a multiple of 4 (padding columns are computed and ignored).
    pub cols: usize,
    /// Features of the input blocks, `d_in` padded with zeros to a multiple of 4.
    pub k: usize,
    /// The tile sits on the diagonal of a kernel of a set with itself: entry
    /// (i, i) pairs a point with itself, and a backend may leave the entries
    /// below the diagonal unwritten (the caller mirrors the upper triangle).
    pub same_diag: bool,
    /// The kernels to write.
    pub want: Want,
}

impl KernelTile<'_> {
    /// Where the column points' variances start in each slot's section of
    /// the variance table: after the rows', padded to a multiple of 4 so that
    /// the device loads four columns' values as one vector.
    pub fn table_cols_at(&self) -> usize {
        self.rows.next_multiple_of(4)
    }

    /// Values per slot in the variance table: `x1` rows (padded to a multiple
    /// of 4), then `x2` columns.
    pub fn table_stride(&self) -> usize {
        self.table_cols_at() + self.cols
    }
}

/// Largest tile side used by the tiled kernels; a tile's buffers stay at or
/// under `TILE^2 * 4` bytes (1 MiB), far below every adapter's binding limit;
/// on lavapipe 512 measured faster than 256, 1024 and 2048 (cache, and less
/// work wasted on the diagonal tiles of a symmetric kernel).
pub const TILE: usize = 512;

/// Values in the per-tile variance table handed to
/// [`Backend::kernel_tile`](super::Backend::kernel_tile) (`slots *
/// KernelTile::table_stride()` used, the rest padding): 64 KiB, the
/// uniform-buffer size every WebGPU adapter offers.
pub const DIAG_CAPACITY: usize = 16384;

/// Tile side for a recursion with `slots` variance slots: as large as
/// [`TILE`] while the variance table fits.
pub fn tile_side(slots: usize) -> usize {
    match (DIAG_CAPACITY / 2).checked_div(slots) {
        None => TILE,
        Some(s) => (s / 4 * 4).clamp(4, TILE),
    }
}

/// Most variance slots (nonlinearities and LayerNorms) a recursion may have:
/// the table must fit [`DIAG_CAPACITY`] with tiles of 4.
pub const MAX_SLOTS: usize = DIAG_CAPACITY / 8;

/// Checks the buffers of a kernel tile.
pub(crate) fn check_tile(
    t: &KernelTile<'_>,
    x1: usize,
    x2t: usize,
    diag: usize,
    nngp: usize,
    ntk: usize,
) -> Result<()> {
    let n = t.rows * t.cols;
    check_len(
        "kernel_tile",
        &[
            ("x1", x1, t.rows * t.k),
            ("x2t", x2t, t.k * t.cols),
            ("nngp", nngp, n),
            ("ntk", ntk, n),
        ],
    )?;
    let used = t.program.slots * t.table_stride();
    if diag < DIAG_CAPACITY || used > DIAG_CAPACITY {
        return Err(Error::shape(
            "kernel_tile",
            format!("diag must hold {DIAG_CAPACITY} values and the tile's {used} variances"),
        ));
    }
    if !t.cols.is_multiple_of(4) || !t.k.is_multiple_of(4) || t.k < t.program.d_in {
        return Err(Error::shape(
            "kernel_tile",
            format!(
                "cols ({}) and k ({}) must be multiples of 4, k >= d_in",
                t.cols, t.k
            ),
        ));
    }
    Ok(())
}
