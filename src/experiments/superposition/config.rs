//! Settings of `widenet superposition`, with the paper's defaults (Elhage et
//! al. 2022, section 3: `n = 20` features, `m = 5` hidden dimensions,
//! importance `0.7^i`, Adam at `1e-3`, batches of 1,024, 10,000 steps).

use super::model::Output;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Settings of `widenet superposition`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuperpositionConfig {
    /// Features `n`.
    pub features: usize,
    /// Hidden dimensions `m` (fewer than the features).
    pub hidden: usize,
    /// Sparsities `S` of the sweep (probability that a feature is zero).
    pub sparsity: Vec<f64>,
    /// Importance decays `R` of the sweep: feature `i` has importance `R^i`.
    pub importance_decay: Vec<f64>,
    /// Seeds per (sparsity, importance) point.
    pub seeds: usize,
    /// Output models trained on every point: `relu` and `linear`.
    pub models: Vec<Output>,
    /// Adam steps.
    pub steps: usize,
    /// Draws per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Relative importances of the two-feature phase diagram (`n = 2`,
    /// `m = 1`): this many values from 0.1 to 10 (0: no phase diagram).
    pub phase_importances: usize,
    /// Feature densities `1 - S` of the phase diagram: this many from 0.01 to 1.
    pub phase_densities: usize,
    /// Restarts per point of the phase diagram (different initial weights,
    /// the same draws); the point shows the phase of the lowest final loss,
    /// as the theory compares optima.
    pub phase_seeds: usize,
    /// Read the losses back every this many steps (progress and loss curves).
    pub log_every: usize,
    /// Save the training state every this many steps (for `--resume`).
    pub checkpoint_every: usize,
    /// Batches of held-out draws for the final losses.
    pub eval_batches: usize,
    /// Seed of the initializations and of the data.
    pub seed: u64,
}

/// `count` sparsities from 0 to `1 - 10^-decades`, evenly spaced in
/// `log(1 / (1 - S))` (the paper's axis).
pub fn sparsity_sweep(count: usize, decades: f64) -> Vec<f64> {
    (0..count)
        .map(|i| {
            let t = if count > 1 {
                i as f64 / (count - 1) as f64
            } else {
                0.0
            };
            // Rounded to 6 digits: the values print as they are.
            let s = 1.0 - 10f64.powf(-decades * t);
            (s * 1e6).round() / 1e6
        })
        .collect()
}

impl Default for SuperpositionConfig {
    fn default() -> Self {
        SuperpositionConfig {
            features: 20,
            hidden: 5,
            sparsity: sparsity_sweep(20, 3.0),
            importance_decay: vec![0.7],
            seeds: 3,
            models: vec![Output::Relu, Output::Linear],
            steps: 10_000,
            batch: 1024,
            lr: 1e-3,
            phase_importances: 9,
            phase_densities: 9,
            phase_seeds: 4,
            log_every: 500,
            checkpoint_every: 1000,
            eval_batches: 8,
            seed: 0,
        }
    }
}

impl SuperpositionConfig {
    /// A small run for tests and a first look (seconds).
    pub fn quick() -> Self {
        SuperpositionConfig {
            features: 8,
            hidden: 3,
            sparsity: vec![0.0, 0.5, 0.9, 0.97, 0.99],
            seeds: 1,
            steps: 1500,
            batch: 256,
            lr: 3e-2,
            phase_importances: 5,
            phase_densities: 5,
            log_every: 100,
            checkpoint_every: 500,
            eval_batches: 4,
            ..Default::default()
        }
    }

    /// A larger run for real GPUs: 100 features in 20 dimensions, with equal
    /// importance (the paper's setting for the geometry of uniform
    /// superposition, scaled down) and with a slow decay.
    pub fn large() -> Self {
        SuperpositionConfig {
            features: 100,
            hidden: 20,
            sparsity: sparsity_sweep(40, 3.0),
            importance_decay: vec![1.0, 0.98],
            seeds: 4,
            steps: 20_000,
            phase_importances: 21,
            phase_densities: 21,
            ..Default::default()
        }
    }

    /// Members trained per model (every sparsity, importance and seed).
    pub fn sweep_members(&self) -> usize {
        self.sparsity.len() * self.importance_decay.len() * self.seeds
    }

    /// Checks the settings; the message names the setting at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.features < 2 || self.hidden == 0 || self.hidden >= self.features {
            return bad(format!(
                "features must be at least 2 and hidden between 1 and features - 1, got features = {}, hidden = {}",
                self.features, self.hidden
            ));
        }
        if self.sparsity.is_empty()
            || self
                .sparsity
                .iter()
                .any(|s| !(s.is_finite() && (0.0..1.0).contains(s)))
        {
            return bad(format!(
                "sparsity takes values in [0, 1), got {:?}",
                self.sparsity
            ));
        }
        if self.importance_decay.is_empty()
            || self
                .importance_decay
                .iter()
                .any(|r| !(r.is_finite() && *r > 0.0 && *r <= 1.0))
        {
            return bad(format!(
                "importance-decay takes values in (0, 1], got {:?}",
                self.importance_decay
            ));
        }
        if self.models.is_empty() {
            return bad("models names at least one of relu, linear".into());
        }
        for (name, v) in [
            ("seeds", self.seeds),
            ("steps", self.steps),
            ("batch", self.batch),
            ("log-every", self.log_every),
            ("checkpoint-every", self.checkpoint_every),
            ("eval-batches", self.eval_batches),
            ("phase-seeds", self.phase_seeds),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        if self.phase_importances == 1 || self.phase_densities == 1 {
            return bad("the phase diagram needs at least 2 values on each axis (or 0)".into());
        }
        if (self.phase_importances == 0) != (self.phase_densities == 0) {
            return bad(
                "phase-importances and phase-densities are both 0 or both at least 2".into(),
            );
        }
        let members = self.sweep_members() * self.models.len()
            + self.phase_importances * self.phase_densities * self.phase_seeds;
        if self.steps > u32::MAX as usize
            || members > (1 << 24)
            || self.batch.saturating_mul(self.features) > u32::MAX as usize
        {
            return bad(format!(
                "too large: {members} members, {} steps, batches of {} x {} values",
                self.steps, self.batch, self.features
            ));
        }
        Ok(())
    }

    /// The relative importances of the phase diagram (0.1 to 10, log-spaced).
    pub fn phase_r(&self) -> Vec<f64> {
        log_spaced(0.1, 10.0, self.phase_importances)
    }

    /// The densities `1 - S` of the phase diagram (0.01 to 1, log-spaced).
    pub fn phase_p(&self) -> Vec<f64> {
        log_spaced(0.01, 1.0, self.phase_densities)
    }
}

fn log_spaced(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| lo * (hi / lo).powf(i as f64 / (count.max(2) - 1) as f64))
        .collect()
}
