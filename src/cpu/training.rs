//! The training kernels in f32 on the CPU: losses, divergence flags,
//! optimizer updates and LayerNorm, spread over the cores (rows, members or
//! chunks of a tensor) with no allocation. Each value is computed with the
//! same f64 formulas as the reference twins in [`super::ops`], then rounded.

use super::elementwise::CHUNK;
use crate::backend::{Batched, Loss, Rule, Update};
use rayon::iter::Either;
use rayon::prelude::*;

/// LayerNorm of every row (see `Backend::layer_norm`).
pub(crate) fn layer_norm(s: Batched, eps: f64, x: &[f32], y: &mut [f32], inv_std: &mut [f32]) {
    let c = s.cols;
    if c == 0 {
        return;
    }
    let n = c as f64;
    let norm = |xr: &[f32], yr: &mut [f32]| -> f32 {
        let mean = xr.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = xr
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = ((f64::from(v) - mean) * inv) as f32;
        }
        inv as f32
    };
    let rows_per = (CHUNK / c).max(1);
    if x.len() <= CHUNK {
        for ((xr, yr), iv) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)).zip(inv_std) {
            *iv = norm(xr, yr);
        }
    } else {
        x.par_chunks(rows_per * c)
            .zip(y.par_chunks_mut(rows_per * c))
            .zip(inv_std.par_chunks_mut(rows_per))
            .for_each(|((xb, yb), ib)| {
                for ((xr, yr), iv) in xb.chunks_exact(c).zip(yb.chunks_exact_mut(c)).zip(ib) {
                    *iv = norm(xr, yr);
                }
            });
    }
}

/// The backward pass of [`layer_norm`] from its output.
pub(crate) fn layer_norm_grad(s: Batched, y: &[f32], inv_std: &[f32], dy: &[f32], dx: &mut [f32]) {
    let c = s.cols;
    if c == 0 {
        return;
    }
    let n = c as f64;
    let rows_per = (CHUNK / c).max(1);
    let grad = |r: usize, yb: &[f32], dyb: &[f32], dxb: &mut [f32]| {
        for (i, ((yr, dyr), dxr)) in yb
            .chunks_exact(c)
            .zip(dyb.chunks_exact(c))
            .zip(dxb.chunks_exact_mut(c))
            .enumerate()
        {
            let mdy = dyr.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let mdyy = dyr
                .iter()
                .zip(yr)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>()
                / n;
            let inv = f64::from(inv_std[r + i]);
            for ((o, &g), &v) in dxr.iter_mut().zip(dyr).zip(yr) {
                *o = (inv * (f64::from(g) - mdy - f64::from(v) * mdyy)) as f32;
            }
        }
    };
    if y.len() <= CHUNK {
        grad(0, y, dy, dx);
    } else {
        y.par_chunks(rows_per * c)
            .zip(dy.par_chunks(rows_per * c))
            .zip(dx.par_chunks_mut(rows_per * c))
            .enumerate()
            .for_each(|(b, ((yb, dyb), dxb))| grad(b * rows_per, yb, dyb, dxb));
    }
}

