//! Empirical kernels of every member of an ensemble, on the device, from
//! per-layer Gram matrices (no per-parameter Jacobian is ever formed):
//!
//! `Theta(x, x') = sum_l mult_w_l^2 (d_l(x) . d_l(x')) (a_l(x) . a_l(x')) + mult_b_l^2 (d_l(x) . d_l(x'))`
//!
//! with `a_l` the input of layer `l` and `d_l = df / dz_l`, averaged over the
//! outputs (neural-tangents' `empirical_ntk_fn` with `trace_axes=(-1,)`). It is
//! the NTK of the trainable parameters as stored, without learning-rate
//! multipliers. The empirical NNGP is that of the readout given the last hidden
//! features, `mult_w^2 (h . h') + mult_b^2`, averaged likewise.

use super::ensemble::Ensemble;
use crate::backend::Matmul;
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Kernels of every member: `[E, n, n]` each.
#[derive(Clone, Debug)]
pub struct EmpiricalKernels {
    /// The empirical NTK.
    pub ntk: Vec<f32>,
    /// The NNGP of the readout given its input features (`None` when the
    /// network does not end with a Dense layer).
    pub nngp: Option<Vec<f32>>,
    /// Members.
    pub members: usize,
    /// Points.
    pub n: usize,
}

/// The empirical NTK and NNGP of every member on the points `x` (`[n, d_in]`).
pub fn empirical_kernels(ens: &mut Ensemble<'_>, x: &Matrix<f32>) -> Result<EmpiricalKernels> {
    kernels_weighted(ens, x, false)
}

/// The kernel that gradient descent actually follows: each layer's
/// contribution weighted by its learning-rate multiplier (for SGD), so that
/// one step moves the outputs on `x` by `-(lr / N) Theta_eff (f - y)`.
pub fn effective_ntk(ens: &mut Ensemble<'_>, x: &Matrix<f32>) -> Result<EmpiricalKernels> {
    kernels_weighted(ens, x, true)
}

fn kernels_weighted(
    ens: &mut Ensemble<'_>,
    x: &Matrix<f32>,
    lr_weighted: bool,
) -> Result<EmpiricalKernels> {
    let spec = ens.spec.clone();
    let d_out = spec.d_out();
    if x.cols != spec.d_in || x.rows == 0 {
        return Err(Error::shape(
            "empirical_kernels",
            format!(
                "x is {} x {}, the network has d_in = {}",
                x.rows, x.cols, spec.d_in
            ),
        ));
    }
    let dev = ens.dev;
    let (e, n) = (spec.ensemble, x.rows);
    let xs = dev.upload(&x.data)?;
    let mut act = ens.activations(n)?;
    ens.forward(&xs, &mut act)?;
    let mut g = ens.grads(n)?;
    let mut ntk = dev.zeros(e * n * n)?;
    let mut nngp = dev.zeros(e * n * n)?;
    let mut ga = dev.zeros(e * n * n)?;
    let mut gd = dev.zeros(e * n * n)?;
    let mut prod = dev.zeros(e * n * n)?;
    let mut ones = vec![0.0f32; e * n * d_out];
    let inv_out = 1.0 / d_out as f32;
    let layers = ens.layers.clone();
    let last = layers.len() - 1;
    // The NNGP is that of the readout given its input: defined when the
    // network ends with its last Dense layer.
    let readout_last = matches!(spec.arch.layers.last(), Some(crate::arch::Layer::Dense(_)));
    // Gram of the inputs of every layer (members share the first one).
    let gram = |m: &Matmul, a: &crate::backend::Buffer, out: &mut crate::backend::Buffer| {
        dev.matmul(m, a, a, out)
    };
    for k in 0..d_out {
        ones.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = if i % d_out == k { 1.0 } else { 0.0 });
        dev.write(g.output_grad(), &ones)?;
        ens.backward(&xs, &act, &mut g)?;
        for l in &layers {
            let s = spec.scale(l, false);
            let (input, _) = ens
                .plan
                .dense_of(l.index)
                .ok_or_else(|| Error::invalid("internal: Dense layer missing from the plan"))?;
            let a = if input == 0 { &xs } else { &act.bufs[input] };
            let ma = Matmul::new(n, n, l.fan_in)
                .batch(e)
                .trans(false, true)
                .broadcast(input == 0, input == 0);
            gram(&ma, a, &mut ga)?;
            let md = Matmul::new(n, n, l.fan_out).batch(e).trans(false, true);
            gram(&md, g.delta(ens, l.index)?, &mut gd)?;
            dev.mul(&gd, &ga, &mut prod)?;
            let (rw, rb) = if lr_weighted {
                (s.lr_w, s.lr_b)
            } else {
                (1.0, 1.0)
            };
            dev.axpy((rw * s.mult_w * s.mult_w) as f32 * inv_out, &prod, &mut ntk)?;
            if l.dense.has_bias() {
                dev.axpy((rb * s.mult_b * s.mult_b) as f32 * inv_out, &gd, &mut ntk)?;
            }
            if l.index == last && k == 0 && readout_last {
                // The readout's input Gram gives the NNGP (the same for every output).
                dev.scale(&mut ga, (s.mult_w * s.mult_w) as f32)?;
                let b2 = if l.dense.has_bias() {
                    s.mult_b * s.mult_b
                } else {
                    0.0
                };
                dev.write(&mut nngp, &vec![b2 as f32; e * n * n])?;
                dev.axpy(1.0, &ga, &mut nngp)?;
            }
        }
    }
    Ok(EmpiricalKernels {
        ntk: dev.read(&ntk)?,
        nngp: if readout_last {
            Some(dev.read(&nngp)?)
        } else {
            None
        },
        members: e,
        n,
    })
}

/// `||a - b||_F / ||b||_F`, the relative distance between two kernels.
pub fn kernel_distance(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}
