//! Trainability against depth and `sigma_w^2` (Schoenholz et al. 2017,
//! section 5): at each depth one ensemble whose members are the `sw2`
//! values (times seeds), trained by minibatch SGD on a classification task;
//! the training accuracy after K steps of each.

use super::propagation::members;
use crate::activation::Activation;
use crate::backend::{Loss, Rule};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::net::Ensemble;
use crate::net::train::{Schedule, TrainConfig, forward, train};

/// A classification task: inputs and integer labels `0..classes`.
#[derive(Clone, Debug)]
pub struct Task {
    /// Inputs `[n, d]`.
    pub x: Matrix<f32>,
    /// Labels `[n, 1]`.
    pub y: Matrix<f32>,
    /// Number of classes.
    pub classes: usize,
}

impl Task {
    /// Checks that the labels are integers `0..classes` and there are two classes at least.
    pub fn validate(&self) -> Result<()> {
        if self.x.rows == 0 || self.x.rows != self.y.rows || self.y.cols != 1 {
            return Err(Error::invalid(format!(
                "the task needs n inputs and n labels in one column; got {} x {} and {} x {}",
                self.x.rows, self.x.cols, self.y.rows, self.y.cols
            )));
        }
        if self.classes < 2 {
            return Err(Error::invalid("the labels must name at least two classes"));
        }
        if let Some(v) = self
            .y
            .data
            .iter()
            .find(|v| v.fract() != 0.0 || **v < 0.0 || **v as usize >= self.classes)
        {
            return Err(Error::invalid(format!(
                "label {v} is not an integer in 0..{}",
                self.classes
            )));
        }
        Ok(())
    }

    /// A task from a regression target: class 1 where it is positive.
    pub fn from_signs(x: Matrix<f32>, y: &Matrix<f32>) -> Task {
        let labels = y
            .data
            .chunks(y.cols.max(1))
            .map(|r| if r[0] > 0.0 { 1.0 } else { 0.0 })
            .collect();
        Task {
            y: Matrix {
                rows: x.rows,
                cols: 1,
                data: labels,
            },
            x,
            classes: 2,
        }
    }
}

/// How the networks of one depth are trained.
#[derive(Clone, Copy, Debug)]
pub struct Training {
    /// Hidden width.
    pub width: usize,
    /// SGD steps.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Minibatch size.
    pub batch: usize,
    /// Seeds per `sw2`.
    pub seeds: usize,
    /// Seed of the initialization and the minibatches.
    pub seed: u64,
}

/// Training accuracy of each member (`sw2` major, seeds minor) after
/// training at `depth`; `None` for a member whose loss diverged.
pub fn accuracies(
    dev: &dyn crate::backend::Backend,
    act: Activation,
    sw2: &[f64],
    sb2: f64,
    depth: usize,
    task: &Task,
    t: &Training,
) -> Result<Vec<Option<f64>>> {
    let points: Vec<(f64, f64)> = sw2.iter().map(|&w| (w, sb2)).collect();
    let params = members(
        act,
        t.width,
        depth,
        task.x.cols,
        task.classes,
        &points,
        None,
        t.seeds,
        t.seed ^ depth as u64,
    )?;
    let mut ens = Ensemble::new(dev, &params)?;
    let cfg = TrainConfig {
        rule: Rule::Sgd,
        lr: vec![t.lr],
        steps: t.steps,
        batch_size: Some(t.batch.min(task.x.rows)),
        loss: Loss::Xent,
        schedule: Schedule::Constant,
        log_every: t.steps,
        seed: t.seed,
    };
    let log = train(&mut ens, &task.x, &task.y, &cfg, |_, _| {})?;
    let out = forward(&ens, &task.x)?;
    let (n, k) = (task.x.rows, task.classes);
    Ok((0..params.spec.ensemble)
        .map(|e| {
            if !log.final_loss[e].is_finite() {
                return None;
            }
            let right = (0..n)
                .filter(|&r| {
                    let row = &out[(e * n + r) * k..(e * n + r + 1) * k];
                    let best = (0..k)
                        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                        .unwrap_or(0);
                    best == task.y.data[r] as usize
                })
                .count();
            Some(right as f64 / n as f64)
        })
        .collect())
}