/// Loss and gradient of every member's outputs (see `Backend::loss_grad`).
pub(crate) fn loss_grad(
    loss: Loss,
    s: Batched,
    f: &[f32],
    y: &[f32],
    df: &mut [f32],
    rows: &mut [f32],
) {
    let (n, c) = (s.rows, s.cols);
    if c == 0 {
        rows.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let one = |row: usize, fr: &[f32], dfr: &mut [f32]| -> f32 {
        let r = row % n;
        let yr = &y[r * c..(r + 1) * c];
        match loss {
            Loss::Mse => {
                let inv = 1.0 / (n * c) as f64;
                let mut acc = 0.0;
                for ((d, &fv), &yv) in dfr.iter_mut().zip(fr).zip(yr) {
                    let diff = f64::from(fv) - f64::from(yv);
                    *d = (diff * inv) as f32;
                    acc += diff * diff;
                }
                (0.5 * acc * inv) as f32
            }
            Loss::Xent => {
                let inv = 1.0 / n as f64;
                let mx = fr
                    .iter()
                    .map(|&v| f64::from(v))
                    .fold(f64::NEG_INFINITY, f64::max);
                let lse = mx
                    + fr.iter()
                        .map(|&v| (f64::from(v) - mx).exp())
                        .sum::<f64>()
                        .ln();
                let mut acc = 0.0;
                for ((d, &fv), &yv) in dfr.iter_mut().zip(fr).zip(yr) {
                    let (fv, yv) = (f64::from(fv), f64::from(yv));
                    acc += yv * (lse - fv);
                    *d = (((fv - lse).exp() - yv) * inv) as f32;
                }
                (acc * inv) as f32
            }
        }
    };
    let rows_per = (CHUNK / c).max(1);
    if f.len() <= CHUNK {
        for (r, ((fr, dfr), lr)) in f
            .chunks_exact(c)
            .zip(df.chunks_exact_mut(c))
            .zip(rows.iter_mut())
            .enumerate()
        {
            *lr = one(r, fr, dfr);
        }
    } else {
        f.par_chunks(rows_per * c)
            .zip(df.par_chunks_mut(rows_per * c))
            .zip(rows.par_chunks_mut(rows_per))
            .enumerate()
            .for_each(|(b, ((fb, dfb), lb))| {
                for (i, ((fr, dfr), lr)) in fb
                    .chunks_exact(c)
                    .zip(dfb.chunks_exact_mut(c))
                    .zip(lb.iter_mut())
                    .enumerate()
                {
                    *lr = one(b * rows_per + i, fr, dfr);
                }
            });
    }
}

/// Marks members whose loss is not finite.
pub(crate) fn mark_diverged(step: u32, loss: &[f32], alive: &mut [f32], diverged_at: &mut [f32]) {
    for ((l, a), d) in loss.iter().zip(alive.iter_mut()).zip(diverged_at) {
        if *a > 0.5 && !l.is_finite() {
            *a = 0.0;
            *d = step as f32;
        }
    }
}

/// `Some` chunks of an optional tensor, or as many `None`.
fn opt_chunks(
    s: Option<&mut [f32]>,
    chunk: usize,
    count: usize,
) -> impl IndexedParallelIterator<Item = Option<&mut [f32]>> {
    match s {
        Some(s) => Either::Left(s.par_chunks_mut(chunk).map(Some)),
        None => Either::Right((0..count).into_par_iter().map(|_| None)),
    }
}

/// One optimizer step (see `Backend::update`), over chunks of the tensor in
/// parallel, each chunk's members' step sizes looked up once per member.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update(
    up: &Update,
    member_len: usize,
    grad: &[f32],
    lr: &[f32],
    alive: &[f32],
    param: &mut [f32],
    m: Option<&mut [f32]>,
    v: Option<&mut [f32]>,
) {
    let len = param.len();
    let chunk = CHUNK.min(len.max(1));
    let count = len.div_ceil(chunk);
    let adam = match up.rule {
        Rule::Adam { b1, b2, .. } => {
            let (b1, b2) = (f64::from(b1), f64::from(b2));
            (1.0 - b1.powi(up.step as i32), 1.0 - b2.powi(up.step as i32))
        }
        _ => (1.0, 1.0),
    };
    let run =
        |ci: usize, p: &mut [f32], g: &[f32], m: Option<&mut [f32]>, v: Option<&mut [f32]>| {
            let base = ci * chunk;
            let (mut m, mut v) = (m, v);
            let mut i = 0;
            while i < p.len() {
                let e = (base + i) / member_len;
                let end = ((e + 1) * member_len - base).min(p.len());
                let s = f64::from(lr[e]) * f64::from(up.scale);
                if alive[e] > 0.5 && s != 0.0 {
                    let seg = i..end;
                    step(
                        up.rule,
                        s,
                        adam,
                        &mut p[seg.clone()],
                        &g[seg.clone()],
                        m.as_deref_mut().map(|m| &mut m[seg.clone()]),
                        v.as_deref_mut().map(|v| &mut v[seg]),
                    );
                }
                i = end;
            }
        };
    if count == 1 {
        run(0, param, grad, m, v);
        return;
    }
    param
        .par_chunks_mut(chunk)
        .zip(grad.par_chunks(chunk))
        .zip(opt_chunks(m, chunk, count))
        .zip(opt_chunks(v, chunk, count))
        .enumerate()
        .for_each(|(ci, (((p, g), m), v))| run(ci, p, g, m, v));
}

/// The update of one member's segment with step size `s` (`bc`: Adam's bias
/// corrections).
fn step(
    rule: Rule,
    s: f64,
    bc: (f64, f64),
    p: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    v: Option<&mut [f32]>,
) {
    match (rule, m, v) {
        (Rule::Sgd, _, _) => {
            for (p, &g) in p.iter_mut().zip(g) {
                *p = (f64::from(*p) - s * f64::from(g)) as f32;
            }
        }
        (Rule::Momentum { mu }, Some(m), _) => {
            let mu = f64::from(mu);
            for ((p, &g), m) in p.iter_mut().zip(g).zip(m) {
                let x = mu * f64::from(*m) + f64::from(g);
                *m = x as f32;
                *p = (f64::from(*p) - s * x) as f32;
            }
        }
        (Rule::Adam { b1, b2, eps }, Some(m), Some(v)) => {
            let (b1, b2, eps) = (f64::from(b1), f64::from(b2), f64::from(eps));
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                let g = f64::from(g);
                let mi = b1 * f64::from(*m) + (1.0 - b1) * g;
                let vi = b2 * f64::from(*v) + (1.0 - b2) * g * g;
                *m = mi as f32;
                *v = vi as f32;
                *p = (f64::from(*p) - s * (mi / bc.0) / ((vi / bc.1).sqrt() + eps)) as f32;
            }
        }
        // The state buffers were checked against the rule by the caller.
        _ => {}
    }
}
