//! The tied-weight toy model of Elhage et al. (2022, "Toy Models of
//! Superposition", section 3) for many members at once on a [`Backend`]:
//! member `e` has `W_e` (`m x n`: hidden dimensions by features) and `b_e`
//! (`n`), and maps a feature vector `x` to `x' = act(W_e^T W_e x + b_e)`
//! (`act` = ReLU, or the identity for the linear model). Its loss on a batch
//! of `B` draws is the importance-weighted mean squared error
//! `L_e = 1/(B n) sum_{r, i} I_{e,i} (x'_{r,i} - x_{r,i})^2`.
//!
//! Every step runs on the device without a host round trip: fresh features
//! per member ([`Backend::sparse_features`]), the forward pass
//! `H = X W^T`, `Z = H W + b`, `Y = act(Z)`, the gradient
//! `dY = 2 I (Y - X) / (B n)`, `dZ = act'(Z) dY`, `dH = dZ W^T`,
//! `dW = H^T dZ + dH^T X` (W appears twice, tied), `db = sum_r dZ`, and Adam.

use crate::activation::Activation;
use crate::backend::{Backend, Batched, Buffer, Draw, Matmul, Rule, TiedOp, Update, index_bits};
use crate::error::{Error, Result};

/// The model's output nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// `x' = ReLU(W^T W x + b)`.
    Relu,
    /// `x' = W^T W x + b` (for comparison: no superposition).
    Linear,
}

impl Output {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Output::Relu => "relu",
            Output::Linear => "linear",
        }
    }
}

/// Shapes and training settings shared by every member of a group.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Features `n`.
    pub features: usize,
    /// Hidden dimensions `m`.
    pub hidden: usize,
    /// Draws per step `B`.
    pub batch: usize,
    /// Output nonlinearity.
    pub output: Output,
}

/// What sets one member apart: its id (which fixes its data), its initial
/// weights, its sparsity and the importance of each feature.
#[derive(Clone, Debug)]
pub struct Member {
    /// The id its features are drawn with.
    pub id: u32,
    /// The random stream its initial weights come from.
    pub init: u64,
    /// Probability that a feature is zero.
    pub sparsity: f32,
    /// Importance of each feature (`n` values).
    pub importance: Vec<f32>,
}

/// A group of members of one [`Shape`] on a device, with Adam's state.
pub struct TiedModel<'d> {
    dev: &'d dyn Backend,
    shape: Shape,
    members: usize,
    seed: u32,
    rule: Rule,
    step: u32,
    w: Buffer,
    b: Buffer,
    adam: [Buffer; 4],
    ids: Buffer,
    sparsity: Buffer,
    lr: Buffer,
    alive: Buffer,
    /// `2 I / (B n)` for every value of a batch.
    weight: Buffer,
    /// `2 I / (B n)` per member and feature (`[E, n]`), for a fused gradient.
    feature_weight: Buffer,
    /// Whether to ask the backend for its fused gradient.
    fused: bool,
    /// Each member's loss from a fused gradient.
    loss: Buffer,
    x: Buffer,
    h: Buffer,
    z: Buffer,
    /// The output, then `Y - X` in place.
    y: Buffer,
    dy: Buffer,
    dz: Buffer,
    dh: Buffer,
    dw: Buffer,
    db: Buffer,
}

