//! Training an ensemble: full-batch gradient descent or seeded minibatch SGD,
//! with momentum or Adam, on MSE or softmax cross-entropy, constant or cosine
//! learning rate. Every step stays on the device; losses come back to the
//! host only every `log_every` steps. A member whose loss stops being finite
//! is frozen and recorded; the others go on.

use super::ensemble::Ensemble;
use crate::backend::{Batched, Buffer, Loss, Rule, Update, index_bits};
use crate::error::{Error, Result};
use crate::matrix::{Matrix, MatrixRef};
use crate::rng::Rng;

/// Learning-rate schedule over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// `lr * (1 + cos(pi * (t - 1) / steps)) / 2` at step t = 1..steps.
    Cosine,
}

/// How to train.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// The update rule.
    pub rule: Rule,
    /// One learning rate for all members, or one per member.
    pub lr: Vec<f64>,
    /// Steps.
    pub steps: usize,
    /// Minibatch size; `None` is full batch.
    pub batch_size: Option<usize>,
    /// The loss.
    pub loss: Loss,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Read the losses back every this many steps (and at the first and last).
    pub log_every: usize,
    /// Seed of the minibatch shuffling.
    pub seed: u64,
}

impl TrainConfig {
    /// Full-batch gradient descent on MSE at a constant learning rate `lr`
    /// for `steps` steps (losses logged every tenth of the run).
    pub fn gd(lr: f64, steps: usize) -> Self {
        TrainConfig {
            rule: Rule::Sgd,
            lr: vec![lr],
            steps,
            batch_size: None,
            loss: Loss::Mse,
            schedule: Schedule::Constant,
            log_every: (steps / 10).max(1),
            seed: 0,
        }
    }
}

/// What happened.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainLog {
    /// Steps at which the losses were read (1-based: the loss before that step's update).
    pub steps: Vec<usize>,
    /// `loss[i][e]`: member e's loss at `steps[i]` (on the step's minibatch).
    pub loss: Vec<Vec<f64>>,
    /// Each member's loss on all the data after training (NaN for a diverged one).
    pub final_loss: Vec<f64>,
    /// The step at which each member diverged, if it did.
    pub diverged_at: Vec<Option<usize>>,
}

fn schedule_factor(s: Schedule, step: usize, steps: usize) -> f64 {
    match s {
        Schedule::Constant => 1.0,
        Schedule::Cosine => {
            0.5 * (1.0 + (std::f64::consts::PI * (step - 1) as f64 / steps as f64).cos())
        }
    }
}

/// Targets as rows of the output dimension: for cross-entropy with one column
/// and more than one output, integer class labels become one-hot rows.
pub fn targets(loss: Loss, y: MatrixRef<'_, f32>, d_out: usize) -> Result<Matrix<f32>> {
    if loss == Loss::Xent && d_out < 2 {
        return Err(Error::invalid(format!(
            "cross-entropy needs d_out >= 2, one output per class (a softmax over one output is constant); \
             the network has d_out = {d_out}: give it 2 or more outputs, or use the mse loss"
        )));
    }
    if loss == Loss::Xent && y.cols() == 1 && d_out > 1 {
        let mut out = Matrix::zeros(y.rows(), d_out);
        for (r, &v) in y.data().iter().enumerate() {
            if v < 0.0 || v.fract() != 0.0 || v as usize >= d_out {
                return Err(Error::invalid(format!(
                    "class label {v} at row {r} is not an integer in 0..{d_out}"
                )));
            }
            out.data[r * d_out + v as usize] = 1.0;
        }
        return Ok(out);
    }
    if y.cols() != d_out {
        return Err(Error::shape(
            "train",
            format!(
                "y has {} columns but the network has d_out = {d_out}",
                y.cols()
            ),
        ));
    }
    if loss == Loss::Xent {
        for r in 0..y.rows() {
            let row = y.row(r);
            let s: f32 = row.iter().sum();
            if row.iter().any(|&v| v < 0.0) || (s - 1.0).abs() > 1e-4 {
                return Err(Error::invalid(format!(
                    "cross-entropy targets must be class labels or rows of probabilities; row {r} sums to {s}"
                )));
            }
        }
    }
    Ok(y.to_owned())
}

