//! `widenet bench superposition`: the toy models of superposition as one
//! batched run against a loop of one-member runs doing the same work.

use serde::Serialize;
use widenet::backend::Backend;
use widenet::error::Result;
use widenet::experiments::superposition::SuperpositionConfig;
use widenet::experiments::superposition::model::TiedModel;
use widenet::experiments::superposition::sweep::{self, ADAM, Group};

/// One group (`relu`, `linear` or `phase`) of `bench superposition`.
#[derive(Clone, Debug, Serialize)]
pub struct GroupRecord {
    pub group: &'static str,
    pub members: usize,
    pub features: usize,
    pub hidden: usize,
    pub batch: usize,
    /// Median seconds of `steps` steps of all members at once.
    pub batched_seconds: f64,
    /// Median seconds of `steps` steps of one member, times the members.
    pub solo_loop_seconds: f64,
}

/// The whole measurement: every group of the configuration.
#[derive(Clone, Debug, Serialize)]
pub struct SuperpositionRecord {
    pub op: &'static str,
    /// Whether the backend's fused gradient was used where it has one.
    pub fused: bool,
    pub steps: usize,
    pub runs: usize,
    /// How the times were taken.
    pub timing: &'static str,
    pub groups: Vec<GroupRecord>,
    /// Member-steps per second of the batched run (all groups).
    pub batched_member_steps_per_second: f64,
    /// Member-steps per second of the one-member loop.
    pub solo_member_steps_per_second: f64,
    /// `solo_loop_seconds / batched_seconds`, summed over the groups.
    pub speedup: f64,
}

/// Median seconds of `steps` training steps of `g`'s first `members` members.
fn time_group(
    dev: &dyn Backend,
    cfg: &SuperpositionConfig,
    g: &Group,
    members: usize,
    steps: usize,
    runs: usize,
    fused: bool,
) -> Result<f64> {
    let chosen = &g.members[..members.min(g.members.len())];
    let (w, b) = sweep::init(cfg.seed, g.shape, chosen);
    let mut model = TiedModel::new(
        dev,
        g.shape,
        chosen,
        (&w, &b),
        sweep::data_seed(cfg.seed),
        ADAM,
        cfg.lr as f32,
    )?;
    model.set_fused(fused);
    let mut times = Vec::with_capacity(runs + 1);
    for _ in 0..=runs {
        dev.sync()?;
        let t = std::time::Instant::now();
        for _ in 0..steps {
            model.step()?;
        }
        dev.sync()?;
        times.push(t.elapsed().as_secs_f64());
    }
    // The first run warms up (pipelines, allocations) and is left out.
    times.remove(0);
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Times `steps` steps of each group of `cfg` batched, and of one member
/// (the loop of one-member runs is that time times the members). With
/// `fused` off, the gradient is composed from products and elementwise
/// passes even where the backend fuses it.
pub fn superposition(
    dev: &dyn Backend,
    cfg: &SuperpositionConfig,
    steps: usize,
    runs: usize,
    fused: bool,
) -> Result<SuperpositionRecord> {
    let mut groups = Vec::new();
    for g in sweep::groups(cfg) {
        let e = g.members.len();
        let batched = time_group(dev, cfg, &g, e, steps, runs, fused)?;
        let solo = time_group(dev, cfg, &g, 1, steps, runs, fused)?;
        groups.push(GroupRecord {
            group: g.name,
            members: e,
            features: g.shape.features,
            hidden: g.shape.hidden,
            batch: g.shape.batch,
            batched_seconds: batched,
            solo_loop_seconds: solo * e as f64,
        });
    }
    let batched: f64 = groups.iter().map(|g| g.batched_seconds).sum();
    let solo: f64 = groups.iter().map(|g| g.solo_loop_seconds).sum();
    let member_steps = (groups.iter().map(|g| g.members).sum::<usize>() * steps) as f64;
    Ok(SuperpositionRecord {
        op: "superposition",
        fused,
        steps,
        runs,
        timing: "wall clock of the steps, enqueued and waited for (median after one warm-up)",
        groups,
        batched_member_steps_per_second: member_steps / batched.max(1e-12),
        solo_member_steps_per_second: member_steps / solo.max(1e-12),
        speedup: solo / batched.max(1e-12),
    })
}
