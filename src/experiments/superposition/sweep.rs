//! The batched run: every point of the sweep (sparsity, importance, seed),
//! for every output model, and every point of the two-feature phase diagram
//! is a member of one group of tied models, and all groups train together,
//! step by step, on the device. The training state is saved every
//! `checkpoint_every` steps, so that an interrupted run resumes where it
//! stopped and ends bit for bit as an uninterrupted one would (the data are a
//! function of the step).

use super::config::SuperpositionConfig;
use super::model::{Member, Output, Shape, TiedModel};
use crate::backend::{Backend, Rule};
use crate::error::{Error, Result};
use crate::experiments::{Checkpoint, interrupted};
use crate::rng::Rng;
use serde::Serialize;
use serde_json::json;

/// Member ids of the phase diagram start here (the sweep's are below).
const PHASE_IDS: u32 = 1 << 24;

/// What a member of a group stands for.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Probability that a feature is zero.
    pub sparsity: f64,
    /// `R` of the importances `R^i` (the sweep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub importance_decay: Option<f64>,
    /// Importance of feature 2 relative to feature 1 (the phase diagram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_importance: Option<f64>,
    /// Seed index.
    pub seed: usize,
}

/// One group of members trained together: its shape and members.
pub struct Group {
    /// `relu`, `linear` (the sweep) or `phase` (the two-feature diagram).
    pub name: &'static str,
    /// Shape shared by the members.
    pub shape: Shape,
    /// The members, as the device sees them.
    pub members: Vec<Member>,
    /// The members, as the report names them.
    pub points: Vec<Point>,
}

/// The groups of a configuration.
pub fn groups(cfg: &SuperpositionConfig) -> Vec<Group> {
    let mut members = Vec::new();
    let mut points = Vec::new();
    for (ri, &r) in cfg.importance_decay.iter().enumerate() {
        for (si, &s) in cfg.sparsity.iter().enumerate() {
            for seed in 0..cfg.seeds {
                let id = ((ri * cfg.sparsity.len() + si) * cfg.seeds + seed) as u32;
                members.push(Member {
                    id,
                    init: u64::from(id),
                    sparsity: s as f32,
                    importance: (0..cfg.features).map(|i| r.powi(i as i32) as f32).collect(),
                });
                points.push(Point {
                    sparsity: s,
                    importance_decay: Some(r),
                    relative_importance: None,
                    seed,
                });
            }
        }
    }
    let mut out: Vec<Group> = cfg
        .models
        .iter()
        .map(|&output| Group {
            name: output.name(),
            shape: Shape {
                features: cfg.features,
                hidden: cfg.hidden,
                batch: cfg.batch,
                output,
            },
            members: members.clone(),
            points: points.clone(),
        })
        .collect();
    if cfg.phase_importances > 0 {
        let mut members = Vec::new();
        let mut points = Vec::new();
        // Restarts of a point share its draws and differ in their initial weights.
        let mut point = 0u32;
        for &p in &cfg.phase_p() {
            for &r in &cfg.phase_r() {
                for seed in 0..cfg.phase_seeds {
                    members.push(Member {
                        id: PHASE_IDS + point,
                        init: u64::from(PHASE_IDS)
                            + (point as u64) * cfg.phase_seeds as u64
                            + seed as u64,
                        sparsity: (1.0 - p) as f32,
                        importance: vec![1.0, r as f32],
                    });
                    points.push(Point {
                        sparsity: 1.0 - p,
                        importance_decay: None,
                        relative_importance: Some(r),
                        seed,
                    });
                }
                point += 1;
            }
        }
        out.push(Group {
            name: "phase",
            shape: Shape {
                features: 2,
                hidden: 1,
                batch: cfg.batch,
                output: Output::Relu,
            },
            members,
            points,
        });
    }
    out
}

/// Initial weights of a group: `W` Xavier-normal (std `sqrt(2 / (n + m))`,
/// as the paper's code), `b = 0`; each member's from its own stream of the
/// seed, so that a member starts the same wherever it sits in a batch.
pub fn init(seed: u64, shape: Shape, members: &[Member]) -> (Vec<f32>, Vec<f32>) {
    let (n, m) = (shape.features, shape.hidden);
    let std = (2.0 / (n + m) as f64).sqrt();
    let mut w = Vec::with_capacity(members.len() * m * n);
    for p in members {
        let mut r = Rng::stream(seed, p.init);
        w.extend((0..m * n).map(|_| (r.normal() * std) as f32));
    }
    (w, vec![0.0; members.len() * n])
}

/// The seed of the training draws (the low and high words of the run's seed).
pub fn data_seed(seed: u64) -> u32 {
    (seed as u32) ^ ((seed >> 32) as u32)
}

/// The seed of the held-out draws of the final losses.
pub fn eval_seed(seed: u64) -> u32 {
    data_seed(seed) ^ 0x9e37_79b9
}

/// Adam with the usual constants (PyTorch's defaults, as the paper's code).
pub const ADAM: Rule = Rule::Adam {
    b1: 0.9,
    b2: 0.999,
    eps: 1e-8,
};

/// A group after training.
pub struct Trained {
    /// The group.
    pub group: Group,
    /// Final weights `[E, m, n]`.
    pub w: Vec<f32>,
    /// Final biases `[E, n]`.
    pub b: Vec<f32>,
    /// Each member's loss on held-out draws.
    pub final_loss: Vec<f64>,
    /// (step, each member's loss on that step's batch).
    pub curve: Vec<(usize, Vec<f64>)>,
}