fn validate(
    ens: &Ensemble<'_>,
    x: MatrixRef<'_, f32>,
    y: MatrixRef<'_, f32>,
    cfg: &TrainConfig,
) -> Result<()> {
    let spec = &ens.spec;
    if x.rows() == 0 {
        return Err(Error::invalid("x holds no point"));
    }
    if x.cols() != spec.d_in {
        return Err(Error::shape(
            "train",
            format!(
                "x has {} features but the network has d_in = {}",
                x.cols(),
                spec.d_in
            ),
        ));
    }
    if y.rows() != x.rows() {
        return Err(Error::shape(
            "train",
            format!("y has {} rows but x has {}", y.rows(), x.rows()),
        ));
    }
    for (name, m) in [("x", x), ("y", y)] {
        if let Some((r, c)) = m.first_non_finite() {
            return Err(Error::invalid(format!(
                "{name} has a non-finite value at row {r}, column {c}"
            )));
        }
    }
    if cfg.steps == 0 {
        return Err(Error::invalid("steps must be at least 1"));
    }
    if cfg.log_every == 0 {
        return Err(Error::invalid("log_every must be at least 1"));
    }
    if cfg.lr.len() != 1 && cfg.lr.len() != spec.ensemble {
        return Err(Error::invalid(format!(
            "{} learning rates for an ensemble of {}",
            cfg.lr.len(),
            spec.ensemble
        )));
    }
    if let Some(bad) = cfg.lr.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(Error::invalid(format!(
            "lr must be positive and finite, got {bad}"
        )));
    }
    if let Some(b) = cfg.batch_size {
        if b == 0 || b > x.rows() {
            return Err(Error::invalid(format!(
                "batch_size must be between 1 and the number of points ({}), got {b}",
                x.rows()
            )));
        }
    }
    match cfg.rule {
        Rule::Sgd => {}
        Rule::Momentum { mu } => {
            if !(0.0..1.0).contains(&mu) {
                return Err(Error::invalid(format!(
                    "momentum must be in [0, 1), got {mu}"
                )));
            }
        }
        Rule::Adam { b1, b2, eps } => {
            if !((0.0..1.0).contains(&b1)
                && (0.0..1.0).contains(&b2)
                && eps > 0.0
                && eps.is_finite())
            {
                return Err(Error::invalid(
                    "Adam needs 0 <= beta1, beta2 < 1 and eps > 0",
                ));
            }
        }
    }
    Ok(())
}

/// A training run in progress: device buffers, optimizer state and the log.
/// [`train`] drives one from start to end; callers that look at the networks
/// between steps (kernel movement, loss curves) drive it with [`Trainer::step`].
pub struct Trainer<'e, 'd> {
    ens: &'e mut Ensemble<'d>,
    cfg: TrainConfig,
    n: usize,
    nb: usize,
    xs: Buffer,
    ys: Buffer,
    batch: Option<(Buffer, Buffer, Buffer)>,
    lr: Buffer,
    alive: Buffer,
    diverged: Buffer,
    act: super::ensemble::Activations,
    g: super::ensemble::Grads,
    d_out: usize,
    rows: Buffer,
    loss: Buffer,
    sizes: Vec<(usize, usize)>,
    state: Vec<[Option<Buffer>; 4]>,
    shuffle: Rng,
    perm: Vec<u32>,
    pos: usize,
    step: usize,
    log: TrainLog,
}

impl<'e, 'd> Trainer<'e, 'd> {
    /// Checks everything and allocates the run's buffers.
    pub fn new(
        ens: &'e mut Ensemble<'d>,
        x: &Matrix<f32>,
        y: &Matrix<f32>,
        cfg: &TrainConfig,
    ) -> Result<Self> {
        Trainer::from_refs(ens, x.view(), y.view(), cfg)
    }

