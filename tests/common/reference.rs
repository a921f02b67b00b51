//! An independent f64 forward pass of a network of any architecture, one
//! member and one point at a time, written from the layer definitions (not
//! from the library's passes): the reference for gradients, Jacobians,
//! Hessians and device outputs. A member's parameters can be given in f64
//! (`theta`, flattened in file order: each Dense layer's weight
//! `[fan_out, fan_in]`, then its bias), so that finite differences of the
//! loss are taken in f64 throughout.

use widenet::arch::Layer;
use widenet::matrix::Matrix;
use widenet::net::Params;

/// Member `e`'s parameters in f64, flattened in file order.
pub fn flat64(p: &Params, e: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for l in p.spec.dense_layers() {
        let (fi, fo) = (l.fan_in, l.fan_out);
        out.extend(
            p.weights[l.index][e * fi * fo..(e + 1) * fi * fo]
                .iter()
                .map(|&v| v as f64),
        );
        if let Some(b) = &p.biases[l.index] {
            out.extend(b[e * fo..(e + 1) * fo].iter().map(|&v| v as f64));
        }
    }
    out
}

/// Outputs of member `e` at every point of `x`, `[rows * d_out]`.
pub fn outputs64(p: &Params, e: usize, x: &Matrix<f32>) -> Vec<f64> {
    outputs_at(p, &flat64(p, e), x)
}

/// Outputs at every point of `x` of the network of `p` with parameters
/// `theta` (one member, file order), `[rows * d_out]`.
pub fn outputs_at(p: &Params, theta: &[f64], x: &Matrix<f32>) -> Vec<f64> {
    let layers = p.spec.dense_layers();
    // Offsets of each Dense layer's weight and bias in theta.
    let mut offsets = Vec::new();
    let mut at = 0;
    for l in &layers {
        let b = l.dense.has_bias().then_some(at + l.fan_in * l.fan_out);
        offsets.push((at, b));
        at += l.fan_in * l.fan_out + if b.is_some() { l.fan_out } else { 0 };
    }
    assert_eq!(at, theta.len(), "theta has the wrong length");
    let mut out = Vec::new();
    for r in 0..x.rows() {
        let mut dense = 0;
        let h: Vec<f64> = x.row(r).iter().map(|&v| v as f64).collect();
        let net = Net {
            p,
            layers: &layers,
            theta,
            offsets: &offsets,
        };
        out.extend(net.block(&p.spec.arch.layers, h, &mut dense));
    }
    out
}

struct Net<'a> {
    p: &'a Params,
    layers: &'a [widenet::net::DenseLayer],
    theta: &'a [f64],
    offsets: &'a [(usize, Option<usize>)],
}

impl Net<'_> {
    fn block(&self, layers: &[Layer], mut h: Vec<f64>, dense: &mut usize) -> Vec<f64> {
        for layer in layers {
            h = match layer {
                Layer::Dense(_) => {
                    let l = &self.layers[*dense];
                    let (w0, b0) = self.offsets[*dense];
                    *dense += 1;
                    let sc = self.p.spec.scale(l, false);
                    let fi = l.fan_in;
                    (0..l.fan_out)
                        .map(|o| {
                            let wx: f64 = (0..fi).map(|i| self.theta[w0 + o * fi + i] * h[i]).sum();
                            let b = b0.map_or(0.0, |b0| self.theta[b0 + o]);
                            sc.mult_w * wx + sc.mult_b * b
                        })
                        .collect()
                }
                Layer::Activation(a) => h.iter().map(|&v| a.apply(v)).collect(),
                Layer::LayerNorm { eps } => {
                    let n = h.len() as f64;
                    let mean = h.iter().sum::<f64>() / n;
                    let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    h.iter().map(|v| (v - mean) / (eps + var).sqrt()).collect()
                }
                Layer::Residual(b) => {
                    let inner = self.block(b, h.clone(), dense);
                    h.iter().zip(inner).map(|(a, b)| a + b).collect()
                }
            };
        }
        h
    }
}

/// MSE loss `1/(2 N) sum (f - y)^2` of member `e` (N = rows * d_out).
pub fn loss64(p: &Params, e: usize, x: &Matrix<f32>, y: &Matrix<f32>) -> f64 {
    loss_at(p, &flat64(p, e), x, y, false)
}

/// The loss at parameters `theta`: MSE as [`loss64`], or (`xent`) softmax
/// cross-entropy averaged over rows against rows of probabilities `y`.
pub fn loss_at(p: &Params, theta: &[f64], x: &Matrix<f32>, y: &Matrix<f32>, xent: bool) -> f64 {
    let f = outputs_at(p, theta, x);
    if !xent {
        let total: f64 = f
            .iter()
            .zip(y.data())
            .map(|(a, b)| (a - *b as f64).powi(2))
            .sum();
        return total / (2.0 * y.data().len() as f64);
    }
    let c = y.cols();
    let mut total = 0.0;
    for r in 0..y.rows() {
        let fr = &f[r * c..(r + 1) * c];
        let mx = fr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + fr.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        total += (0..c)
            .map(|k| y.at(r, k) as f64 * (lse - fr[k]))
            .sum::<f64>();
    }
    total / y.rows() as f64
}

/// The dense Hessian of [`loss_at`] at `theta`, by central second
/// differences in f64 with step `h` (error of order `h^2`).
// Both triangles are written at once: the indices are the point.
#[allow(clippy::needless_range_loop)]
pub fn hessian_at(
    p: &Params,
    theta: &[f64],
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    xent: bool,
    h: f64,
) -> Vec<Vec<f64>> {
    let n = theta.len();
    let mut t = theta.to_vec();
    let at = |t: &mut Vec<f64>, i: usize, di: f64, j: usize, dj: f64| {
        t[i] += di;
        t[j] += dj;
        let v = loss_at(p, t, x, y, xent);
        t[i] -= di;
        t[j] -= dj;
        v
    };
    let mut hess = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let v = (at(&mut t, i, h, j, h) - at(&mut t, i, h, j, -h) - at(&mut t, i, -h, j, h)
                + at(&mut t, i, -h, j, -h))
                / (4.0 * h * h);
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    hess
}
