//! Plain-Rust twins of every GPU kernel, generic over f32 and f64. The f32
//! instances run the CPU backend; the f64 instances are the oracle that GPU
//! kernels are tested against.

use crate::activation::Activation;
use crate::backend::{Batched, Matmul};
use std::ops::{Add, AddAssign, Mul};

/// f32 or f64.
pub trait Real:
    Copy + Default + PartialEq + Add<Output = Self> + Mul<Output = Self> + AddAssign + Send + Sync
{
    fn from_f64(v: f64) -> Self;
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
pub fn bias_add<T: Real>(s: Batched, y: &mut [T], bias: &[T]) {
    for e in 0..s.batch {
        for r in 0..s.rows {
            let row = &mut y[(e * s.rows + r) * s.cols..][..s.cols];
            for (v, &b) in row.iter_mut().zip(&bias[e * s.cols..][..s.cols]) {
                *v += b;
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