    /// [`Trainer::new`] on borrowed inputs: `x` goes to the device from where it lies.
    pub fn from_refs(
        ens: &'e mut Ensemble<'d>,
        x: MatrixRef<'_, f32>,
        y: MatrixRef<'_, f32>,
        cfg: &TrainConfig,
    ) -> Result<Self> {
        let d_out = ens.spec.d_out();
        let y = targets(cfg.loss, y, d_out)?;
        validate(ens, x, y.view(), cfg)?;
        let dev = ens.dev;
        ens.adam = matches!(cfg.rule, Rule::Adam { .. });
        let (e, n, d_in) = (ens.spec.ensemble, x.rows(), ens.spec.d_in);
        let nb = cfg.batch_size.unwrap_or(n);
        let batch = if nb < n {
            Some((
                dev.zeros(nb * d_in)?,
                dev.zeros(nb * d_out)?,
                dev.zeros(nb)?,
            ))
        } else {
            None
        };
        let lrs: Vec<f32> = if cfg.lr.len() == 1 {
            vec![cfg.lr[0] as f32; e]
        } else {
            cfg.lr.iter().map(|&v| v as f32).collect()
        };
        let sizes: Vec<(usize, usize)> = ens
            .dense_layers()
            .iter()
            .map(|l| {
                (
                    l.fan_in * l.fan_out,
                    if l.dense.has_bias() { l.fan_out } else { 0 },
                )
            })
            .collect();
        let (need_m, need_v) = match cfg.rule {
            Rule::Sgd => (false, false),
            Rule::Momentum { .. } => (true, false),
            Rule::Adam { .. } => (true, true),
        };
        let opt = |need: bool, len: usize| -> Result<Option<Buffer>> {
            if need {
                Ok(Some(dev.zeros(len)?))
            } else {
                Ok(None)
            }
        };
        let state = sizes
            .iter()
            .map(|&(w, b)| {
                Ok([
                    opt(need_m, e * w)?,
                    opt(need_m && b > 0, e * b)?,
                    opt(need_v, e * w)?,
                    opt(need_v && b > 0, e * b)?,
                ])
            })
            .collect::<Result<_>>()?;
        Ok(Trainer {
            xs: dev.upload(x.data())?,
            ys: dev.upload(&y.data)?,
            batch,
            lr: dev.upload(&lrs)?,
            alive: dev.upload(&vec![1.0; e])?,
            diverged: dev.upload(&vec![-1.0; e])?,
            act: ens.activations(nb)?,
            g: ens.grads(nb)?,
            rows: dev.zeros(e * nb)?,
            loss: dev.zeros(e)?,
            sizes,
            state,
            shuffle: Rng::new(cfg.seed ^ 0x5348_5546_464c_4531),
            perm: (0..n as u32).collect(),
            pos: n,
            step: 0,
            log: TrainLog {
                steps: Vec::new(),
                loss: Vec::new(),
                final_loss: Vec::new(),
                diverged_at: Vec::new(),
            },
            cfg: cfg.clone(),
            n,
            nb,
            d_out,
            ens,
        })
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The ensemble being trained.
    pub fn ensemble(&mut self) -> &mut Ensemble<'d> {
        self.ens
    }

