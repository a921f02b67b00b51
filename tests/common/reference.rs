//! An independent f64 forward pass of a network of any architecture, one
//! member and one point at a time, written from the layer definitions (not
//! from the library's passes): the reference for gradients, Jacobians and
//! device outputs.

use widenet::arch::Layer;
use widenet::matrix::Matrix;
use widenet::net::Params;

/// Outputs of member `e` at every point of `x`, `[rows * d_out]`.
pub fn outputs64(p: &Params, e: usize, x: &Matrix<f32>) -> Vec<f64> {
    let layers = p.spec.dense_layers();
    let mut out = Vec::new();
    for r in 0..x.rows() {
        let mut dense = 0;
        let h: Vec<f64> = x.row(r).iter().map(|&v| v as f64).collect();
        out.extend(block(p, &layers, e, &p.spec.arch.layers, h, &mut dense));
    }
    out
}

fn block(
    p: &Params,
    dl: &[widenet::net::DenseLayer],
    e: usize,
    layers: &[Layer],
    mut h: Vec<f64>,
    dense: &mut usize,
) -> Vec<f64> {
    for layer in layers {
        h = match layer {
            Layer::Dense(_) => {
                let l = &dl[*dense];
                *dense += 1;
                let sc = p.spec.scale(l, false);
                let (fi, fo) = (l.fan_in, l.fan_out);
                let w = &p.weights[l.index][e * fi * fo..(e + 1) * fi * fo];
                (0..fo)
                    .map(|o| {
                        let wx: f64 = (0..fi).map(|i| w[o * fi + i] as f64 * h[i]).sum();
                        let b = p.biases[l.index]
                            .as_ref()
                            .map_or(0.0, |b| b[e * fo + o] as f64);
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
                let inner = block(p, dl, e, b, h.clone(), dense);
                h.iter().zip(inner).map(|(a, b)| a + b).collect()
            }
        };
    }
    h
}

/// MSE loss `1/(2 N) sum (f - y)^2` of member `e` (N = rows * d_out).
pub fn loss64(p: &Params, e: usize, x: &Matrix<f32>, y: &Matrix<f32>) -> f64 {
    let f = outputs64(p, e, x);
    let total: f64 = f
        .iter()
        .zip(y.data())
        .map(|(a, b)| (a - *b as f64).powi(2))
        .sum();
    total / (2.0 * y.data().len() as f64)
}
