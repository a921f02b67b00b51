//! Exact Hessian-vector products of an ensemble's training loss, every
//! member along its own direction, by forward-over-reverse differentiation
//! (Pearlmutter's R-operator, 1994): the tangent of the forward pass along
//! the direction (R-forward), the tangent of the loss gradient, and the
//! tangent of the backward pass (R-backward), composed from each layer's
//! pieces as [`Ensemble::backward`] is. `R` marks a tangent:
//!
//! | step | R-forward | R-backward |
//! |---|---|---|
//! | Dense `z = m_w a W^T + m_b b` | `Rz = m_w (Ra W^T + a V_W^T) + m_b V_b` | `R(dW) = m_w (Rdz^T a + dz^T Ra)`, `R(db) = m_b sum Rdz`, `R(da) = m_w (Rdz W + dz V_W)` |
//! | activation `h = act(z)` | `Rh = act'(z) Rz` | `R(dz) = Rdh act'(z) + dh act''(z) Rz` |
//! | LayerNorm | `Ry = J Rx` (J is symmetric: the backward pass applied to Rx) | [`Tangent::LayerNorm`] |
//! | residual `t += s` | `Rt += Rs` | `R(ds) += R(dt)` |
//! | MSE `df = (f - y) / N` | | `R(df) = Rf / N` |
//! | softmax cross-entropy `df = (p - y) / rows` | | `R(df) = (p Rf - p (p . Rf)) / rows` |
//!
//! `H v` is then `(R(dW), R(db))` of every layer. The forward and backward
//! passes at the parameters are shared by every product taken there
//! ([`Hvp::prepare`]); one product costs the R-passes alone.
//!
//! With [`Hvp::preconditioned`] the products are those of `P^1/2 H P^1/2`,
//! `P` the learning-rate multipliers of each tensor (muP, mean-field): the
//! matrix whose largest eigenvalue `lambda` makes gradient descent at step
//! `eta` stable exactly when `eta lambda < 2`.

use super::direction::Direction;
use super::ensemble::{Activations, Ensemble, Grads};
use super::plan::Step;
use crate::backend::{Backend, Batched, Buffer, Loss, Matmul, Tangent};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// The buffers of Hessian-vector products of an ensemble's loss on one data
/// set: the passes at the parameters and the R-passes.
pub struct Hvp<'e, 'd> {
    ens: &'e Ensemble<'d>,
    loss: Loss,
    rows: usize,
    d_out: usize,
    x: Buffer,
    y: Buffer,
    act: Activations,
    g: Grads,
    ract: Activations,
    rd: Vec<Buffer>,
    rhas: Vec<bool>,
    scratch: Vec<Buffer>,
    row_loss: Buffer,
    member_loss: Buffer,
    /// `(sqrt of the weight's, sqrt of the bias's)` learning-rate multiplier per Dense layer.
    scales: Vec<(f32, f32)>,
    /// Each Dense layer's weight and bias among the direction's tensors.
    index: Vec<(usize, Option<usize>)>,
    prepared: bool,
    count: usize,
}

/// Checks a data set against a network; returns the targets as rows of the
/// output dimension (see [`super::train::targets`]).
fn check_data(
    ens: &Ensemble<'_>,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    loss: Loss,
) -> Result<Matrix<f32>> {
    if x.rows == 0 {
        return Err(Error::invalid("x holds no point"));
    }
    if x.cols != ens.spec.d_in {
        return Err(Error::shape(
            "hessian",
            format!(
                "x has {} features but the network has d_in = {}",
                x.cols, ens.spec.d_in
            ),
        ));
    }
    if y.rows != x.rows {
        return Err(Error::shape(
            "hessian",
            format!("y has {} rows but x has {}", y.rows, x.rows),
        ));
    }
    for (name, m) in [("x", x), ("y", y)] {
        if let Some(p) = m.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "{name} has a non-finite value at row {}, column {}",
                p / m.cols,
                p % m.cols
            )));
        }
    }
    super::train::targets(loss, y.view(), ens.spec.d_out())
}

