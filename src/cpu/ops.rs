//! Plain-Rust twins of every GPU kernel, generic over f32 and f64. The f32
//! instances run the CPU backend; the f64 instances are the oracle that GPU
//! kernels are tested against.

use crate::activation::Activation;
use crate::backend::{Batched, Draw, Loss, Matmul, Rule, Update};
use std::ops::{Add, AddAssign, Mul};

/// f32 or f64.
pub trait Real:
    Copy + Default + PartialEq + Add<Output = Self> + Mul<Output = Self> + AddAssign + Send + Sync
{
    /// From f64, rounding as `as` does.
    fn from_f64(v: f64) -> Self;
    /// To f64, exactly.
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Twin of `matmul` in `shaders/matmul.wgsl`.
pub fn matmul<T: Real>(spec: &Matmul, a: &[T], b: &[T], c: &mut [T]) {
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let (asi, asp) = spec.a_strides();
    let (bsp, bsj) = spec.b_strides();
    let alpha = T::from_f64(spec.alpha as f64);
    let beta = T::from_f64(spec.beta as f64);
    let mut row = vec![T::default(); n];
    for e in 0..spec.batch {
        let ab = if spec.broadcast_a { 0 } else { e * m * k };
        let bb = if spec.broadcast_b { 0 } else { e * k * n };
        let cb = e * m * n;
        for i in 0..m {
            row.iter_mut().for_each(|v| *v = T::default());
            for p in 0..k {
                let av = a[ab + i * asi + p * asp];
                let brow = bb + p * bsp;
                for (j, r) in row.iter_mut().enumerate() {
                    *r += av * b[brow + j * bsj];
                }
            }
            let crow = &mut c[cb + i * n..cb + (i + 1) * n];
            for (cv, &r) in crow.iter_mut().zip(&row) {
                *cv = if spec.beta == 0.0 {
                    alpha * r
                } else {
                    alpha * r + beta * *cv
                };
            }
        }
    }
}

/// Twin of `act_forward`.
pub fn activation<T: Real>(act: Activation, x: &[T], y: &mut [T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = T::from_f64(act.apply(xv.to_f64()));
    }
}

/// Twin of `act_backward`: `dx = dy * act'(x)`.
pub fn activation_grad<T: Real>(act: Activation, x: &[T], dy: &[T], dx: &mut [T]) {
    for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
        *d = g * T::from_f64(act.derivative(xv.to_f64()));
    }
}

/// Twin of `bias_add`.
pub fn bias_add<T: Real>(s: Batched, y: &mut [T], bias: &[T], alpha: f32) {
    let alpha = T::from_f64(alpha as f64);
    for e in 0..s.batch {
        for r in 0..s.rows {
            let row = &mut y[(e * s.rows + r) * s.cols..][..s.cols];
            for (v, &b) in row.iter_mut().zip(&bias[e * s.cols..][..s.cols]) {
                *v += alpha * b;
            }
        }
    }
}

/// Twin of `sum_rows`.
pub fn sum_rows<T: Real>(s: Batched, x: &[T], out: &mut [T]) {
    for (o, row) in out.iter_mut().zip(x.chunks(s.cols.max(1))) {
        let mut acc = T::default();
        for &v in row {
            acc += v;
        }
        *o = acc;
    }
}

/// Twin of `sum_cols`.
pub fn sum_cols<T: Real>(s: Batched, x: &[T], out: &mut [T]) {
    for e in 0..s.batch {
        let o = &mut out[e * s.cols..][..s.cols];
        o.iter_mut().for_each(|v| *v = T::default());
        for r in 0..s.rows {
            for (ov, &v) in o.iter_mut().zip(&x[(e * s.rows + r) * s.cols..][..s.cols]) {
                *ov += v;
            }
        }
    }
}

/// Twin of `scale`.
pub fn scale<T: Real>(x: &mut [T], alpha: T) {
    x.iter_mut().for_each(|v| *v = alpha * *v);
}

/// Twin of `axpy`.
pub fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += alpha * xv;
    }
}

/// Twin of `mul`.
pub fn mul<T: Real>(x: &[T], y: &[T], z: &mut [T]) {
    for ((zv, &a), &b) in z.iter_mut().zip(x).zip(y) {
        *zv = a * b;
    }
}

/// Twin of `layer_norm` in `shaders/layer_norm.wgsl`.
pub fn layer_norm<T: Real>(s: Batched, eps: f64, x: &[T], y: &mut [T], inv_std: &mut [T]) {
    let c = s.cols;
    for (r, (xr, yr)) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)).enumerate() {
        let n = c as f64;
        let mean = xr.iter().map(|v| v.to_f64()).sum::<f64>() / n;
        let var = xr.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (o, v) in yr.iter_mut().zip(xr) {
            *o = T::from_f64((v.to_f64() - mean) * inv);
        }
        inv_std[r] = T::from_f64(inv);
    }
}