    /// One step: forward, loss, divergence marks, backward, update. Reads the
    /// losses back when the step is logged, and only then.
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        let step = self.step;
        let dev = self.ens.dev;
        let (e, d_in, d_out, nb, n) = (
            self.ens.spec.ensemble,
            self.ens.spec.d_in,
            self.d_out,
            self.nb,
            self.n,
        );
        if let Some((xb, yb, idx)) = self.batch.as_mut() {
            let mut picked = Vec::with_capacity(nb);
            while picked.len() < nb {
                if self.pos == n {
                    for i in (1..n).rev() {
                        self.perm.swap(i, self.shuffle.below(i + 1));
                    }
                    self.pos = 0;
                }
                picked.push(self.perm[self.pos]);
                self.pos += 1;
            }
            dev.write(idx, &index_bits(&picked))?;
            dev.gather_rows(&self.xs, d_in, idx, xb)?;
            dev.gather_rows(&self.ys, d_out, idx, yb)?;
        }
        let (xin, yin) = match &self.batch {
            Some((xb, yb, _)) => (xb, yb),
            None => (&self.xs, &self.ys),
        };
        self.ens.forward(xin, &mut self.act)?;
        let shape = Batched::new(e, nb, d_out);
        dev.loss_grad(
            self.cfg.loss,
            shape,
            self.act.output(),
            yin,
            self.g.output_grad(),
            &mut self.rows,
        )?;
        dev.sum_rows(Batched::new(e, 1, nb), &self.rows, &mut self.loss)?;
        dev.mark_diverged(step as u32, &self.loss, &mut self.alive, &mut self.diverged)?;
        if step == 1 || step == self.cfg.steps || step.is_multiple_of(self.cfg.log_every) {
            self.log.steps.push(step);
            self.log
                .loss
                .push(dev.read(&self.loss)?.into_iter().map(f64::from).collect());
        }
        self.ens.backward(xin, &self.act, &mut self.g)?;
        let factor = schedule_factor(self.cfg.schedule, step.min(self.cfg.steps), self.cfg.steps);
        for l in 0..self.sizes.len() {
            let s = self.ens.spec.scale(&self.ens.layers[l], self.ens.adam);
            let [mw, mb, vw, vb] = &mut self.state[l];
            let up = Update {
                rule: self.cfg.rule,
                scale: (s.lr_w * factor) as f32,
                step: step as u32,
            };
            dev.update(
                &up,
                self.sizes[l].0,
                &self.g.w[l],
                &self.lr,
                &self.alive,
                &mut self.ens.w[l],
                mw.as_mut(),
                vw.as_mut(),
            )?;
            if let (Some(gb), Some(b)) = (self.g.b[l].as_ref(), self.ens.b[l].as_mut()) {
                let up = Update {
                    rule: self.cfg.rule,
                    scale: (s.lr_b * factor) as f32,
                    step: step as u32,
                };
                dev.update(
                    &up,
                    self.sizes[l].1,
                    gb,
                    &self.lr,
                    &self.alive,
                    b,
                    mb.as_mut(),
                    vb.as_mut(),
                )?;
            }
        }
        Ok(())
    }

    /// Each member's loss on all the training data now (NaN for a diverged member).
    pub fn full_loss(&mut self) -> Result<Vec<f64>> {
        let dev = self.ens.dev;
        let (e, n, d_out) = (self.ens.spec.ensemble, self.n, self.d_out);
        let mut act = self.ens.activations(n)?;
        self.ens.forward(&self.xs, &mut act)?;
        let mut df = dev.zeros(e * n * d_out)?;
        let mut rows = dev.zeros(e * n)?;
        dev.loss_grad(
            self.cfg.loss,
            Batched::new(e, n, d_out),
            act.output(),
            &self.ys,
            &mut df,
            &mut rows,
        )?;
        let mut loss = dev.zeros(e)?;
        dev.sum_rows(Batched::new(e, 1, n), &rows, &mut loss)?;
        let alive = dev.read(&self.alive)?;
        Ok(dev
            .read(&loss)?
            .into_iter()
            .zip(&alive)
            .map(|(l, &a)| if a > 0.5 { f64::from(l) } else { f64::NAN })
            .collect())
    }

    /// Which members diverged, and when.
    pub fn diverged_at(&self) -> Result<Vec<Option<usize>>> {
        Ok(self
            .ens
            .dev
            .read(&self.diverged)?
            .into_iter()
            .map(|d| if d < 0.0 { None } else { Some(d as usize) })
            .collect())
    }

    /// Ends the run: final losses on all the data and the divergence record.
    pub fn finish(mut self) -> Result<TrainLog> {
        self.log.final_loss = self.full_loss()?;
        self.log.diverged_at = self.diverged_at()?;
        Ok(self.log)
    }
}

/// Trains `ens` on `x` (`[n, d_in]`) and `y` (`[n, d_out]`, see [`targets`]).
pub fn train(
    ens: &mut Ensemble<'_>,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    cfg: &TrainConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<TrainLog> {
    let mut t = Trainer::new(ens, x, y, cfg)?;
    for step in 1..=cfg.steps {
        t.step()?;
        if step == 1 || step == cfg.steps || step.is_multiple_of(cfg.log_every) {
            progress(step, cfg.steps);
        }
    }
    t.finish()
}

/// Outputs of every member on `x`: `[E, rows, d_out]`.
pub fn forward(ens: &Ensemble<'_>, x: &Matrix<f32>) -> Result<Vec<f32>> {
    forward_ref(ens, x.view())
}

/// [`forward`] on borrowed inputs.
pub fn forward_ref(ens: &Ensemble<'_>, x: MatrixRef<'_, f32>) -> Result<Vec<f32>> {
    if x.cols() != ens.spec.d_in {
        return Err(Error::shape(
            "forward",
            format!(
                "x has {} features but the network has d_in = {}",
                x.cols(),
                ens.spec.d_in
            ),
        ));
    }
    if let Some((r, c)) = x.first_non_finite() {
        return Err(Error::invalid(format!(
            "x has a non-finite value at row {r}, column {c}"
        )));
    }
    let xs = ens.dev.upload(x.data())?;
    let mut act = ens.activations(x.rows())?;
    ens.forward(&xs, &mut act)?;
    ens.dev.read(act.output())
}