impl<'e, 'd> Hvp<'e, 'd> {
    /// Products of the loss of `ens` on `x` (`[n, d_in]`) and `y` (targets,
    /// or class labels for cross-entropy), at its parameters as they are
    /// when [`Hvp::prepare`] is called.
    pub fn new(
        ens: &'e Ensemble<'d>,
        x: &Matrix<f32>,
        y: &Matrix<f32>,
        loss: Loss,
    ) -> Result<Self> {
        let y = check_data(ens, x, y, loss)?;
        let dev = ens.device();
        let (e, n) = (ens.spec.ensemble, x.rows);
        let widths = &ens.plan.widths;
        let rd = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| dev.zeros(if i == 0 { 1 } else { e * n * w }))
            .collect::<Result<_>>()?;
        let mut distinct: Vec<usize> = widths[1..].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Ok(Hvp {
            loss,
            rows: n,
            d_out: ens.spec.d_out(),
            x: dev.upload(&x.data)?,
            y: dev.upload(&y.data)?,
            act: ens.activations(n)?,
            g: ens.grads(n)?,
            ract: ens.activations(n)?,
            rd,
            rhas: vec![false; widths.len()],
            scratch: distinct
                .iter()
                .map(|&w| dev.zeros(e * n * w))
                .collect::<Result<_>>()?,
            row_loss: dev.zeros(e * n)?,
            member_loss: dev.zeros(e)?,
            scales: vec![(1.0, 1.0); ens.layers.len()],
            index: tensor_index(ens),
            prepared: false,
            count: 0,
            ens,
        })
    }

    /// Products of `P^1/2 H P^1/2` instead of `H`, `P` the learning-rate
    /// multipliers of every tensor under plain gradient descent (all 1 for
    /// `ntk` and `standard`; muP and mean-field scale some layers).
    pub fn preconditioned(mut self) -> Self {
        self.scales = self
            .ens
            .layers
            .iter()
            .map(|l| {
                let s = self.ens.spec.scale(l, false);
                (s.lr_w.sqrt() as f32, s.lr_b.sqrt() as f32)
            })
            .collect();
        self
    }

    /// The ensemble.
    pub fn ensemble(&self) -> &'e Ensemble<'d> {
        self.ens
    }

    /// Products taken so far (each member one per call of [`Hvp::apply`]).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The forward and backward passes at the ensemble's parameters now,
    /// shared by the products that follow (queued; nothing is read back).
    pub fn prepare(&mut self) -> Result<()> {
        let (dev, e) = (self.ens.device(), self.ens.spec.ensemble);
        self.ens.forward(&self.x, &mut self.act)?;
        dev.loss_grad(
            self.loss,
            Batched::new(e, self.rows, self.d_out),
            self.act.output(),
            &self.y,
            self.g.output_grad(),
            &mut self.row_loss,
        )?;
        dev.sum_rows(
            Batched::new(e, 1, self.rows),
            &self.row_loss,
            &mut self.member_loss,
        )?;
        self.ens.backward(&self.x, &self.act, &mut self.g)?;
        self.prepared = true;
        Ok(())
    }

    /// Each member's loss at the parameters of the last [`Hvp::prepare`].
    pub fn losses(&self) -> Result<Vec<f64>> {
        if !self.prepared {
            return Err(Error::invalid("Hvp::losses before Hvp::prepare"));
        }
        let v = self.ens.device().read(&self.member_loss)?;
        Ok(v.into_iter().map(f64::from).collect())
    }

    /// The loss gradient of every tensor after [`Hvp::prepare`] (file order).
    pub fn gradient(&self) -> Result<Vec<Vec<f32>>> {
        let dev = self.ens.device();
        let mut out = Vec::new();
        for (w, b) in self.g.w.iter().zip(&self.g.b) {
            out.push(dev.read(w)?);
            if let Some(b) = b {
                out.push(dev.read(b)?);
            }
        }
        Ok(out)
    }

    /// `out = H v` for every member (its own `v`), at the parameters of the
    /// last [`Hvp::prepare`].
    pub fn apply(&mut self, v: &Direction, out: &mut Direction) -> Result<()> {
        if !self.prepared {
            return Err(Error::invalid("Hvp::apply before Hvp::prepare"));
        }
        let sizes = super::direction::tensor_sizes(self.ens);
        if v.sizes != sizes || out.sizes != sizes || v.members != self.ens.spec.ensemble {
            return Err(Error::shape(
                "hvp",
                "the direction is not shaped like the ensemble's parameters",
            ));
        }
        self.r_forward(v)?;
        self.r_loss()?;
        self.r_backward(v, out)?;
        self.count += 1;
        Ok(())
    }

    fn r_forward(&mut self, v: &Direction) -> Result<()> {
        let (ens, dev) = (self.ens, self.ens.device());
        let (e, n) = (ens.spec.ensemble, self.rows);
        let bufs = &mut self.ract.bufs;
        for step in &ens.plan.steps {
            match *step {
                Step::Dense {
                    layer,
                    input,
                    out,
                    fused,
                } => {
                    let l = &ens.layers[layer];
                    let (spec, mult_w, mult_b) = ens.product(l, n, input == 0);
                    let (cw, cb) = self.scales[layer];
                    let (iw, ib) = self.index[layer];
                    let inp = if input == 0 {
                        &self.x
                    } else {
                        &self.act.bufs[input]
                    };
                    let (lo, hi) = bufs.split_at_mut(out);
                    // Rz = m_w (a V_W^T + Ra W^T) + m_b V_b
                    dev.matmul(&spec.scaled(mult_w * cw, 0.0), inp, &v.t[iw], &mut hi[0])?;
                    if input != 0 {
                        dev.matmul(
                            &spec.scaled(mult_w, 1.0),
                            &lo[input],
                            &ens.w[layer],
                            &mut hi[0],
                        )?;
                    }
                    if let Some(ib) = ib {
                        dev.bias_add(
                            Batched::new(e, n, l.fan_out),
                            &mut hi[0],
                            &v.t[ib],
                            mult_b * cb,
                        )?;
                    }
                    if let Some((a, h)) = fused {
                        let (z, rest) = hi.split_at_mut(1);
                        dev.activation_grad(a, &self.act.bufs[out], &z[0], &mut rest[h - out - 1])?;
                    }
                }
                Step::Activation { act: a, input, out } => {
                    let (lo, hi) = bufs.split_at_mut(out);
                    dev.activation_grad(a, &self.act.bufs[input], &lo[input], &mut hi[0])?;
                }
                Step::LayerNorm {
                    input,
                    out,
                    inv_std,
                    ..
                } => {
                    let width = ens.plan.widths[input];
                    let (lo, hi) = bufs.split_at_mut(out);
                    dev.layer_norm_grad(
                        Batched::new(e, n, width),
                        &self.act.bufs[out],
                        &self.act.bufs[inv_std],
                        &lo[input],
                        &mut hi[0],
                    )?;
                }
                Step::ResidualAdd { skip, target } => {
                    let (lo, hi) = bufs.split_at_mut(target);
                    dev.axpy(1.0, &lo[skip], &mut hi[0])?;
                }
            }
        }
        Ok(())
    }

    /// The tangent of the loss gradient `df` into the output's slot.
    fn r_loss(&mut self) -> Result<()> {
        let dev = self.ens.device();
        let o = self.ens.plan.output;
        let shape = Batched::new(self.ens.spec.ensemble, self.rows, self.d_out);
        match self.loss {
            Loss::Mse => {
                dev.copy(&self.ract.bufs[o], &mut self.rd[o])?;
                dev.scale(&mut self.rd[o], 1.0 / (self.rows * self.d_out) as f32)
            }
            Loss::Xent => dev.tangent(
                &Tangent::Softmax {
                    shape,
                    f: &self.act.bufs[o],
                    rf: &self.ract.bufs[o],
                },
                &mut self.rd[o],
            ),
        }
    }

    fn r_backward(&mut self, v: &Direction, out: &mut Direction) -> Result<()> {
        let ens = self.ens;
        let dev = ens.device();
        let (e, n) = (ens.spec.ensemble, self.rows);
        self.rhas.iter_mut().for_each(|h| *h = false);
        self.rhas[ens.plan.output] = true;
        for step in ens.plan.steps.iter().rev() {
            match *step {
                Step::ResidualAdd { skip, target } => {
                    let (lo, hi) = self.rd.split_at_mut(target);
                    if self.rhas[skip] {
                        dev.axpy(1.0, &hi[0], &mut lo[skip])?;
                    } else {
                        dev.copy(&hi[0], &mut lo[skip])?;
                        self.rhas[skip] = true;
                    }
                }
                Step::Activation { act: a, input, out } => {
                    let (x, dy, rx) = (
                        &self.act.bufs[input],
                        &self.g.d[out],
                        &self.ract.bufs[input],
                    );
                    accumulate(
                        dev,
                        &mut self.rd,
                        &mut self.rhas,
                        &mut self.scratch,
                        input,
                        out,
                        |rdy, dst| {
                            dev.tangent(
                                &Tangent::Activation {
                                    act: a,
                                    x,
                                    dy,
                                    rx,
                                    rdy,
                                },
                                dst,
                            )
                        },
                    )?;
                }
                Step::LayerNorm {
                    input,
                    out,
                    inv_std,
                    ..
                } => {
                    let shape = Batched::new(e, n, ens.plan.widths[input]);
                    let (y, s) = (&self.act.bufs[out], &self.act.bufs[inv_std]);
                    let (dy, rx) = (&self.g.d[out], &self.ract.bufs[input]);
                    accumulate(
                        dev,
                        &mut self.rd,
                        &mut self.rhas,
                        &mut self.scratch,
                        input,
                        out,
                        |rdy, dst| {
                            let op = Tangent::LayerNorm {
                                shape,
                                y,
                                inv_std: s,
                                dy,
                                rx,
                                rdy,
                            };
                            dev.tangent(&op, dst)
                        },
                    )?;
                }
                Step::Dense {
                    layer,
                    input,
                    out: o,
                    fused,
                } => self.r_dense(v, out, layer, input, o, fused)?,
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn r_dense(
        &mut self,
        v: &Direction,
        hv: &mut Direction,
        layer: usize,
        input: usize,
        o: usize,
        fused: Option<(crate::activation::Activation, usize)>,
    ) -> Result<()> {
        let ens = self.ens;
        let dev = ens.device();
        let (e, n) = (ens.spec.ensemble, self.rows);
        let l = &ens.layers[layer];
        if let Some((a, h)) = fused {
            // R(dz) = Rdh act'(z) + dh act''(z) Rz
            let (lo, hi) = self.rd.split_at_mut(h);
            let op = Tangent::Activation {
                act: a,
                x: &self.act.bufs[o],
                dy: &self.g.d[h],
                rx: &self.ract.bufs[o],
                rdy: &hi[0],
            };
            dev.tangent(&op, &mut lo[o])?;
            self.rhas[o] = true;
        }
        let (_, mult_w, mult_b) = ens.product(l, n, input == 0);
        let (cw, cb) = self.scales[layer];
        let (iw, ib) = self.index[layer];
        let inp = if input == 0 {
            &self.x
        } else {
            &self.act.bufs[input]
        };
        // R(dW) = m_w (Rdz^T a + dz^T Ra)
        let tn = Matmul::new(l.fan_out, l.fan_in, n)
            .batch(e)
            .trans(true, false)
            .broadcast(false, input == 0);
        dev.matmul(
            &tn.scaled(mult_w * cw, 0.0),
            &self.rd[o],
            inp,
            &mut hv.t[iw],
        )?;
        if input != 0 {
            dev.matmul(
                &tn.scaled(mult_w * cw, 1.0),
                &self.g.d[o],
                &self.ract.bufs[input],
                &mut hv.t[iw],
            )?;
        }
        // R(db) = m_b sum_rows Rdz
        if let Some(ib) = ib {
            dev.sum_cols(Batched::new(e, n, l.fan_out), &self.rd[o], &mut hv.t[ib])?;
            dev.scale(&mut hv.t[ib], mult_b * cb)?;
        }
        if input != 0 {
            // R(da) (+)= m_w (Rdz W + dz V_W)
            let beta = if self.rhas[input] { 1.0 } else { 0.0 };
            let nn = Matmul::new(n, l.fan_in, l.fan_out).batch(e);
            let (lo, hi) = self.rd.split_at_mut(o);
            dev.matmul(
                &nn.scaled(mult_w, beta),
                &hi[0],
                &ens.w[layer],
                &mut lo[input],
            )?;
            dev.matmul(
                &nn.scaled(mult_w * cw, 1.0),
                &self.g.d[o],
                &v.t[iw],
                &mut lo[input],
            )?;
            self.rhas[input] = true;
        }
        Ok(())
    }
}

/// Each Dense layer's weight and bias among the tensors of a direction.
fn tensor_index(ens: &Ensemble<'_>) -> Vec<(usize, Option<usize>)> {
    let mut i = 0;
    ens.b
        .iter()
        .map(|b| {
            let at = (i, b.as_ref().map(|_| i + 1));
            i += 1 + usize::from(b.is_some());
            at
        })
        .collect()
}

/// Writes (or adds, when `rd[to]` already holds a tangent) the tangent `f`
/// computes from `rd[from]` into `rd[to]` (`to < from`).
fn accumulate(
    dev: &dyn Backend,
    rd: &mut [Buffer],
    rhas: &mut [bool],
    scratch: &mut [Buffer],
    to: usize,
    from: usize,
    f: impl FnOnce(&Buffer, &mut Buffer) -> Result<()>,
) -> Result<()> {
    let (lo, hi) = rd.split_at_mut(from);
    if rhas[to] {
        let len = lo[to].len();
        let tmp = scratch
            .iter_mut()
            .find(|b| b.len() == len)
            .ok_or_else(|| Error::invalid("internal: no scratch buffer"))?;
        f(&hi[0], tmp)?;
        dev.axpy(1.0, tmp, &mut lo[to])
    } else {
        rhas[to] = true;
        f(&hi[0], &mut lo[to])
    }
}