/// Twin of `layer_norm_grad` in `shaders/layer_norm.wgsl`.
pub fn layer_norm_grad<T: Real>(s: Batched, y: &[T], inv_std: &[T], dy: &[T], dx: &mut [T]) {
    let c = s.cols;
    for (r, ((yr, dyr), dxr)) in y
        .chunks_exact(c)
        .zip(dy.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
        .enumerate()
    {
        let n = c as f64;
        let mdy = dyr.iter().map(|v| v.to_f64()).sum::<f64>() / n;
        let mdyy = dyr
            .iter()
            .zip(yr)
            .map(|(a, b)| a.to_f64() * b.to_f64())
            .sum::<f64>()
            / n;
        let inv = inv_std[r].to_f64();
        for ((o, &g), &v) in dxr.iter_mut().zip(dyr).zip(yr) {
            *o = T::from_f64(inv * (g.to_f64() - mdy - v.to_f64() * mdyy));
        }
    }
}

/// Twin of `loss_grad` in `shaders/loss.wgsl`.
pub fn loss_grad<T: Real>(loss: Loss, s: Batched, f: &[T], y: &[T], df: &mut [T], rows: &mut [T]) {
    let (n, c) = (s.rows, s.cols);
    for e in 0..s.batch {
        for r in 0..n {
            let base = (e * n + r) * c;
            let fr: Vec<f64> = f[base..base + c].iter().map(|v| v.to_f64()).collect();
            let yr: Vec<f64> = y[r * c..(r + 1) * c].iter().map(|v| v.to_f64()).collect();
            match loss {
                Loss::Mse => {
                    let inv = 1.0 / (n * c) as f64;
                    let mut acc = 0.0;
                    for k in 0..c {
                        let d = fr[k] - yr[k];
                        df[base + k] = T::from_f64(d * inv);
                        acc += d * d;
                    }
                    rows[e * n + r] = T::from_f64(0.5 * acc * inv);
                }
                Loss::Xent => {
                    let inv = 1.0 / n as f64;
                    let mx = fr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let lse = mx + fr.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                    let mut acc = 0.0;
                    for k in 0..c {
                        acc += yr[k] * (lse - fr[k]);
                        df[base + k] = T::from_f64(((fr[k] - lse).exp() - yr[k]) * inv);
                    }
                    rows[e * n + r] = T::from_f64(acc * inv);
                }
            }
        }
    }
}

/// Twin of `mark_diverged`.
pub fn mark_diverged<T: Real>(step: u32, loss: &[T], alive: &mut [T], diverged_at: &mut [T]) {
    for ((l, a), d) in loss
        .iter()
        .zip(alive.iter_mut())
        .zip(diverged_at.iter_mut())
    {
        if a.to_f64() > 0.5 && !l.to_f64().is_finite() {
            *a = T::from_f64(0.0);
            *d = T::from_f64(step as f64);
        }
    }
}

/// Twin of `sgd`, `momentum` and `adam` in `shaders/optimizer.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn update<T: Real>(
    up: &Update,
    member_len: usize,
    grad: &[T],
    lr: &[T],
    alive: &[T],
    param: &mut [T],
    m: Option<&mut [T]>,
    v: Option<&mut [T]>,
) {
    let mut m = m;
    let mut v = v;
    for (i, p) in param.iter_mut().enumerate() {
        let e = i / member_len;
        if alive[e].to_f64() <= 0.5 {
            continue;
        }
        let s = lr[e].to_f64() * up.scale as f64;
        if s == 0.0 {
            continue;
        }
        let g = grad[i].to_f64();
        let pv = p.to_f64();
        let new = match up.rule {
            Rule::Sgd => pv - s * g,
            Rule::Momentum { mu } => {
                let mm = m.as_deref_mut().map_or(0.0, |m| {
                    let x = mu as f64 * m[i].to_f64() + g;
                    m[i] = T::from_f64(x);
                    x
                });
                pv - s * mm
            }
            Rule::Adam { b1, b2, eps } => {
                let (b1, b2) = (b1 as f64, b2 as f64);
                let bc1 = 1.0 - b1.powi(up.step as i32);
                let bc2 = 1.0 - b2.powi(up.step as i32);
                let mi = m.as_deref_mut().map_or(0.0, |m| {
                    let x = b1 * m[i].to_f64() + (1.0 - b1) * g;
                    m[i] = T::from_f64(x);
                    x
                });
                let vi = v.as_deref_mut().map_or(0.0, |v| {
                    let x = b2 * v[i].to_f64() + (1.0 - b2) * g * g;
                    v[i] = T::from_f64(x);
                    x
                });
                pv - s * (mi / bc1) / ((vi / bc2).sqrt() + eps as f64)
            }
        };
        *p = T::from_f64(new);
    }
}

/// Twin of `gather_rows`.
pub fn gather_rows<T: Real>(src: &[T], cols: usize, idx: &[u32], dst: &mut [T]) {
    for (r, &i) in idx.iter().enumerate() {
        dst[r * cols..(r + 1) * cols]
            .copy_from_slice(&src[i as usize * cols..(i as usize + 1) * cols]);
    }
}