/// How the training went.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    /// Steps taken by this process (fewer than `steps` after `--resume`).
    pub steps_run: usize,
    /// Seconds they took (training only).
    pub seconds: f64,
    /// Members this process trained (all of them unless sharded; none in a merge).
    pub members: usize,
    /// Member-steps per second.
    pub member_steps_per_second: f64,
}

/// Progress on standard error: a bar on a terminal, else one line per update.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    t0: std::time::Instant,
}

impl Progress {
    fn new(quiet: bool, steps: usize, start: usize) -> Self {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = crate::experiments::progress(false, steps as u64, "superposition");
            b.set_position(start as u64);
            b
        });
        Progress {
            bar,
            quiet,
            t0: std::time::Instant::now(),
        }
    }

    fn update(&self, step: usize, steps: usize, loss: f64) {
        match &self.bar {
            Some(b) => {
                b.set_position(step as u64);
                b.set_message(format!("mean loss {loss:.4}"));
            }
            None if !self.quiet => eprintln!(
                "superposition: step {step}/{steps}, mean loss {loss:.5}, {:.1} s",
                self.t0.elapsed().as_secs_f64()
            ),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Saves every group's parameters, Adam state and loss curve at `step`.
fn save(
    ck: &Checkpoint,
    step: usize,
    models: &[TiedModel<'_>],
    curves: &[Vec<(usize, Vec<f64>)>],
) -> Result<()> {
    let groups = models
        .iter()
        .zip(curves)
        .map(|(m, c)| Ok(json!({"state": m.state()?, "curve": c})))
        .collect::<Result<Vec<_>>>()?;
    ck.put("state", &json!({"step": step, "groups": groups}))
}

/// The saved step, states and curves, if a checkpoint holds them.
fn load(ck: &Checkpoint, groups: usize) -> Result<Option<(usize, Vec<serde_json::Value>)>> {
    let Some(v) = ck.get("state") else {
        return Ok(None);
    };
    let step = v["step"].as_u64();
    let g = v["groups"].as_array().filter(|g| g.len() == groups);
    match (step, g) {
        (Some(s), Some(g)) => Ok(Some((s as usize, g.clone()))),
        _ => Err(Error::invalid(
            "the saved training state is unreadable; drop --resume to start again",
        )),
    }
}

/// How a run ended.
pub enum Outcome {
    /// Every group trained and evaluated.
    Done(Vec<Trained>, Timing),
    /// Stopped by Ctrl-C; the state after this step is saved.
    Interrupted(usize),
}

/// Trains every group for `cfg.steps` steps (from a saved state where the
/// checkpoint holds one) and evaluates the final losses. On Ctrl-C the state
/// is saved and the run stops.
pub fn train(
    dev: &dyn Backend,
    cfg: &SuperpositionConfig,
    groups: Vec<Group>,
    ck: &Checkpoint,
    quiet: bool,
) -> Result<Outcome> {
    let mut models = Vec::with_capacity(groups.len());
    for g in &groups {
        let (w, b) = init(cfg.seed, g.shape, &g.members);
        models.push(TiedModel::new(
            dev,
            g.shape,
            &g.members,
            (&w, &b),
            data_seed(cfg.seed),
            ADAM,
            cfg.lr as f32,
        )?);
    }
    let mut curves: Vec<Vec<(usize, Vec<f64>)>> = vec![Vec::new(); groups.len()];
    let mut start = 0;
    if let Some((step, saved)) = load(ck, groups.len())? {
        for ((m, s), c) in models.iter_mut().zip(&saved).zip(curves.iter_mut()) {
            m.restore(step as u32, &s["state"])?;
            *c = serde_json::from_value(s["curve"].clone())
                .map_err(|e| Error::invalid(format!("saved loss curve: {e}")))?;
        }
        start = step;
    }
    let progress = Progress::new(quiet, cfg.steps, start);
    let t0 = std::time::Instant::now();
    for step in start + 1..=cfg.steps {
        if interrupted() {
            save(ck, step - 1, &models, &curves)?;
            progress.finish();
            return Ok(Outcome::Interrupted(step - 1));
        }
        let log = step == 1 || step == cfg.steps || step.is_multiple_of(cfg.log_every);
        for (m, c) in models.iter_mut().zip(curves.iter_mut()) {
            if log {
                c.push((step, m.step_with_loss()?));
            } else {
                m.step()?;
            }
        }
        if let Some((_, l)) = curves[0].last().filter(|_| log) {
            progress.update(step, cfg.steps, mean(l));
        }
        if step.is_multiple_of(cfg.checkpoint_every) || step == cfg.steps {
            save(ck, step, &models, &curves)?;
        }
    }
    dev.sync()?;
    let seconds = t0.elapsed().as_secs_f64();
    progress.finish();
    let members: usize = groups.iter().map(|g| g.members.len()).sum();
    let steps_run = cfg.steps - start;
    let timing = Timing {
        steps_run,
        seconds,
        members,
        member_steps_per_second: (members * steps_run) as f64 / seconds.max(1e-9),
    };
    let mut out = Vec::with_capacity(groups.len());
    for ((g, mut m), curve) in groups.into_iter().zip(models).zip(curves) {
        let final_loss = m.eval_loss(eval_seed(cfg.seed), cfg.eval_batches as u32)?;
        let (w, b) = m.parameters()?;
        out.push(Trained {
            group: g,
            w,
            b,
            final_loss,
            curve,
        });
    }
    Ok(Outcome::Done(out, timing))
}
