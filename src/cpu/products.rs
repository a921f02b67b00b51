//! Batched matrix products on the CPU through faer's matrix multiply (its
//! packed, multithreaded AVX-512 / AVX2 / NEON kernels), in f32 and f64, with
//! the transpose, broadcast and `alpha`/`beta` forms of [`Matmul`], and the
//! dense layer's forward pass with its bias and activation applied to each
//! member's output right after that member's product, while it is in cache.

use super::elementwise::apply;
use crate::activation::Activation;
use crate::backend::Matmul;
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// f32 or f64: what the CPU products run on.
pub trait Scalar: super::ops::Real + faer::traits::ComplexField {
    /// From an f32 scale.
    fn of(v: f32) -> Self;
}

impl Scalar for f32 {
    fn of(v: f32) -> Self {
        v
    }
}

impl Scalar for f64 {
    fn of(v: f32) -> Self {
        f64::from(v)
    }
}

/// Below this many multiply-adds per member a product is not worth a
/// thread of its own (members then run one after another).
const PAR_MEMBER_WORK: usize = 1 << 15;

/// `C[e] = alpha op(A[e]) op(B[e]) + beta C[e]` for every member (the shapes
/// already checked by [`Matmul::check`]). With `beta == 0` the old contents
/// of C are never read. Members run in parallel when there are at least as
/// many as threads; otherwise each product uses every thread.
pub fn matmul<T: Scalar>(spec: &Matmul, a: &[T], b: &[T], c: &mut [T]) {
    per_member(spec, a, b, c, None, |_, _, _| {});
}

/// [`matmul`], then `post(e, c_e, h_e)` on member `e`'s output (and its
/// window of `h`, empty without one) right after its product, while it is
/// still in cache.
pub(crate) fn per_member<T: Scalar>(
    spec: &Matmul,
    a: &[T],
    b: &[T],
    c: &mut [T],
    h: Option<&mut [T]>,
    post: impl Fn(usize, &mut [T], &mut [T]) + Sync,
) {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let mn = m * n;
    let member = |e: usize, ce: &mut [T], he: &mut [T], inner: Par| {
        let ae = if spec.broadcast_a { 0 } else { e * m * k };
        let be = if spec.broadcast_b { 0 } else { e * k * n };
        one(spec, &a[ae..ae + m * k], &b[be..be + k * n], ce, inner);
        post(e, ce, he);
    };
    let work = m * n * k.max(1);
    let across = spec.batch > 1 && spec.batch >= rayon::current_num_threads();
    let inner = if work < PAR_MEMBER_WORK || across {
        Par::Seq
    } else {
        Par::rayon(0)
    };
    match h {
        Some(h) if across => c
            .par_chunks_mut(mn)
            .zip(h.par_chunks_mut(mn))
            .enumerate()
            .for_each(|(e, (ce, he))| member(e, ce, he, inner)),
        Some(h) => c
            .chunks_mut(mn)
            .zip(h.chunks_mut(mn))
            .enumerate()
            .for_each(|(e, (ce, he))| member(e, ce, he, inner)),
        None if across => c
            .par_chunks_mut(mn)
            .enumerate()
            .for_each(|(e, ce)| member(e, ce, &mut [], inner)),
        None => c
            .chunks_mut(mn)
            .enumerate()
            .for_each(|(e, ce)| member(e, ce, &mut [], inner)),
    }
}

/// One member's product.
fn one<T: Scalar>(spec: &Matmul, a: &[T], b: &[T], c: &mut [T], p: Par) {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let alpha = T::of(spec.alpha);
    let beta = spec.beta;
    if k == 0 || spec.alpha == 0.0 {
        // No product: C = beta C (never read when beta is 0).
        if beta == 0.0 {
            c.iter_mut().for_each(|v| *v = T::default());
        } else if beta != 1.0 {
            let s = T::of(beta);
            c.iter_mut().for_each(|v| *v = s * *v);
        }
        return;
    }
    let accum = if beta == 0.0 {
        Accum::Replace
    } else {
        if beta != 1.0 {
            let s = T::of(beta);
            c.iter_mut().for_each(|v| *v = s * *v);
        }
        Accum::Add
    };
    let lhs = if spec.trans_a {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let rhs = if spec.trans_b {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    let dst = MatMut::from_row_major_slice_mut(c, m, n);
    faer_matmul(dst, accum, lhs, rhs, alpha, p);
}

/// A dense layer's forward pass in f32: `z = spec(x, w)`, `z += mult_b *
/// bias` (`bias` is `[batch, n]`), `h = act(z)`, the bias and activation
/// applied to each member's rows right after its product. `spec.beta` must be 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_forward(
    spec: &Matmul,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    mult_b: f32,
    act: Activation,
    z: &mut [f32],
    h: &mut [f32],
) {
    let n = spec.n;
    per_member(spec, x, w, z, Some(h), |e, ze, he| {
        let be = &bias[e * n..(e + 1) * n];
        for (zr, hr) in ze.chunks_exact_mut(n).zip(he.chunks_exact_mut(n)) {
            for (zv, &bv) in zr.iter_mut().zip(be) {
                *zv += mult_b * bv;
            }
            apply(act, zr, hr);
        }
    });
}
