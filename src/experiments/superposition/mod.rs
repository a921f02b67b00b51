//! `widenet superposition`: the toy models of superposition (Elhage et al.
//! 2022, "Toy Models of Superposition", <https://transformer-circuits.pub/2022/toy_model/>,
//! section 3), hundreds at once. `n` sparse features are compressed into
//! `m < n` hidden dimensions by tied weights, `x' = ReLU(W^T W x + b)` (and
//! the linear `x' = W^T W x + b`), trained on importance-weighted squared
//! error with Adam. Every (model, sparsity, importance, seed) of the sweep
//! and every point of the two-feature phase diagram is a member of one
//! batched run: the data are drawn on the device each step, per member with
//! its own sparsity, and nothing returns to the host inside training.
//!
//! Modules: [`config`] (settings), [`model`] (the tied model's forward and
//! backward passes on a backend), [`sweep`] (the members and the batched
//! training), [`geometry`] (norms, superposition, dimensionality),
//! [`phase`] (the two-feature theory), [`units`] (the units of `--shard`:
//! blocks of members, their points and the report's groups assembled from
//! them), `report` and `figures`.

pub mod config;
mod figures;
pub mod geometry;
pub mod model;
pub mod phase;
pub mod report;
pub mod sweep;
pub mod units;

pub use config::SuperpositionConfig;

use super::{Checkpoint, OutDir};
use crate::backend::Backend;
use crate::error::{Error, Result};
use serde_json::json;

/// The command line that reproduces a run from its report.
fn command(out: &OutDir) -> String {
    format!(
        "widenet superposition --config {} --out DIR",
        out.file("report.json").display()
    )
}

/// Runs the sweep and the phase diagram as one batched run and writes the
/// report, the figures and `weights.safetensors` to `out`. With `resume`, a
/// saved training state in `out` is continued.
pub fn run(
    dev: &dyn Backend,
    cfg: &SuperpositionConfig,
    out: &OutDir,
    quiet: bool,
    resume: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let ck = Checkpoint::open(
        out,
        &json!({"experiment": "superposition", "config": cfg}),
        resume,
    )?;
    let groups = sweep::groups(cfg);
    let units = units::units(cfg, &groups);
    let owned = units
        .iter()
        .map(|u| ck.mine(&u.key))
        .collect::<Result<Vec<bool>>>()?;
    let todo = units
        .iter()
        .zip(&owned)
        .any(|(u, o)| *o && ck.get(&u.key).is_none());
    let timing = if todo {
        let (sub, from) = units::subset(&groups, &units, &owned);
        match sweep::train(dev, cfg, sub, &ck, quiet)? {
            sweep::Outcome::Done(t, timing) => {
                units::save(&ck, &units, &owned, &t, &from)?;
                timing
            }
            sweep::Outcome::Interrupted(step) => {
                let report = json!({"experiment": "superposition", "version": env!("CARGO_PKG_VERSION"), "config": cfg, "device": dev.info(), "interrupted": true, "step": step});
                out.write_json(&report)?;
                out.write_md(&format!(
                    "# widenet superposition (interrupted)\n\nStopped after step {step} of {}; the training state is saved in `points/`. Rerun with `--resume --out {}` to finish.\n",
                    cfg.steps,
                    out.path.display()
                ))?;
                return Err(Error::Interrupted(out.path.display().to_string()));
            }
        }
    } else {
        // Every point saved already (a merge, or a finished run resumed).
        sweep::Timing {
            steps_run: 0,
            seconds: 0.0,
            members: 0,
            member_steps_per_second: 0.0,
        }
    };
    if let Some(shard) = ck.finish_shard()? {
        return Ok(shard);
    }
    let trained = units::assemble(&ck, groups, &units)?;
    let runs = report::runs(cfg, &trained);
    let points = report::phase_points(&trained);
    let phase = report::phase_json(&points);
    report::write_weights(&out.file("weights.safetensors"), &trained)?;
    let mut figs: Vec<(String, String)> = Vec::new();
    for t in trained.iter().filter(|t| t.group.name != "phase") {
        let name = format!("weights_{}", t.group.name);
        figures::weights(&out.file(&name), cfg, &runs, t)?;
        figs.push((
            format!("{name}.svg"),
            format!(
                "{} model: W^T W, b and feature norms by sparsity",
                t.group.name
            ),
        ));
    }
    figures::dimensionality(&out.path, cfg, &runs)?;
    figs.push((
        "dims_per_feature.svg".into(),
        "dimensions per feature against 1/(1-S)".into(),
    ));
    figs.push((
        "feature_dimensionality.svg".into(),
        "feature dimensionalities against 1/(1-S)".into(),
    ));
    if !points.is_empty() {
        figures::phase_diagram(&out.file("phase_diagram"), &points)?;
        figs.push((
            "phase_diagram.svg".into(),
            "two-feature phase diagram".into(),
        ));
    }
    let curve_steps: Vec<usize> = trained
        .first()
        .map(|t| t.curve.iter().map(|c| c.0).collect())
        .unwrap_or_default();
    let report = json!({
        "experiment": "superposition",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "device": dev.info(),
        "timing": timing,
        "loss_curve_steps": curve_steps,
        "runs": runs,
        "phase_diagram": phase,
        "weights": "weights.safetensors",
        "command": command(out),
    });
    let fig_refs: Vec<(&str, &str)> = figs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let md = report::markdown(
        cfg,
        &dev.describe(),
        &timing,
        &runs,
        &phase,
        &fig_refs,
        &command(out),
    );
    out.write_json(&report)?;
    out.write_md(&md)?;
    Ok(report)
}
