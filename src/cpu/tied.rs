//! The tied toy model of superposition's gradient in one pass per member
//! ([`crate::backend::Backend::tied_gradients`]): each draw's features are
//! generated, pushed through `x' = act(W^T W x + b)` and back, and added to
//! the member's gradient while they sit in cache, instead of a dozen passes
//! over `[E, B, n]` arrays and products whose inner dimension is 5 or 1.
//! Members run in parallel.

use crate::backend::TiedOp;
use crate::rng::{draw_key, pcg_hash, unit_f32};
use rayon::prelude::*;

/// [`crate::rng::sparse_feature`] written without a branch, so that a row's
/// features are drawn in vector lanes; the same bits.
#[inline(always)]
fn feature(key: u32, index: u32, sparsity: f32) -> f32 {
    let h = pcg_hash(index ^ key);
    let v = unit_f32(pcg_hash(h));
    if unit_f32(h) < sparsity { 0.0 } else { v }
}

/// The host slices of one [`TiedOp`].
pub(crate) struct Slices<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub ids: &'a [f32],
    pub sparsity: &'a [f32],
    pub weight: &'a [f32],
}

/// The parts of one member's work.
struct Member<'a> {
    key: u32,
    sparsity: f32,
    w: &'a [f32],
    b: &'a [f32],
    weight: &'a [f32],
}

/// [`member_body`] compiled for the best instruction set the CPU has.
fn member(op: &TiedOp<'_>, p: &Member<'_>, dw: &mut [f32], db: &mut [f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { member_avx2(op, p, dw, db) };
    }
    member_body(op, p.key, p.sparsity, p.w, p.b, p.weight, dw, db)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn member_avx2(op: &TiedOp<'_>, p: &Member<'_>, dw: &mut [f32], db: &mut [f32]) -> f64 {
    member_body(op, p.key, p.sparsity, p.w, p.b, p.weight, dw, db)
}

/// Rows of a batch in flight at once, one per vector lane.
const L: usize = 8;
type V = [f32; L];

/// `acc += a * x`, lane by lane.
#[inline(always)]
fn fma(acc: &mut V, a: f32, x: &V) {
    for k in 0..L {
        acc[k] += a * x[k];
    }
}

/// One member: gradients into `dw` (`[m, n]`) and `db` (`[n]`); returns the
/// member's loss. Rows go [`L`] at a time, one per lane, so that every
/// operation is a whole vector whatever `n` and `m` are (5 and 20, or 1 and
/// 2, in the paper's runs); lanes past the batch's end are masked out of
/// the loss's gradient, which zeroes their part of every sum.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn member_body(
    op: &TiedOp<'_>,
    key: u32,
    sparsity: f32,
    w: &[f32],
    b: &[f32],
    weight: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
) -> f64 {
    let (n, m, rows) = (op.features, op.hidden, op.batch);
    let zero = [0f32; L];
    let (mut x, mut z, mut dz) = (vec![zero; n], vec![zero; n], vec![zero; n]);
    let (mut h, mut dh) = (vec![zero; m], vec![zero; m]);
    let (mut acc_w, mut acc_b) = (vec![zero; m * n], vec![zero; n]);
    let mut loss = zero;
    for r0 in (0..rows).step_by(L) {
        let mut mask = zero;
        for (k, v) in mask.iter_mut().enumerate() {
            *v = if r0 + k < rows { 1.0 } else { 0.0 };
        }
        for (c, xc) in x.iter_mut().enumerate() {
            // Each step over whole lanes, so that the hashes run as vectors.
            let mut out = zero;
            for (k, o) in out.iter_mut().enumerate() {
                *o = feature(key, ((r0 + k) * n + c) as u32, sparsity);
            }
            *xc = out;
        }
        // Rows of W sliced once, so that no bounds check sits in the lane
        // loops (one would keep the accumulators in memory, lane by lane).
        for (hj, wj) in h.iter_mut().zip(w.chunks_exact(n)) {
            let mut acc = zero;
            for (&a, xc) in wj.iter().zip(&x) {
                fma(&mut acc, a, xc);
            }
            *hj = acc;
        }
        for (zc, &bc) in z.iter_mut().zip(b) {
            *zc = [bc; L];
        }
        for (wj, hj) in w.chunks_exact(n).zip(&h) {
            for (zc, &a) in z.iter_mut().zip(wj) {
                fma(zc, a, hj);
            }
        }
        for (((dzc, zc), xc), &wc) in dz.iter_mut().zip(&z).zip(&x).zip(weight) {
            let mut out = zero;
            for k in 0..L {
                let zv = zc[k];
                let y = if op.relu { zv.max(0.0) } else { zv };
                let d = (y - xc[k]) * mask[k];
                let g = wc * d;
                loss[k] += d * g;
                out[k] = if op.relu && zv <= 0.0 { 0.0 } else { g };
            }
            *dzc = out;
        }
        for (dj, wj) in dh.iter_mut().zip(w.chunks_exact(n)) {
            let mut acc = zero;
            for (&a, dzc) in wj.iter().zip(&dz) {
                fma(&mut acc, a, dzc);
            }
            *dj = acc;
        }
        // W appears twice: dW = h dz^T + dh x^T.
        for ((aj, hj), dj) in acc_w.chunks_exact_mut(n).zip(&h).zip(&dh) {
            for ((a, dzc), xc) in aj.iter_mut().zip(&dz).zip(&x) {
                for k in 0..L {
                    a[k] += hj[k] * dzc[k] + dj[k] * xc[k];
                }
            }
        }
        for (a, dzc) in acc_b.iter_mut().zip(&dz) {
            for k in 0..L {
                a[k] += dzc[k];
            }
        }
    }
    for (o, a) in dw.iter_mut().zip(&acc_w) {
        *o = a.iter().sum();
    }
    for (o, a) in db.iter_mut().zip(&acc_b) {
        *o = a.iter().sum();
    }
    0.5 * loss.iter().map(|&l| f64::from(l)).sum::<f64>()
}

/// Every member's gradient (and loss, where `loss` is given), members in
/// parallel. Lengths are checked by the caller.
pub(crate) fn tied_gradients(
    op: &TiedOp<'_>,
    s: &Slices<'_>,
    dw: &mut [f32],
    db: &mut [f32],
    loss: Option<&mut [f32]>,
) {
    let (n, m) = (op.features, op.hidden);
    let losses: Vec<f64> = dw
        .par_chunks_mut(m * n)
        .zip(db.par_chunks_mut(n))
        .enumerate()
        .map(|(e, (dw, db))| {
            let key = draw_key(op.draw.seed, s.ids[e].to_bits(), op.draw.step);
            let p = Member {
                key,
                sparsity: s.sparsity[e],
                w: &s.w[e * m * n..(e + 1) * m * n],
                b: &s.b[e * n..(e + 1) * n],
                weight: &s.weight[e * n..(e + 1) * n],
            };
            member(op, &p, dw, db)
        })
        .collect();
    if let Some(out) = loss {
        for (o, l) in out.iter_mut().zip(losses) {
            *o = l as f32;
        }
    }
}
