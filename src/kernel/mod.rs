//! Infinite-width kernels (NNGP and NTK) of any [`Arch`], exactly as
//! neural-tangents' `kernel_fn` of the same `stax.serial` composition defines
//! them: in f64 on the CPU (the reference), or in f32 on any backend, tile by
//! tile so that memory stays bounded whatever the number of points.

mod tiles;

pub use crate::backend::Want;
pub use tiles::{kernels_device, kernels_device_with};

use crate::arch::{Arch, KernelProgram};
use crate::error::{Error, Result};
use crate::matrix::{Matrix, MatrixRef};
use std::sync::atomic::{AtomicBool, Ordering};

/// How a long kernel computation runs, beyond its inputs: the device path's
/// tile side and a flag that stops it early. `Control::default()` is what
/// [`kernels_f64`] and [`kernels_device`] use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Control<'a> {
    /// Points of x1 and of x2 per device tile (the tile is `tile x tile`),
    /// capped at the largest that fits the architecture
    /// ([`tile_side`](crate::backend::tile_side)); `None` takes that largest.
    /// The f64 path has no tiles and ignores it.
    pub tile: Option<usize>,
    /// Set from another thread to stop the computation between rows (f64)
    /// or tiles (device); the call then returns [`Error::Cancelled`].
    pub stop: Option<&'a AtomicBool>,
}

impl Control<'_> {
    /// Whether the stop flag is set.
    pub fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// The kernels asked for, `rows x cols` (x1 by x2).
#[derive(Clone, Debug)]
pub struct Kernels<T> {
    /// The NNGP, if asked for.
    pub nngp: Option<Matrix<T>>,
    /// The NTK, if asked for.
    pub ntk: Option<Matrix<T>>,
}

/// Checks the inputs (their shapes and values) and compiles the
/// architecture's recursion for them.
fn program_for<T: Copy + Into<f64>>(
    arch: &Arch,
    x1: MatrixRef<'_, T>,
    x2: Option<MatrixRef<'_, T>>,
) -> Result<KernelProgram> {
    if x1.rows() == 0 {
        return Err(Error::invalid("x1 holds no point"));
    }
    if let Some(x2) = x2 {
        if x2.rows() == 0 {
            return Err(Error::invalid("x2 holds no point"));
        }
        if x2.cols() != x1.cols() {
            return Err(Error::shape(
                "kernel",
                format!("x1 has {} features but x2 has {}", x1.cols(), x2.cols()),
            ));
        }
    }
    for (name, x) in [("x1", Some(x1)), ("x2", x2)] {
        if let Some((r, c)) = x.and_then(|x| x.first_non_finite()) {
            return Err(Error::invalid(format!(
                "{name} has a non-finite value at row {r}, column {c}"
            )));
        }
    }
    let p = arch.kernel_program(x1.cols())?;
    if p.slots > crate::backend::MAX_SLOTS {
        return Err(Error::invalid(format!(
            "the architecture has {} nonlinearities and LayerNorms; the kernels take at most {}",
            p.slots,
            crate::backend::MAX_SLOTS
        )));
    }
    Ok(p)
}

fn sq_norms(x: MatrixRef<'_, f64>) -> Vec<f64> {
    (0..x.rows())
        .map(|i| x.row(i).iter().map(|v| v * v).sum::<f64>() / x.cols() as f64)
        .collect()
}

/// The kernels in f64 on the CPU (the exact reference). `x2 = None` means x1 with itself.
pub fn kernels_f64(
    arch: &Arch,
    x1: &Matrix<f64>,
    x2: Option<&Matrix<f64>>,
    want: Want,
) -> Result<Kernels<f64>> {
    kernels_f64_with(
        arch,
        x1.view(),
        x2.map(Matrix::view),
        want,
        Control::default(),
    )
}

/// [`kernels_f64`] on borrowed inputs, stopped early when `ctl.stop` is set.
pub fn kernels_f64_with(
    arch: &Arch,
    x1: MatrixRef<'_, f64>,
    x2: Option<MatrixRef<'_, f64>>,
    want: Want,
    ctl: Control<'_>,
) -> Result<Kernels<f64>> {
    let program = program_for(arch, x1, x2)?;
    let arch = &program;
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let t1: Vec<Vec<f64>> = sq_norms(x1)
        .into_iter()
        .map(|c| arch.variances(c))
        .collect();
    let t2: Vec<Vec<f64>> = if same {
        t1.clone()
    } else {
        sq_norms(x2m)
            .into_iter()
            .map(|c| arch.variances(c))
            .collect()
    };
    let (n1, n2) = (x1.rows(), x2m.rows());
    let mut nngp = Matrix::zeros(n1, n2);
    let mut ntk = Matrix::zeros(n1, n2);
    let d = x1.cols() as f64;
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
                        // An entry can cost 10^5 operations (quadrature activations):
                        // look at the stop flag before each.
                        if ctl.stopped() {
                            return;
                        }
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
                        let (q, t) = arch.entry(q0, &t1[i], &t2[j], same && i == j);
                        *qv = q;
                        *tv = t;
                    }
                }
            });
        }
    });
    if ctl.stopped() {
        return Err(Error::Cancelled);
    }
    Ok(Kernels {
        nngp: want.nngp.then_some(nngp),
        ntk: want.ntk.then_some(ntk),
    })
}
