//! Finite deep networks at initialization against the infinite-width maps:
//! the length `q_l` and correlation `c_l` of two inputs layer by layer, and
//! the squared norm of the gradient reaching each layer against `chi_1^l`.
//!
//! Every point of a sweep is a member of one ensemble: the network is built
//! in the standard parameterization with `W_std = b_std = 1` and each
//! member's stored weights and biases are scaled by `sqrt(sw2)` and
//! `sqrt(sb2)` of its point before upload, which is exactly a network
//! initialized at that point.

use crate::activation::{Activation, kernel};
use crate::arch::{Arch, Mlp, Parameterization};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::net::{Ensemble, NetSpec, Params};
use crate::rng::Rng;

/// A network of `depth` hidden layers of `width` whose member `e` sits at
/// `points[e / seeds]`; the input layer's weight variance is `first[p]`
/// instead of `sw2` when given. Each point's `seeds` members are
/// consecutive; `seed` seeds the whole ensemble.
#[allow(clippy::too_many_arguments)]
pub fn members(
    act: Activation,
    width: usize,
    depth: usize,
    d_in: usize,
    d_out: usize,
    points: &[(f64, f64)],
    first: Option<&[f64]>,
    seeds: usize,
    seed: u64,
) -> Result<Params> {
    let spec = NetSpec {
        arch: Arch::mlp(&Mlp {
            depth,
            width,
            activation: act,
            w_std: 1.0,
            b_std: Some(1.0),
            parameterization: Parameterization::Standard,
            d_out,
        }),
        d_in,
        ensemble: points.len() * seeds,
        parameterization: None,
        base_width: 64,
    };
    let mut p = Params::init(&spec, seed)?;
    for layer in spec.dense_layers() {
        let (l, per_w, per_b) = (layer.index, layer.fan_in * layer.fan_out, layer.fan_out);
        for e in 0..spec.ensemble {
            let (sw2, sb2) = points[e / seeds];
            let var_w = match first {
                Some(f) if l == 0 => f[e / seeds],
                _ => sw2,
            };
            let (sw, sb) = (var_w.sqrt() as f32, sb2.sqrt() as f32);
            p.weights[l][e * per_w..(e + 1) * per_w]
                .iter_mut()
                .for_each(|v| *v *= sw);
            if let Some(b) = p.biases[l].as_mut() {
                b[e * per_b..(e + 1) * per_b]
                    .iter_mut()
                    .for_each(|v| *v *= sb);
            }
        }
    }
    Ok(p)
}

/// Two inputs of `d` features with `x . x / d = q0` and correlation `c0`.
pub fn input_pair(d: usize, q0: f64, c0: f64, seed: u64) -> Matrix<f32> {
    let mut r = Rng::new(seed ^ 0x000c_4a05);
    let mut u: Vec<f64> = (0..d).map(|_| r.normal()).collect();
    let mut v: Vec<f64> = (0..d).map(|_| r.normal()).collect();
    let norm = |a: &[f64]| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nu = norm(&u);
    u.iter_mut().for_each(|x| *x /= nu);
    let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
    v.iter_mut().zip(&u).for_each(|(b, a)| *b -= dot * a);
    let nv = norm(&v);
    v.iter_mut().for_each(|x| *x /= nv);
    let s = (q0 * d as f64).sqrt();
    let s2 = (1.0 - c0 * c0).max(0.0).sqrt();
    let mut data: Vec<f32> = u.iter().map(|a| (s * a) as f32).collect();
    data.extend(
        u.iter()
            .zip(&v)
            .map(|(a, b)| (s * (c0 * a + s2 * b)) as f32),
    );
    Matrix {
        rows: 2,
        cols: d,
        data,
    }
}

/// The measured `(q_l of the first input, c_l)` of every member at each
/// hidden layer: `[member][layer]`.
pub type Measured = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Forward pass of `params` on the two rows of `x`; `q_l` (first input) and
/// `c_l` per member and hidden layer.
pub fn measure(dev: &dyn Backend, params: &Params, x: &Matrix<f32>) -> Result<Measured> {
    let ens = Ensemble::new(dev, params)?;
    let xs = dev.upload(&x.data)?;
    let mut act = ens.activations(2)?;
    ens.forward(&xs, &mut act)?;
    let e = params.spec.ensemble;
    let hidden = ens.dense_layers().len() - 1;
    let mut q = vec![Vec::with_capacity(hidden); e];
    let mut c = vec![Vec::with_capacity(hidden); e];
    for l in 0..hidden {
        let w = ens.dense_layers()[l].fan_out;
        let z = dev.read(ens.preactivations(&act, l)?)?;
        for m in 0..e {
            let a = &z[(2 * m) * w..(2 * m + 1) * w];
            let b = &z[(2 * m + 1) * w..(2 * m + 2) * w];
            let dot = |u: &[f32], v: &[f32]| {
                u.iter()
                    .zip(v)
                    .map(|(x, y)| *x as f64 * *y as f64)
                    .sum::<f64>()
                    / w as f64
            };
            let (q11, q22, q12) = (dot(a, a), dot(b, b), dot(a, b));
            q[m].push(q11);
            c[m].push(q12 / (q11 * q22).sqrt());
        }
    }
    Ok((q, c))
}

/// The infinite-width maps iterated from the input layer: `(q_l, c_l)` at
/// hidden layers `1..=depth` for inputs of length `q0` and correlation `c0`.
pub fn theory(
    act: Activation,
    sw2: f64,
    sb2: f64,
    q0: f64,
    c0: f64,
    depth: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (mut q, mut q12) = (sw2 * q0 + sb2, sw2 * q0 * c0 + sb2);
    let (mut qs, mut cs) = (Vec::with_capacity(depth), Vec::with_capacity(depth));
    for _ in 0..depth {
        qs.push(q);
        cs.push(if q > 0.0 { q12 / q } else { f64::NAN });
        let next12 = sw2 * kernel::pair(act, q12, q, q, false).0 + sb2;
        q = sw2 * kernel::diag(act, q) + sb2;
        q12 = next12;
    }
    (qs, cs)
}

/// Squared norms of the gradient `dL/dz_l` at each hidden layer relative to
/// the last hidden layer's, per member, for a random output gradient.
pub fn gradient_norms(
    dev: &dyn Backend,
    params: &Params,
    x: &Matrix<f32>,
    seed: u64,
) -> Result<Vec<Vec<f64>>> {
    let ens = Ensemble::new(dev, params)?;
    let xs = dev.upload(&x.data)?;
    let mut act = ens.activations(2)?;
    ens.forward(&xs, &mut act)?;
    let mut g = ens.grads(2)?;
    let e = params.spec.ensemble;
    let d_out = params.spec.d_out();
    let df = Rng::new(seed ^ 0x9a7d).normals_f32(e * 2 * d_out);
    dev.write(g.output_grad(), &df)?;
    ens.backward(&xs, &act, &mut g)?;
    let hidden = ens.dense_layers().len() - 1;
    if hidden == 0 {
        return Err(Error::invalid("the network has no hidden layer"));
    }
    let mut norms = vec![Vec::with_capacity(hidden); e];
    for l in 0..hidden {
        let d = dev.read(g.delta(&ens, l)?)?;
        let per = d.len() / e;
        for (m, n) in norms.iter_mut().enumerate() {
            n.push(
                d[m * per..(m + 1) * per]
                    .iter()
                    .map(|v| *v as f64 * *v as f64)
                    .sum(),
            );
        }
    }
    for n in &mut norms {
        let last = n[hidden - 1];
        n.iter_mut().for_each(|v| *v /= last);
    }
    Ok(norms)
}
