//! Elementwise work and reductions in f32, spread over the cores in chunks
//! (small arrays stay on the calling thread), with no allocation. The
//! piecewise-linear activations run as plain vectorizable loops; the
//! transcendental ones evaluate the f64 formulas of [`Activation`].

use crate::activation::Activation;
use crate::backend::Batched;
use rayon::prelude::*;

/// Values per parallel task: arrays up to this size stay on one thread.
pub(crate) const CHUNK: usize = 1 << 15;

/// `f` on matching chunks of `x` and `y`, in parallel for large arrays.
pub(crate) fn zip2(x: &[f32], y: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync) {
    if y.len() <= CHUNK {
        f(x, y);
    } else {
        x.par_chunks(CHUNK)
            .zip(y.par_chunks_mut(CHUNK))
            .for_each(|(a, b)| f(a, b));
    }
}

/// `f` on matching chunks of `x`, `y` and `z`, in parallel for large arrays.
pub(crate) fn zip3(
    x: &[f32],
    y: &[f32],
    z: &mut [f32],
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) {
    if z.len() <= CHUNK {
        f(x, y, z);
    } else {
        x.par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .zip(z.par_chunks_mut(CHUNK))
            .for_each(|((a, b), c)| f(a, b, c));
    }
}

/// `f` on chunks of `x`, in parallel for large arrays.
fn each(x: &mut [f32], f: impl Fn(&mut [f32]) + Sync + Send) {
    if x.len() <= CHUNK {
        f(x);
    } else {
        x.par_chunks_mut(CHUNK).for_each(f);
    }
}

/// `y = act(x)` on the calling thread (the same values as [`Activation::apply`]).
pub(crate) fn apply(act: Activation, x: &[f32], y: &mut [f32]) {
    match act {
        Activation::Identity => y.copy_from_slice(x),
        Activation::AbRelu { a, b } => {
            let (a, b) = (a as f32, b as f32);
            for (o, &v) in y.iter_mut().zip(x) {
                *o = a * v.min(0.0) + b * v.max(0.0);
            }
        }
        Activation::Sign => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                };
            }
        }
        _ => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = act.apply(f64::from(v)) as f32;
            }
        }
    }
}

/// `y = act(x)`.
pub(crate) fn activation(act: Activation, x: &[f32], y: &mut [f32]) {
    zip2(x, y, |x, y| apply(act, x, y));
}

/// `dx = dy * act'(x)`.
pub(crate) fn activation_grad(act: Activation, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    zip3(x, dy, dx, |x, dy, dx| {
        let it = dx.iter_mut().zip(x).zip(dy);
        match act {
            Activation::Identity => dx.copy_from_slice(dy),
            Activation::AbRelu { a, b } => {
                let (a, b) = (a as f32, b as f32);
                for ((o, &v), &g) in it {
                    *o = g * if v > 0.0 { b } else { a };
                }
            }
            Activation::Sign => {
                for ((o, _), &g) in it {
                    *o = g * 0.0;
                }
            }
            _ => {
                for ((o, &v), &g) in it {
                    *o = g * act.derivative(f64::from(v)) as f32;
                }
            }
        }
    });
}

/// `y[e, r, c] += alpha * bias[e, c]`.
pub(crate) fn bias_add(s: Batched, y: &mut [f32], bias: &[f32], alpha: f32) {
    let add = |e: usize, ye: &mut [f32]| {
        let be = &bias[e * s.cols..(e + 1) * s.cols];
        for row in ye.chunks_exact_mut(s.cols) {
            for (v, &b) in row.iter_mut().zip(be) {
                *v += alpha * b;
            }
        }
    };
    members(s, y, add);
}

/// `g(e, y_e)` for every member's `[rows, cols]` block, in parallel when the
/// blocks are large enough.
fn members(s: Batched, y: &mut [f32], g: impl Fn(usize, &mut [f32]) + Sync) {
    let per = s.rows * s.cols;
    if per == 0 {
        return;
    }
    if s.len() <= CHUNK || s.batch == 1 {
        y.chunks_exact_mut(per)
            .enumerate()
            .for_each(|(e, b)| g(e, b));
    } else {
        y.par_chunks_exact_mut(per)
            .enumerate()
            .for_each(|(e, b)| g(e, b));
    }
}

