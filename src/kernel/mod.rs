//! Infinite-width kernels (NNGP and NTK) of any [`Arch`], exactly as
//! neural-tangents' `kernel_fn` of the same `stax.serial` composition defines
//! them: in f64 on the CPU (the reference), or in f32 on any backend, tile by
//! tile so that memory stays bounded whatever the number of points.

mod tiles;

pub use crate::backend::Want;
pub use tiles::kernels_device;

use crate::arch::{Arch, KernelProgram};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// The kernels asked for, `rows x cols` (x1 by x2).
#[derive(Clone, Debug)]
pub struct Kernels<T> {
    /// The NNGP, if asked for.
    pub nngp: Option<Matrix<T>>,
    /// The NTK, if asked for.
    pub ntk: Option<Matrix<T>>,
}

/// Checks the inputs and compiles the architecture's recursion for them.
fn program_for<T>(arch: &Arch, x1: &Matrix<T>, x2: Option<&Matrix<T>>) -> Result<KernelProgram> {
    if x1.rows == 0 {
        return Err(Error::invalid("x1 holds no point"));
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
    let p = arch.kernel_program(x1.cols)?;
    if p.slots > crate::backend::MAX_SLOTS {
        return Err(Error::invalid(format!(
            "the architecture has {} nonlinearities and LayerNorms; the kernels take at most {}",
            p.slots,
            crate::backend::MAX_SLOTS
        )));
    }
    Ok(p)
}

fn sq_norms(x: &Matrix<f64>) -> Vec<f64> {
    (0..x.rows)
        .map(|i| x.row(i).iter().map(|v| v * v).sum::<f64>() / x.cols as f64)
        .collect()
}

/// The kernels in f64 on the CPU (the exact reference). `x2 = None` means x1 with itself.
pub fn kernels_f64(
    arch: &Arch,
    x1: &Matrix<f64>,
    x2: Option<&Matrix<f64>>,
    want: Want,
) -> Result<Kernels<f64>> {
    let program = program_for(arch, x1, x2)?;
    let arch = &program;
    x1.check_finite("x1")?;
    if let Some(x2) = x2 {
        x2.check_finite("x2")?;
    }
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
                        let (q, t) = arch.entry(q0, &t1[i], &t2[j], same && i == j);
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
