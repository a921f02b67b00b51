//! An ensemble on a backend: forward and backward passes over all members at
//! once, composed from each layer's own passes (one batched product per Dense
//! layer), with the activations kept for the backward pass.

use super::params::Params;
use super::plan::{Plan, Step};
use super::{DenseLayer, NetSpec};
use crate::backend::{Backend, Batched, Buffer, Matmul};
use crate::error::{Error, Result};

/// Parameters on the device.
pub struct Ensemble<'d> {
    pub(crate) dev: &'d dyn Backend,
    /// The network.
    pub spec: NetSpec,
    pub(crate) layers: Vec<DenseLayer>,
    pub(crate) plan: Plan,
    pub(crate) w: Vec<Buffer>,
    pub(crate) b: Vec<Option<Buffer>>,
    /// Zeros standing in for the bias of a bias-free layer in fused products.
    zero_b: Vec<Option<Buffer>>,
    /// Optimizer flavour the learning-rate multipliers are taken for.
    pub(crate) adam: bool,
}

/// Activations of one forward pass over `rows` inputs, reused between passes.
pub struct Activations {
    /// Inputs per member.
    pub rows: usize,
    /// Every intermediate buffer, `[E, rows, width]` (index 0 unused: the input).
    pub(crate) bufs: Vec<Buffer>,
    output: usize,
}

impl Activations {
    /// The network's outputs, `[E, rows, d_out]`.
    pub fn output(&self) -> &Buffer {
        &self.bufs[self.output]
    }
}

/// Gradients of every parameter tensor, shaped like them, and of every
/// intermediate buffer.
pub struct Grads {
    /// Weight gradients per Dense layer.
    pub w: Vec<Buffer>,
    /// Bias gradients per Dense layer with a bias.
    pub b: Vec<Option<Buffer>>,
    /// The gradient of every intermediate buffer (index 0 unused: the input).
    pub(crate) d: Vec<Buffer>,
    has: Vec<bool>,
    scratch: Vec<Buffer>,
    output: usize,
}

/// `(&v[i], &mut v[j])` for `i < j`.
fn pair(v: &mut [Buffer], i: usize, j: usize) -> (&Buffer, &mut Buffer) {
    let (lo, hi) = v.split_at_mut(j);
    (&lo[i], &mut hi[0])
}

impl<'d> Ensemble<'d> {
    /// Uploads parameters.
    pub fn new(dev: &'d dyn Backend, p: &Params) -> Result<Self> {
        p.check()?;
        let layers = p.spec.dense_layers();
        let plan = Plan::new(&p.spec);
        let w = p
            .weights
            .iter()
            .map(|v| dev.upload(v))
            .collect::<Result<_>>()?;
        let b = p
            .biases
            .iter()
            .map(|v| v.as_ref().map(|v| dev.upload(v)).transpose())
            .collect::<Result<_>>()?;
        let zero_b = layers
            .iter()
            .map(|l| {
                (!l.dense.has_bias())
                    .then(|| dev.zeros(p.spec.ensemble * l.fan_out))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Ensemble {
            dev,
            spec: p.spec.clone(),
            layers,
            plan,
            w,
            b,
            zero_b,
            adam: false,
        })
    }

    /// The device the ensemble lives on.
    pub fn device(&self) -> &'d dyn Backend {
        self.dev
    }

    /// The Dense layers, in parameter order.
    pub fn dense_layers(&self) -> &[DenseLayer] {
        &self.layers
    }

