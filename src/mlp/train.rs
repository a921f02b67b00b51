//! Training an ensemble: full-batch gradient descent or seeded minibatch SGD,
//! with momentum or Adam, on MSE or softmax cross-entropy, constant or cosine
//! learning rate. Every step stays on the device; losses come back to the
//! host only every `log_every` steps. A member whose loss stops being finite
//! is frozen and recorded; the others go on.

use super::ensemble::Ensemble;
use crate::backend::{Batched, Loss, Rule, Update, index_bits};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::Rng;

/// Learning-rate schedule over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// `lr * (1 + cos(pi * (t - 1) / steps)) / 2` at step t = 1..steps.
    Cosine,
}

/// How to train.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub rule: Rule,
    /// One learning rate for all members, or one per member.
    pub lr: Vec<f64>,
    pub steps: usize,
    /// Minibatch size; `None` is full batch.
    pub batch_size: Option<usize>,
    pub loss: Loss,
    pub schedule: Schedule,
    /// Read the losses back every this many steps (and at the first and last).
    pub log_every: usize,
    /// Seed of the minibatch shuffling.
    pub seed: u64,
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
pub fn targets(loss: Loss, y: &Matrix<f32>, d_out: usize) -> Result<Matrix<f32>> {
    if loss == Loss::Xent && y.cols == 1 && d_out > 1 {
        let mut out = Matrix::zeros(y.rows, d_out);
        for (r, &v) in y.data.iter().enumerate() {
            if v < 0.0 || v.fract() != 0.0 || v as usize >= d_out {
                return Err(Error::invalid(format!(
                    "class label {v} at row {r} is not an integer in 0..{d_out}"
                )));
            }
            out.data[r * d_out + v as usize] = 1.0;
        }
        return Ok(out);
    }
    if y.cols != d_out {
        return Err(Error::shape(
            "train",
            format!(
                "y has {} columns but the network has d_out = {d_out}",
                y.cols
            ),
        ));
    }
    if loss == Loss::Xent {
        for r in 0..y.rows {
            let row = y.row(r);
            let s: f32 = row.iter().sum();
            if row.iter().any(|&v| v < 0.0) || (s - 1.0).abs() > 1e-4 {
                return Err(Error::invalid(format!(
                    "cross-entropy targets must be class labels or rows of probabilities; row {r} sums to {s}"
                )));
            }
        }
    }
    Ok(y.clone())
}