impl<'d> TiedModel<'d> {
    /// Uploads the members' initial weights (`w`: `[E, m, n]`, `b`: `[E, n]`)
    /// and allocates every buffer of a step. `seed` is the run's seed of the
    /// features; `lr` is every member's learning rate under `rule`.
    pub fn new(
        dev: &'d dyn Backend,
        shape: Shape,
        members: &[Member],
        (w, b): (&[f32], &[f32]),
        seed: u32,
        rule: Rule,
        lr: f32,
    ) -> Result<Self> {
        let (n, m, nb, e) = (shape.features, shape.hidden, shape.batch, members.len());
        if e == 0 || n == 0 || m == 0 || nb == 0 {
            return Err(Error::invalid(
                "the toy model needs members, features, hidden dimensions and a batch",
            ));
        }
        if w.len() != e * m * n || b.len() != e * n {
            return Err(Error::shape(
                "superposition",
                format!(
                    "{} weights and {} biases for {e} members of {m} x {n}",
                    w.len(),
                    b.len()
                ),
            ));
        }
        if let Some(bad) = members.iter().find(|p| p.importance.len() != n) {
            return Err(Error::shape(
                "superposition",
                format!(
                    "member {} has {} importances for {n} features",
                    bad.id,
                    bad.importance.len()
                ),
            ));
        }
        let scale = 2.0 / (nb * n) as f32;
        let feature_weight: Vec<f32> = members
            .iter()
            .flat_map(|p| p.importance.iter().map(|i| i * scale))
            .collect();
        let mut weight = Vec::with_capacity(e * nb * n);
        for row in feature_weight.chunks_exact(n) {
            for _ in 0..nb {
                weight.extend_from_slice(row);
            }
        }
        let ids: Vec<u32> = members.iter().map(|p| p.id).collect();
        let sp: Vec<f32> = members.iter().map(|p| p.sparsity).collect();
        let (rows, hid) = (e * nb * n, e * nb * m);
        Ok(TiedModel {
            dev,
            shape,
            members: e,
            seed,
            rule,
            step: 0,
            w: dev.upload(w)?,
            b: dev.upload(b)?,
            adam: [
                dev.zeros(w.len())?,
                dev.zeros(w.len())?,
                dev.zeros(b.len())?,
                dev.zeros(b.len())?,
            ],
            ids: dev.upload(&index_bits(&ids))?,
            sparsity: dev.upload(&sp)?,
            lr: dev.upload(&vec![lr; e])?,
            alive: dev.upload(&vec![1.0; e])?,
            weight: dev.upload(&weight)?,
            feature_weight: dev.upload(&feature_weight)?,
            fused: true,
            loss: dev.zeros(e)?,
            x: dev.zeros(rows)?,
            h: dev.zeros(hid)?,
            z: dev.zeros(rows)?,
            y: dev.zeros(rows)?,
            dy: dev.zeros(rows)?,
            dz: dev.zeros(rows)?,
            dh: dev.zeros(hid)?,
            dw: dev.zeros(w.len())?,
            db: dev.zeros(b.len())?,
        })
    }

    /// Members in the group.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Steps taken.
    pub fn steps_done(&self) -> u32 {
        self.step
    }

    fn products(&self) -> [Matmul; 3] {
        let Shape {
            features: n,
            hidden: m,
            batch: nb,
            ..
        } = self.shape;
        let e = self.members;
        [
            // H = X W^T, dH = dZ W^T: [B, n] x [n, m].
            Matmul::new(nb, m, n).batch(e).trans(false, true),
            // Z = H W: [B, m] x [m, n].
            Matmul::new(nb, n, m).batch(e),
            // dW = H^T dZ (+ dH^T X): [m, B] x [B, n].
            Matmul::new(m, n, nb).batch(e).trans(true, false),
        ]
    }

    /// Draws the features of `draw` and runs the forward pass; leaves `Y - X`
    /// in `y` and the loss gradient `dY` in `dy`.
    fn forward(&mut self, draw: Draw) -> Result<()> {
        let dev = self.dev;
        let Shape {
            features: n,
            batch: nb,
            output,
            ..
        } = self.shape;
        let e = self.members;
        let [hx, zh, _] = self.products();
        dev.sparse_features(
            Batched::new(e, nb, n),
            draw,
            &self.ids,
            &self.sparsity,
            &mut self.x,
        )?;
        dev.matmul(&hx, &self.x, &self.w, &mut self.h)?;
        match output {
            Output::Relu => dev.dense_forward(
                &zh,
                &self.h,
                &self.w,
                &self.b,
                1.0,
                Activation::RELU,
                &mut self.z,
                &mut self.y,
            )?,
            Output::Linear => {
                dev.matmul(&zh, &self.h, &self.w, &mut self.y)?;
                dev.bias_add(Batched::new(e, nb, n), &mut self.y, &self.b, 1.0)?;
            }
        }
        dev.axpy(-1.0, &self.x, &mut self.y)?;
        dev.mul(&self.y, &self.weight, &mut self.dy)
    }