/// `out[e, r] = sum_c x[e, r, c]`.
pub(crate) fn sum_rows(s: Batched, x: &[f32], out: &mut [f32]) {
    let c = s.cols.max(1);
    let rows_per = (CHUNK / c).max(1);
    let sum = |x: &[f32], out: &mut [f32]| {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(c)) {
            *o = row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
        }
    };
    if s.cols == 0 {
        out.iter_mut().for_each(|v| *v = 0.0);
    } else if x.len() <= CHUNK {
        sum(x, out);
    } else {
        x.par_chunks(rows_per * c)
            .zip(out.par_chunks_mut(rows_per))
            .for_each(|(x, o)| sum(x, o));
    }
}

/// `out[e, c] = sum_r x[e, r, c]`, summed in f64 (in strips of columns, so
/// that the sums stay in registers and nothing is allocated).
pub(crate) fn sum_cols(s: Batched, x: &[f32], out: &mut [f32]) {
    const STRIP: usize = 64;
    let (rows, cols) = (s.rows, s.cols);
    let per = rows * cols;
    let sum = |xe: &[f32], o: &mut [f32]| {
        for (c0, os) in (0..cols).step_by(STRIP).zip(o.chunks_mut(STRIP)) {
            let w = os.len();
            let mut acc = [0.0f64; STRIP];
            for r in 0..rows {
                let row = &xe[r * cols + c0..r * cols + c0 + w];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += f64::from(v);
                }
            }
            for (o, a) in os.iter_mut().zip(acc) {
                *o = a as f32;
            }
        }
    };
    if per == 0 || cols == 0 {
        out.iter_mut().for_each(|v| *v = 0.0);
    } else if s.len() <= CHUNK || s.batch == 1 {
        x.chunks_exact(per)
            .zip(out.chunks_exact_mut(cols))
            .for_each(|(xe, o)| sum(xe, o));
    } else {
        x.par_chunks_exact(per)
            .zip(out.par_chunks_exact_mut(cols))
            .for_each(|(xe, o)| sum(xe, o));
    }
}

/// `x *= alpha`.
pub(crate) fn scale(x: &mut [f32], alpha: f32) {
    each(x, |x| x.iter_mut().for_each(|v| *v *= alpha));
}

/// `y += alpha * x`.
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    zip2(x, y, |x, y| {
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv += alpha * xv;
        }
    });
}

/// `z = x * y`.
pub(crate) fn mul(x: &[f32], y: &[f32], z: &mut [f32]) {
    zip3(x, y, z, |x, y, z| {
        for ((zv, &a), &b) in z.iter_mut().zip(x).zip(y) {
            *zv = a * b;
        }
    });
}

/// `dst = src`.
pub(crate) fn copy(src: &[f32], dst: &mut [f32]) {
    zip2(src, dst, |s, d| d.copy_from_slice(s));
}

/// `dst[r, :] = src[idx[r], :]` (indices already checked), `idx` as f32 bits.
pub(crate) fn gather_rows(src: &[f32], cols: usize, idx: &[f32], dst: &mut [f32]) {
    if cols == 0 {
        return;
    }
    let rows_per = (CHUNK / cols).max(1);
    let gather = |idx: &[f32], dst: &mut [f32]| {
        for (row, &i) in dst.chunks_exact_mut(cols).zip(idx) {
            let i = i.to_bits() as usize;
            row.copy_from_slice(&src[i * cols..(i + 1) * cols]);
        }
    };
    if dst.len() <= CHUNK {
        gather(idx, dst);
    } else {
        idx.par_chunks(rows_per)
            .zip(dst.par_chunks_mut(rows_per * cols))
            .for_each(|(i, d)| gather(i, d));
    }
}