fn validate(ens: &Ensemble<'_>, x: &Matrix<f32>, y: &Matrix<f32>, cfg: &TrainConfig) -> Result<()> {
    let spec = &ens.spec;
    if x.rows == 0 {
        return Err(Error::invalid("x holds no point"));
    }
    if x.cols != spec.d_in {
        return Err(Error::shape(
            "train",
            format!(
                "x has {} features but the network has d_in = {}",
                x.cols, spec.d_in
            ),
        ));
    }
    if y.rows != x.rows {
        return Err(Error::shape(
            "train",
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
    if cfg.steps == 0 {
        return Err(Error::invalid("--steps must be at least 1"));
    }
    if cfg.log_every == 0 {
        return Err(Error::invalid("--log-every must be at least 1"));
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
            "--lr must be positive and finite, got {bad}"
        )));
    }
    if let Some(b) = cfg.batch_size {
        if b == 0 || b > x.rows {
            return Err(Error::invalid(format!(
                "--batch-size must be between 1 and the number of points ({}), got {b}",
                x.rows
            )));
        }
    }
    match cfg.rule {
        Rule::Sgd => {}
        Rule::Momentum { mu } => {
            if !(0.0..1.0).contains(&mu) {
                return Err(Error::invalid(format!(
                    "--momentum must be in [0, 1), got {mu}"
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

/// Trains `ens` on `x` (`[n, d_in]`) and `y` (`[n, d_out]`, see [`targets`]).
pub fn train(
    ens: &mut Ensemble<'_>,
    x: &Matrix<f32>,
    y: &Matrix<f32>,
    cfg: &TrainConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<TrainLog> {
    let y = targets(cfg.loss, y, ens.spec.d_out)?;
    validate(ens, x, &y, cfg)?;
    let dev = ens.dev;
    ens.adam = matches!(cfg.rule, Rule::Adam { .. });
    let (e, n, d_in, d_out) = (ens.spec.ensemble, x.rows, ens.spec.d_in, ens.spec.d_out);
    let nb = cfg.batch_size.unwrap_or(n);
    let xs = dev.upload(&x.data)?;
    let ys = dev.upload(&y.data)?;
    let minibatch = nb < n;
    let (mut xb, mut yb, mut idx) = if minibatch {
        (
            Some(dev.zeros(nb * d_in)?),
            Some(dev.zeros(nb * d_out)?),
            Some(dev.zeros(nb)?),
        )
    } else {
        (None, None, None)
    };
    let lrs: Vec<f32> = if cfg.lr.len() == 1 {
        vec![cfg.lr[0] as f32; e]
    } else {
        cfg.lr.iter().map(|&v| v as f32).collect()
    };
    let lr = dev.upload(&lrs)?;
    let mut alive = dev.upload(&vec![1.0; e])?;
    let mut diverged = dev.upload(&vec![-1.0; e])?;
    let mut act = ens.activations(nb)?;
    let mut g = ens.grads(nb)?;
    let mut rows = dev.zeros(e * nb)?;
    let mut loss = dev.zeros(e)?;
    let state = |n: usize| -> Result<Option<crate::Buffer>> { Ok(Some(dev.zeros(n)?)) };
    let sizes: Vec<(usize, usize)> = ens.spec.layers().map(|(fi, fo)| (fi * fo, fo)).collect();
    let mut m_w = Vec::new();
    let mut m_b = Vec::new();
    let mut v_w = Vec::new();
    let mut v_b = Vec::new();
    for &(w, b) in &sizes {
        let (need_m, need_v) = match cfg.rule {
            Rule::Sgd => (false, false),
            Rule::Momentum { .. } => (true, false),
            Rule::Adam { .. } => (true, true),
        };
        m_w.push(if need_m { state(e * w)? } else { None });
        m_b.push(if need_m { state(e * b)? } else { None });
        v_w.push(if need_v { state(e * w)? } else { None });
        v_b.push(if need_v { state(e * b)? } else { None });
    }
    let mut shuffle = Rng::new(cfg.seed ^ 0x5348_5546_464c_4531);
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut pos = n;
    let mut log = TrainLog {
        steps: Vec::new(),
        loss: Vec::new(),
        final_loss: Vec::new(),
        diverged_at: Vec::new(),
    };
    for step in 1..=cfg.steps {
        let (xin, yin) = if minibatch {
            let mut batch = Vec::with_capacity(nb);
            while batch.len() < nb {
                if pos == n {
                    for i in (1..n).rev() {
                        perm.swap(i, shuffle.below(i + 1));
                    }
                    pos = 0;
                }
                batch.push(perm[pos]);
                pos += 1;
            }
            let (Some(xb), Some(yb), Some(idx)) = (xb.as_mut(), yb.as_mut(), idx.as_mut()) else {
                return Err(Error::invalid("internal: minibatch buffers missing"));
            };
            dev.write(idx, &index_bits(&batch))?;
            dev.gather_rows(&xs, d_in, idx, xb)?;
            dev.gather_rows(&ys, d_out, idx, yb)?;
            (&*xb, &*yb)
        } else {
            (&xs, &ys)
        };
        ens.forward(xin, &mut act)?;
        let shape = Batched::new(e, nb, d_out);
        dev.loss_grad(
            cfg.loss,
            shape,
            &act.z[ens.spec.depth],
            yin,
            g.output_grad(),
            &mut rows,
        )?;
        dev.sum_rows(Batched::new(e, 1, nb), &rows, &mut loss)?;
        dev.mark_diverged(step as u32, &loss, &mut alive, &mut diverged)?;
        if step == 1 || step == cfg.steps || step % cfg.log_every == 0 {
            log.steps.push(step);
            log.loss
                .push(dev.read(&loss)?.into_iter().map(f64::from).collect());
            progress(step, cfg.steps);
        }
        ens.backward(xin, &act, &mut g)?;
        let factor = schedule_factor(cfg.schedule, step, cfg.steps);
        for l in 0..sizes.len() {
            let s = ens.spec.scale(l, ens.adam);
            let (mw, vw) = (m_w[l].as_mut(), v_w[l].as_mut());
            let up = Update {
                rule: cfg.rule,
                scale: (s.lr_w * factor) as f32,
                step: step as u32,
            };
            dev.update(&up, sizes[l].0, &g.w[l], &lr, &alive, &mut ens.w[l], mw, vw)?;
            let (mb, vb) = (m_b[l].as_mut(), v_b[l].as_mut());
            let up = Update {
                rule: cfg.rule,
                scale: (s.lr_b * factor) as f32,
                step: step as u32,
            };
            dev.update(&up, sizes[l].1, &g.b[l], &lr, &alive, &mut ens.b[l], mb, vb)?;
        }
    }
    // Loss on all the data after training.
    let mut act_all = if minibatch { ens.activations(n)? } else { act };
    ens.forward(&xs, &mut act_all)?;
    let mut df = dev.zeros(e * n * d_out)?;
    let mut rows_all = dev.zeros(e * n)?;
    dev.loss_grad(
        cfg.loss,
        Batched::new(e, n, d_out),
        &act_all.z[ens.spec.depth],
        &ys,
        &mut df,
        &mut rows_all,
    )?;
    dev.sum_rows(Batched::new(e, 1, n), &rows_all, &mut loss)?;
    let alive_v = dev.read(&alive)?;
    log.final_loss = dev
        .read(&loss)?
        .into_iter()
        .zip(&alive_v)
        .map(|(l, &a)| if a > 0.5 { f64::from(l) } else { f64::NAN })
        .collect();
    log.diverged_at = dev
        .read(&diverged)?
        .into_iter()
        .map(|d| if d < 0.0 { None } else { Some(d as usize) })
        .collect();
    Ok(log)
}

/// Outputs of every member on `x`: `[E, rows, d_out]`.
pub fn forward(ens: &Ensemble<'_>, x: &Matrix<f32>) -> Result<Vec<f32>> {
    if x.cols != ens.spec.d_in {
        return Err(Error::shape(
            "forward",
            format!(
                "x has {} features but the network has d_in = {}",
                x.cols, ens.spec.d_in
            ),
        ));
    }
    if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "x has a non-finite value at row {}, column {}",
            p / x.cols,
            p % x.cols
        )));
    }
    let xs = ens.dev.upload(&x.data)?;
    let mut act = ens.activations(x.rows)?;
    ens.forward(&xs, &mut act)?;
    ens.dev.read(&act.z[ens.spec.depth])
}
