//! An ensemble on a backend: forward and backward passes over all members at
//! once (each layer is one batched product), with the activations kept for
//! the backward pass.

use super::MlpSpec;
use super::params::Params;
use crate::backend::{Backend, Batched, Buffer, Matmul};
use crate::error::Result;

/// Parameters on the device.
pub struct Ensemble<'d> {
    pub(crate) dev: &'d dyn Backend,
    pub spec: MlpSpec,
    pub(crate) w: Vec<Buffer>,
    pub(crate) b: Vec<Buffer>,
    /// Optimizer flavour the learning-rate multipliers are taken for.
    pub(crate) adam: bool,
}

/// Activations of one forward pass over `rows` inputs, reused between passes.
pub struct Activations {
    pub rows: usize,
    /// Pre-activations of each layer (the last is the output), `[E, rows, fan_out]`.
    pub z: Vec<Buffer>,
    /// Post-activations of the hidden layers, `[E, rows, width]`.
    pub h: Vec<Buffer>,
}

/// Gradients of every parameter tensor, shaped like them.
pub struct Grads {
    pub w: Vec<Buffer>,
    pub b: Vec<Buffer>,
    dz: Vec<Buffer>,
    dh: Vec<Buffer>,
}

impl<'d> Ensemble<'d> {
    /// Uploads parameters.
    pub fn new(dev: &'d dyn Backend, p: &Params) -> Result<Self> {
        p.check()?;
        let w = p
            .weights
            .iter()
            .map(|v| dev.upload(v))
            .collect::<Result<_>>()?;
        let b = p
            .biases
            .iter()
            .map(|v| dev.upload(v))
            .collect::<Result<_>>()?;
        Ok(Ensemble {
            dev,
            spec: p.spec,
            w,
            b,
            adam: false,
        })
    }

    /// Downloads parameters.
    pub fn params(&self) -> Result<Params> {
        Ok(Params {
            spec: self.spec,
            weights: self
                .w
                .iter()
                .map(|b| self.dev.read(b))
                .collect::<Result<_>>()?,
            biases: self
                .b
                .iter()
                .map(|b| self.dev.read(b))
                .collect::<Result<_>>()?,
        })
    }

    /// Buffers for a forward pass over `rows` inputs.
    pub fn activations(&self, rows: usize) -> Result<Activations> {
        let e = self.spec.ensemble;
        let z = self
            .spec
            .layers()
            .map(|(_, fo)| self.dev.zeros(e * rows * fo))
            .collect::<Result<_>>()?;
        let h = (0..self.spec.depth)
            .map(|_| self.dev.zeros(e * rows * self.spec.width))
            .collect::<Result<_>>()?;
        Ok(Activations { rows, z, h })
    }

    /// Buffers for the gradients of a pass over `rows` inputs.
    pub fn grads(&self, rows: usize) -> Result<Grads> {
        let e = self.spec.ensemble;
        let mut g = Grads {
            w: Vec::new(),
            b: Vec::new(),
            dz: Vec::new(),
            dh: Vec::new(),
        };
        for (fi, fo) in self.spec.layers() {
            g.w.push(self.dev.zeros(e * fi * fo)?);
            g.b.push(self.dev.zeros(e * fo)?);
            g.dz.push(self.dev.zeros(e * rows * fo)?);
        }
        for _ in 0..self.spec.depth {
            g.dh.push(self.dev.zeros(e * rows * self.spec.width)?);
        }
        Ok(g)
    }

    /// Forward pass of every member on `x` (`[rows, d_in]`, shared by all
    /// members); the outputs end in `act.z[depth]` as `[E, rows, d_out]`.
    pub fn forward(&self, x: &Buffer, act: &mut Activations) -> Result<()> {
        let (e, n) = (self.spec.ensemble, act.rows);
        for (l, (fi, fo)) in self.spec.layers().enumerate() {
            let s = self.spec.scale(l, self.adam);
            let spec = Matmul::new(n, fo, fi)
                .batch(e)
                .trans(false, true)
                .broadcast(l == 0, false)
                .scaled(s.mult_w as f32, 0.0);
            // Split the hidden activations so that layer l reads h[l-1] and writes h[l].
            let (before, after) = act.h.split_at_mut(l);
            let input = if l == 0 { x } else { &before[l - 1] };
            let z = &mut act.z[l];
            if l < self.spec.depth {
                self.dev.dense_forward(
                    &spec,
                    input,
                    &self.w[l],
                    &self.b[l],
                    s.mult_b as f32,
                    self.spec.activation,
                    z,
                    &mut after[0],
                )?;
            } else {
                self.dev.matmul(&spec, input, &self.w[l], z)?;
                self.dev
                    .bias_add(Batched::new(e, n, fo), z, &self.b[l], s.mult_b as f32)?;
            }
        }
        Ok(())
    }

    /// Backward pass from `df = dL/df` (`[E, rows, d_out]`, written into
    /// `g.dz[depth]` by the caller, see [`Grads::output_grad`]) to the gradient of every tensor.
    pub fn backward(&self, x: &Buffer, act: &Activations, g: &mut Grads) -> Result<()> {
        let (e, n) = (self.spec.ensemble, act.rows);
        let layers: Vec<(usize, usize)> = self.spec.layers().collect();
        for l in (0..layers.len()).rev() {
            let (fi, fo) = layers[l];
            let s = self.spec.scale(l, self.adam);
            let input = if l == 0 { x } else { &act.h[l - 1] };
            // dW = mult_w dz^T a
            let spec = Matmul::new(fo, fi, n)
                .batch(e)
                .trans(true, false)
                .broadcast(false, l == 0)
                .scaled(s.mult_w as f32, 0.0);
            self.dev.matmul(&spec, &g.dz[l], input, &mut g.w[l])?;
            // db = mult_b sum_rows dz
            self.dev
                .sum_cols(Batched::new(e, n, fo), &g.dz[l], &mut g.b[l])?;
            self.dev.scale(&mut g.b[l], s.mult_b as f32)?;
            if l > 0 {
                // dh = mult_w dz W ; dz_{l-1} = dh * act'(z_{l-1})
                let spec = Matmul::new(n, fi, fo).batch(e).scaled(s.mult_w as f32, 0.0);
                self.dev
                    .matmul(&spec, &g.dz[l], &self.w[l], &mut g.dh[l - 1])?;
                let (lo, hi) = g.dz.split_at_mut(l);
                let _ = hi;
                self.dev.activation_grad(
                    self.spec.activation,
                    &act.z[l - 1],
                    &g.dh[l - 1],
                    &mut lo[l - 1],
                )?;
            }
        }
        Ok(())
    }
}

impl Grads {
    /// `dL/dz` of layer `l` after [`Ensemble::backward`].
    pub fn delta(&self, l: usize) -> &Buffer {
        &self.dz[l]
    }

    /// The buffer the loss gradient `dL/df` goes into before [`Ensemble::backward`].
    pub fn output_grad(&mut self) -> &mut Buffer {
        let last = self.dz.len() - 1;
        &mut self.dz[last]
    }
}