    /// The backward pass from `dy` into `dw` and `db`.
    fn backward(&mut self) -> Result<()> {
        let dev = self.dev;
        let Shape {
            features: n,
            batch: nb,
            output,
            ..
        } = self.shape;
        let e = self.members;
        let [hx, _, wt] = self.products();
        let dz = match output {
            Output::Relu => {
                dev.activation_grad(Activation::RELU, &self.z, &self.dy, &mut self.dz)?;
                &self.dz
            }
            Output::Linear => &self.dy,
        };
        dev.matmul(&hx, dz, &self.w, &mut self.dh)?;
        dev.matmul(&wt, &self.h, dz, &mut self.dw)?;
        dev.matmul(&wt.scaled(1.0, 1.0), &self.dh, &self.x, &mut self.dw)?;
        dev.sum_cols(Batched::new(e, nb, n), dz, &mut self.db)
    }

    fn draw(&self, step: u32) -> Draw {
        Draw {
            seed: self.seed,
            step,
        }
    }

    /// Whether the gradient comes from the backend's fused kernel where it
    /// has one (the default), or is always composed from products and
    /// elementwise operations (for checks and benchmarks).
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused;
    }

    /// The gradient of the batch of `step` into `dw` and `db` through the
    /// backend's fused kernel, with each member's loss where `with_loss`;
    /// `None` where there is none (or it is switched off).
    fn fused_gradients(&mut self, step: u32, with_loss: bool) -> Result<Option<Vec<f64>>> {
        if !self.fused {
            return Ok(None);
        }
        let op = TiedOp {
            members: self.members,
            batch: self.shape.batch,
            features: self.shape.features,
            hidden: self.shape.hidden,
            relu: self.shape.output == Output::Relu,
            draw: self.draw(step),
            w: &self.w,
            b: &self.b,
            ids: &self.ids,
            sparsity: &self.sparsity,
            weight: &self.feature_weight,
        };
        let loss = with_loss.then_some(&mut self.loss);
        if !self
            .dev
            .tied_gradients(&op, &mut self.dw, &mut self.db, loss)?
        {
            return Ok(None);
        }
        if !with_loss {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(
            self.dev
                .read(&self.loss)?
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        ))
    }

    /// One Adam (or SGD, momentum) step on a fresh batch.
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        if self.fused_gradients(self.step, false)?.is_none() {
            self.forward(self.draw(self.step))?;
            self.backward()?;
        }
        self.update()
    }

    /// One step that also returns each member's loss on its batch (before
    /// the update): waits for the device.
    pub fn step_with_loss(&mut self) -> Result<Vec<f64>> {
        self.step += 1;
        let loss = match self.fused_gradients(self.step, true)? {
            Some(loss) => loss,
            None => {
                self.forward(self.draw(self.step))?;
                let loss = self.batch_loss()?;
                self.backward()?;
                loss
            }
        };
        self.update()?;
        Ok(loss)
    }

    fn update(&mut self) -> Result<()> {
        let dev = self.dev;
        let (n, m) = (self.shape.features, self.shape.hidden);
        let up = Update {
            rule: self.rule,
            scale: 1.0,
            step: self.step,
        };
        let [mw, vw, mb, vb] = &mut self.adam;
        let (need_m, need_v) = match self.rule {
            Rule::Sgd => (false, false),
            Rule::Momentum { .. } => (true, false),
            Rule::Adam { .. } => (true, true),
        };
        dev.update(
            &up,
            m * n,
            &self.dw,
            &self.lr,
            &self.alive,
            &mut self.w,
            need_m.then_some(mw),
            need_v.then_some(vw),
        )?;
        dev.update(
            &up,
            n,
            &self.db,
            &self.lr,
            &self.alive,
            &mut self.b,
            need_m.then_some(mb),
            need_v.then_some(vb),
        )
    }

    /// Each member's loss from `y` (= `Y - X`) and `dy` (= `2 I (Y - X) / (B n)`):
    /// half the sum of their product.
    fn batch_loss(&mut self) -> Result<Vec<f64>> {
        let dev = self.dev;
        let per = self.shape.batch * self.shape.features;
        let mut prod = dev.zeros(self.members * per)?;
        dev.mul(&self.y, &self.dy, &mut prod)?;
        let mut sums = dev.zeros(self.members)?;
        dev.sum_rows(Batched::new(self.members, 1, per), &prod, &mut sums)?;
        Ok(dev
            .read(&sums)?
            .iter()
            .map(|&v| 0.5 * f64::from(v))
            .collect())
    }

    /// Each member's loss averaged over `batches` fresh batches drawn with
    /// `seed` (another seed than training's gives held-out data). Changes no
    /// parameter.
    pub fn eval_loss(&mut self, seed: u32, batches: u32) -> Result<Vec<f64>> {
        let mut total = vec![0.0; self.members];
        for k in 0..batches {
            self.forward(Draw { seed, step: k })?;
            for (t, l) in total.iter_mut().zip(self.batch_loss()?) {
                *t += l / f64::from(batches.max(1));
            }
        }
        Ok(total)
    }

    /// The gradients (`dW` `[E, m, n]`, `db` `[E, n]`) on the batch of `step`,
    /// without an update, and the features of that batch (`[E, B, n]`).
    /// Fused where the backend fuses it (see [`Self::set_fused`]).
    pub fn gradients(&mut self, step: u32) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        if self.fused_gradients(step, false)?.is_some() {
            let (e, nb, n) = (self.members, self.shape.batch, self.shape.features);
            self.dev.sparse_features(
                Batched::new(e, nb, n),
                self.draw(step),
                &self.ids,
                &self.sparsity,
                &mut self.x,
            )?;
        } else {
            self.forward(self.draw(step))?;
            self.backward()?;
        }
        Ok((
            self.dev.read(&self.dw)?,
            self.dev.read(&self.db)?,
            self.dev.read(&self.x)?,
        ))
    }

    /// Everything a resumed run needs: parameters and optimizer state, as
    /// JSON (`w`, `b`, `adam`: Adam's moments of `w`, `w`, `b`, `b`).
    pub fn state(&self) -> Result<serde_json::Value> {
        let adam = self
            .adam
            .iter()
            .map(|a| self.dev.read(a))
            .collect::<Result<Vec<_>>>()?;
        let (w, b) = self.parameters()?;
        Ok(serde_json::json!({"w": w, "b": b, "adam": adam}))
    }

    /// Restores a [`Self::state`] saved after `step` steps.
    pub fn restore(&mut self, step: u32, state: &serde_json::Value) -> Result<()> {
        let floats = |v: &serde_json::Value, len: usize| -> Result<Vec<f32>> {
            let out: Vec<f32> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default();
            if out.len() == len {
                Ok(out)
            } else {
                Err(Error::invalid(format!(
                    "the saved training state holds {} values where {len} belong",
                    out.len()
                )))
            }
        };
        let (lw, lb) = (self.w.len(), self.b.len());
        let w = floats(&state["w"], lw)?;
        let b = floats(&state["b"], lb)?;
        let adam = (0..4)
            .map(|k| floats(&state["adam"][k], if k < 2 { lw } else { lb }))
            .collect::<Result<Vec<_>>>()?;
        self.dev.write(&mut self.w, &w)?;
        self.dev.write(&mut self.b, &b)?;
        for (buf, v) in self.adam.iter_mut().zip(&adam) {
            self.dev.write(buf, v)?;
        }
        self.step = step;
        Ok(())
    }

    /// The weights (`[E, m, n]`) and biases (`[E, n]`).
    pub fn parameters(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.dev.read(&self.w)?, self.dev.read(&self.b)?))
    }
}

/// The loss of one member in f64 on the host (for checks against finite
/// differences): `w` `[m, n]`, `b` `[n]`, `x` `[B, n]`.
pub fn loss_f64(shape: Shape, w: &[f64], b: &[f64], x: &[f64], importance: &[f64]) -> f64 {
    let (n, m) = (shape.features, shape.hidden);
    let rows = x.len() / n;
    let mut total = 0.0;
    for xr in x.chunks_exact(n) {
        let h: Vec<f64> = (0..m)
            .map(|k| (0..n).map(|i| w[k * n + i] * xr[i]).sum())
            .collect();
        for i in 0..n {
            let z = (0..m).map(|k| h[k] * w[k * n + i]).sum::<f64>() + b[i];
            let y = match shape.output {
                Output::Relu => z.max(0.0),
                Output::Linear => z,
            };
            total += importance[i] * (y - xr[i]).powi(2);
        }
    }
    total / (rows * n) as f64
}