    /// The input of the last Dense layer (the readout's features, `[E, rows,
    /// fan_in]`) after a forward pass; `None` when it reads the network input.
    pub fn features<'a>(&self, act: &'a Activations) -> Option<&'a Buffer> {
        let last = self.layers.len().checked_sub(1)?;
        let (input, _) = self.plan.dense_of(last)?;
        (input != 0).then(|| &act.bufs[input])
    }

    /// Downloads parameters.
    pub fn params(&self) -> Result<Params> {
        Ok(Params {
            spec: self.spec.clone(),
            weights: self
                .w
                .iter()
                .map(|b| self.dev.read(b))
                .collect::<Result<_>>()?,
            biases: self
                .b
                .iter()
                .map(|b| b.as_ref().map(|b| self.dev.read(b)).transpose())
                .collect::<Result<_>>()?,
        })
    }

    /// Buffers for a forward pass over `rows` inputs.
    pub fn activations(&self, rows: usize) -> Result<Activations> {
        let e = self.spec.ensemble;
        let bufs = self
            .plan
            .widths
            .iter()
            .enumerate()
            .map(|(i, &w)| self.dev.zeros(if i == 0 { 1 } else { e * rows * w }))
            .collect::<Result<_>>()?;
        Ok(Activations {
            rows,
            bufs,
            output: self.plan.output,
        })
    }

    /// Buffers for the gradients of a pass over `rows` inputs.
    pub fn grads(&self, rows: usize) -> Result<Grads> {
        let e = self.spec.ensemble;
        let mut g = Grads {
            w: Vec::new(),
            b: Vec::new(),
            d: Vec::new(),
            has: vec![false; self.plan.widths.len()],
            scratch: Vec::new(),
            output: self.plan.output,
        };
        for l in &self.layers {
            g.w.push(self.dev.zeros(e * l.fan_in * l.fan_out)?);
            g.b.push(
                l.dense
                    .has_bias()
                    .then(|| self.dev.zeros(e * l.fan_out))
                    .transpose()?,
            );
        }
        for (i, &w) in self.plan.widths.iter().enumerate() {
            g.d.push(self.dev.zeros(if i == 0 { 1 } else { e * rows * w })?);
        }
        // One scratch buffer per distinct width, for gradients that add up.
        let mut widths: Vec<usize> = self.plan.widths[1..].to_vec();
        widths.sort_unstable();
        widths.dedup();
        g.scratch = widths
            .iter()
            .map(|&w| self.dev.zeros(e * rows * w))
            .collect::<Result<_>>()?;
        Ok(g)
    }

    /// The forward product of a Dense layer over `rows` inputs, and its
    /// `mult_w` and `mult_b`.
    pub(crate) fn product(
        &self,
        l: &DenseLayer,
        rows: usize,
        from_input: bool,
    ) -> (Matmul, f32, f32) {
        let s = self.spec.scale(l, self.adam);
        let spec = Matmul::new(rows, l.fan_out, l.fan_in)
            .batch(self.spec.ensemble)
            .trans(false, true)
            .broadcast(from_input, false)
            .scaled(s.mult_w as f32, 0.0);
        (spec, s.mult_w as f32, s.mult_b as f32)
    }

    /// Forward pass of every member on `x` (`[rows, d_in]`, shared by all
    /// members); the outputs end in [`Activations::output`] as `[E, rows, d_out]`.
    pub fn forward(&self, x: &Buffer, act: &mut Activations) -> Result<()> {
        let (e, n) = (self.spec.ensemble, act.rows);
        if x.len() != n * self.spec.d_in {
            return Err(Error::shape(
                "forward",
                format!(
                    "x has {} values, expected {n} x {}",
                    x.len(),
                    self.spec.d_in
                ),
            ));
        }
        for step in &self.plan.steps {
            match *step {
                Step::Dense {
                    layer,
                    input,
                    out,
                    fused,
                } => {
                    let l = &self.layers[layer];
                    let (spec, _, mult_b) = self.product(l, n, input == 0);
                    let bias = self.b[layer].as_ref().or(self.zero_b[layer].as_ref());
                    match fused {
                        Some((a, h)) => {
                            let (before, after) = act.bufs.split_at_mut(out);
                            let inp = if input == 0 { x } else { &before[input] };
                            let (z, rest) = after.split_at_mut(1);
                            let bias =
                                bias.ok_or_else(|| Error::invalid("internal: no bias buffer"))?;
                            let mult_b = if self.b[layer].is_some() { mult_b } else { 0.0 };
                            self.dev.dense_forward(
                                &spec,
                                inp,
                                &self.w[layer],
                                bias,
                                mult_b,
                                a,
                                &mut z[0],
                                &mut rest[h - out - 1],
                            )?;
                        }
                        None => {
                            let (before, after) = act.bufs.split_at_mut(out);
                            let inp = if input == 0 { x } else { &before[input] };
                            self.dev.matmul(&spec, inp, &self.w[layer], &mut after[0])?;
                            if let Some(b) = &self.b[layer] {
                                self.dev.bias_add(
                                    Batched::new(e, n, l.fan_out),
                                    &mut after[0],
                                    b,
                                    mult_b,
                                )?;
                            }
                        }
                    }
                }
                Step::Activation { act: a, input, out } => {
                    let (i, o) = pair(&mut act.bufs, input, out);
                    self.dev.activation(a, i, o)?;
                }
                Step::LayerNorm {
                    eps,
                    input,
                    out,
                    inv_std,
                } => {
                    let width = self.plan.widths[input];
                    let (lo, hi) = act.bufs.split_at_mut(out);
                    let (o, s) = hi.split_at_mut(inv_std - out);
                    self.dev.layer_norm(
                        Batched::new(e, n, width),
                        eps as f32,
                        &lo[input],
                        &mut o[0],
                        &mut s[0],
                    )?;
                }
                Step::ResidualAdd { skip, target } => {
                    let (s, t) = pair(&mut act.bufs, skip, target);
                    self.dev.axpy(1.0, s, t)?;
                }
            }
        }
        Ok(())
    }

    /// Backward pass from `df = dL/df` (`[E, rows, d_out]`, written into
    /// [`Grads::output_grad`] by the caller) to the gradient of every tensor.
    pub fn backward(&self, x: &Buffer, act: &Activations, g: &mut Grads) -> Result<()> {
        let (e, n) = (self.spec.ensemble, act.rows);
        g.has.iter_mut().for_each(|h| *h = false);
        g.has[g.output] = true;
        for step in self.plan.steps.iter().rev() {
            match *step {
                Step::ResidualAdd { skip, target } => {
                    // The block's output gradient flows on unchanged; the
                    // skip path adds it to the block input's gradient.
                    let (lo, hi) = g.d.split_at_mut(target);
                    if g.has[skip] {
                        self.dev.axpy(1.0, &hi[0], &mut lo[skip])?;
                    } else {
                        self.dev.copy(&hi[0], &mut lo[skip])?;
                        g.has[skip] = true;
                    }
                }
                Step::Activation { act: a, input, out } => {
                    self.accumulate(g, input, out, |dev, dx, dy| {
                        dev.activation_grad(a, &act.bufs[input], dy, dx)
                    })?;
                }
                Step::LayerNorm {
                    input,
                    out,
                    inv_std,
                    ..
                } => {
                    let width = self.plan.widths[input];
                    self.accumulate(g, input, out, |dev, dx, dy| {
                        dev.layer_norm_grad(
                            Batched::new(e, n, width),
                            &act.bufs[out],
                            &act.bufs[inv_std],
                            dy,
                            dx,
                        )
                    })?;
                }
                Step::Dense {
                    layer,
                    input,
                    out,
                    fused,
                } => {
                    let l = &self.layers[layer];
                    if let Some((a, h)) = fused {
                        let (z_grad, rest) = g.d.split_at_mut(h);
                        self.dev
                            .activation_grad(a, &act.bufs[out], &rest[0], &mut z_grad[out])?;
                    }
                    let (_, mult_w, mult_b) = self.product(l, n, input == 0);
                    let inp = if input == 0 { x } else { &act.bufs[input] };
                    // dW = mult_w dz^T a
                    let spec = Matmul::new(l.fan_out, l.fan_in, n)
                        .batch(e)
                        .trans(true, false)
                        .broadcast(false, input == 0)
                        .scaled(mult_w, 0.0);
                    self.dev.matmul(&spec, &g.d[out], inp, &mut g.w[layer])?;
                    // db = mult_b sum_rows dz
                    if let Some(db) = g.b[layer].as_mut() {
                        self.dev
                            .sum_cols(Batched::new(e, n, l.fan_out), &g.d[out], db)?;
                        self.dev.scale(db, mult_b)?;
                    }
                    if input != 0 {
                        // da (+)= mult_w dz W
                        let beta = if g.has[input] { 1.0 } else { 0.0 };
                        let spec = Matmul::new(n, l.fan_in, l.fan_out)
                            .batch(e)
                            .scaled(mult_w, beta);
                        let (lo, hi) = g.d.split_at_mut(out);
                        self.dev
                            .matmul(&spec, &hi[0], &self.w[layer], &mut lo[input])?;
                        g.has[input] = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the gradient `f` computes from `d[from]` into `d[to]` (`to <
    /// from`), or adds it there when `d[to]` already holds one.
    fn accumulate(
        &self,
        g: &mut Grads,
        to: usize,
        from: usize,
        f: impl FnOnce(&dyn Backend, &mut Buffer, &Buffer) -> Result<()>,
    ) -> Result<()> {
        if to == 0 {
            return Ok(());
        }
        let (lo, hi) = g.d.split_at_mut(from);
        let dy = &hi[0];
        if g.has[to] {
            let len = lo[to].len();
            let tmp = g
                .scratch
                .iter_mut()
                .find(|b| b.len() == len)
                .ok_or_else(|| Error::invalid("internal: no scratch buffer"))?;
            f(self.dev, tmp, dy)?;
            self.dev.axpy(1.0, tmp, &mut lo[to])
        } else {
            g.has[to] = true;
            f(self.dev, &mut lo[to], dy)
        }
    }
}

impl Grads {
    /// `dL/dz` at the output of Dense layer `l` after [`Ensemble::backward`].
    pub fn delta(&self, ens: &Ensemble<'_>, l: usize) -> Result<&Buffer> {
        let (_, out) = ens
            .plan
            .dense_of(l)
            .ok_or_else(|| Error::invalid(format!("no Dense layer {l}")))?;
        Ok(&self.d[out])
    }

    /// The buffer the loss gradient `dL/df` goes into before [`Ensemble::backward`].
    pub fn output_grad(&mut self) -> &mut Buffer {
        &mut self.d[self.output]
    }
}