/// Twin of `activation_tangent` in `shaders/hessian.wgsl`:
/// `out = rdy * act'(x) + dy * act''(x) * rx`.
pub fn activation_tangent<T: Real>(
    act: Activation,
    x: &[T],
    dy: &[T],
    rx: &[T],
    rdy: &[T],
    out: &mut [T],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let xv = x[i].to_f64();
        *o = T::from_f64(
            rdy[i].to_f64() * act.derivative(xv)
                + dy[i].to_f64() * act.second_derivative(xv) * rx[i].to_f64(),
        );
    }
}

/// Twin of `layer_norm_tangent` in `shaders/hessian.wgsl`: the tangent of
/// [`layer_norm_grad`] along `rx` (input) and `rdy` (output gradient).
pub fn layer_norm_tangent<T: Real>(
    s: Batched,
    y: &[T],
    inv_std: &[T],
    dy: &[T],
    rx: &[T],
    rdy: &[T],
    out: &mut [T],
) {
    let c = s.cols;
    let n = c as f64;
    for (r, inv) in inv_std.iter().enumerate().take(s.batch * s.rows) {
        let row = r * c..(r + 1) * c;
        let f = |v: &[T], i: usize| v[row.start + i].to_f64();
        let mean = |g: &dyn Fn(usize) -> f64| (0..c).map(g).sum::<f64>() / n;
        let m_dy = mean(&|i| f(dy, i));
        let m_dyy = mean(&|i| f(dy, i) * f(y, i));
        let m_rdy = mean(&|i| f(rdy, i));
        let m_rdyy = mean(&|i| f(rdy, i) * f(y, i));
        let m_yrx = mean(&|i| f(y, i) * f(rx, i));
        let m_rx = mean(&|i| f(rx, i));
        let m_dyrx = mean(&|i| f(dy, i) * f(rx, i));
        let sc = inv.to_f64();
        // mean(dy * ry), ry = s (rx - mean(rx) - y mean(y rx)).
        let m_dyry = sc * (m_dyrx - m_dy * m_rx - m_dyy * m_yrx);
        for i in 0..c {
            let (yi, dyi) = (f(y, i), f(dy, i));
            let ry = sc * (f(rx, i) - m_rx - yi * m_yrx);
            let dx = sc * (dyi - m_dy - yi * m_dyy);
            out[row.start + i] = T::from_f64(
                -sc * m_yrx * dx + sc * (f(rdy, i) - m_rdy - ry * m_dyy - yi * (m_rdyy + m_dyry)),
            );
        }
    }
}

/// Twin of `softmax_tangent` in `shaders/hessian.wgsl`:
/// `out = (p * rf - p (p . rf)) / rows` per row, `p = softmax(f)`.
pub fn softmax_tangent<T: Real>(s: Batched, f: &[T], rf: &[T], out: &mut [T]) {
    let c = s.cols;
    let inv = 1.0 / s.rows as f64;
    for r in 0..s.batch * s.rows {
        let fr: Vec<f64> = f[r * c..(r + 1) * c].iter().map(|v| v.to_f64()).collect();
        let mx = fr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = fr.iter().map(|v| (v - mx).exp()).sum();
        let p: Vec<f64> = fr.iter().map(|v| (v - mx).exp() / z).collect();
        let pr: f64 = (0..c).map(|k| p[k] * rf[r * c + k].to_f64()).sum();
        for k in 0..c {
            out[r * c + k] = T::from_f64(p[k] * (rf[r * c + k].to_f64() - pr) * inv);
        }
    }
}

/// Twin of `row_dots` in `shaders/hessian.wgsl`:
/// `out[e, r] = beta * out[e, r] + sum_c a[e, r, c] x[e, c]`.
pub fn row_dots<T: Real>(s: Batched, a: &[T], x: &[T], beta: f32, out: &mut [T]) {
    for e in 0..s.batch {
        let xe = &x[e * s.cols..(e + 1) * s.cols];
        for r in 0..s.rows {
            let row = &a[(e * s.rows + r) * s.cols..][..s.cols];
            let mut acc = T::default();
            for (&u, &v) in row.iter().zip(xe) {
                acc += u * v;
            }
            let o = &mut out[e * s.rows + r];
            *o = if beta == 0.0 {
                acc
            } else {
                T::from_f64(f64::from(beta)) * *o + acc
            };
        }
    }
}

/// Twin of `sparse_features` in `shaders/sparse_features.wgsl`: member `e`
/// (id `member[e]`) draws `x[e, r, c]` from [`crate::rng::sparse_feature`].
pub fn sparse_features<T: Real>(
    s: Batched,
    draw: Draw,
    member: &[u32],
    sparsity: &[f32],
    x: &mut [T],
) {
    let per = s.rows * s.cols;
    for (e, xm) in x.chunks_exact_mut(per.max(1)).take(s.batch).enumerate() {
        let key = crate::rng::draw_key(draw.seed, member[e], draw.step);
        for (i, v) in xm.iter_mut().enumerate() {
            let f = crate::rng::sparse_feature(key, i as u32, sparsity[e]);
            *v = T::from_f64(f64::from(f));
        }
    }
}
