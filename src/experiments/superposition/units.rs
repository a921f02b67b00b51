//! The units of `--shard I/N`: blocks of consecutive members of one group.
//! A sweep group's unit is one (importance decay, sparsity) with all its
//! seeds, `{model}-r{i}-s{j}`; the phase diagram's is one row of densities,
//! `phase-p{i}` (every relative importance and restart at that density).
//! Units are listed group by group, in the order of [`super::sweep::groups`].
//!
//! A shard trains the members of the units it owns as one batched run (as
//! the whole sweep would be, with fewer members) and saves each unit's
//! final weights, biases, held-out losses and loss curve as its point; the
//! report is assembled from the points, whether one process computed them
//! all or shards did. A member trains the same alone as in a batch (its
//! data and initial weights come from its own id and stream), so on the CPU
//! backend, where every member's gradient is computed on its own, the points
//! are bit for bit those of the unsharded run.

use super::config::SuperpositionConfig;
use super::sweep::{Group, Trained};
use crate::error::{Error, Result};
use crate::experiments::Checkpoint;
use serde_json::json;
use std::ops::Range;

/// A unit: a block of members of one group.
pub struct Unit {
    /// Its key (the point's name).
    pub key: String,
    /// Index of its group.
    pub group: usize,
    /// Its members in the group.
    pub members: Range<usize>,
}

/// Every unit of a configuration, in order.
pub fn units(cfg: &SuperpositionConfig, groups: &[Group]) -> Vec<Unit> {
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let phase = g.name == "phase";
        let size = if phase {
            cfg.phase_r().len() * cfg.phase_seeds
        } else {
            cfg.seeds
        }
        .max(1);
        let per_decay = cfg.sparsity.len().max(1);
        for (b, start) in (0..g.members.len()).step_by(size).enumerate() {
            let key = if phase {
                format!("phase-p{b}")
            } else {
                format!("{}-r{}-s{}", g.name, b / per_decay, b % per_decay)
            };
            out.push(Unit {
                key,
                group: gi,
                members: start..(start + size).min(g.members.len()),
            });
        }
    }
    out
}

/// The groups restricted to the members of `owned` units (groups left
/// without a member are dropped), with the index of the group each came from.
pub fn subset(groups: &[Group], units: &[Unit], owned: &[bool]) -> (Vec<Group>, Vec<usize>) {
    let mut out = Vec::new();
    let mut from = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut members = Vec::new();
        let mut points = Vec::new();
        for (u, _) in units
            .iter()
            .zip(owned)
            .filter(|(u, o)| **o && u.group == gi)
        {
            members.extend_from_slice(&g.members[u.members.clone()]);
            points.extend_from_slice(&g.points[u.members.clone()]);
        }
        if !members.is_empty() {
            out.push(Group {
                name: g.name,
                shape: g.shape,
                members,
                points,
            });
            from.push(gi);
        }
    }
    (out, from)
}

/// Saves the point of every owned unit from the trained subset groups
/// (`from` as [`subset`] returns it).
pub fn save(
    ck: &Checkpoint,
    units: &[Unit],
    owned: &[bool],
    trained: &[Trained],
    from: &[usize],
) -> Result<()> {
    for (t, &gi) in trained.iter().zip(from) {
        let (m, n) = (t.group.shape.hidden, t.group.shape.features);
        let mut at = 0;
        for u in units
            .iter()
            .zip(owned)
            .filter(|(u, o)| **o && u.group == gi)
            .map(|(u, _)| u)
        {
            let r = at..at + u.members.len();
            at = r.end;
            let curve: Vec<(usize, Vec<f64>)> = t
                .curve
                .iter()
                .map(|(s, l)| (*s, l[r.clone()].to_vec()))
                .collect();
            ck.put(
                &u.key,
                &json!({
                    "w": t.w[r.start * m * n..r.end * m * n],
                    "b": t.b[r.start * n..r.end * n],
                    "final_loss": t.final_loss[r.clone()],
                    "curve": curve,
                }),
            )?;
        }
    }
    Ok(())
}

/// Every group trained, assembled from the units' points.
pub fn assemble(ck: &Checkpoint, groups: Vec<Group>, units: &[Unit]) -> Result<Vec<Trained>> {
    let mut out = Vec::with_capacity(groups.len());
    for (gi, group) in groups.into_iter().enumerate() {
        let mut t = Trained {
            group,
            w: Vec::new(),
            b: Vec::new(),
            final_loss: Vec::new(),
            curve: Vec::new(),
        };
        for u in units.iter().filter(|u| u.group == gi) {
            let bad = |what: &str| Error::invalid(format!("point {}: {what}", u.key));
            let v = ck.get(&u.key).ok_or_else(|| bad("missing or unreadable"))?;
            let f32s = |key: &str| -> Result<Vec<f32>> {
                serde_json::from_value(v[key].clone()).map_err(|e| bad(&format!("{key}: {e}")))
            };
            t.w.extend(f32s("w")?);
            t.b.extend(f32s("b")?);
            let loss: Vec<f64> = serde_json::from_value(v["final_loss"].clone())
                .map_err(|e| bad(&format!("final_loss: {e}")))?;
            t.final_loss.extend(loss);
            let curve: Vec<(usize, Vec<f64>)> = serde_json::from_value(v["curve"].clone())
                .map_err(|e| bad(&format!("curve: {e}")))?;
            if t.curve.is_empty() {
                t.curve = curve;
            } else if t.curve.len() == curve.len() {
                for ((s, l), (s2, l2)) in t.curve.iter_mut().zip(curve) {
                    if *s != s2 {
                        return Err(bad("its loss curve is logged at other steps"));
                    }
                    l.extend(l2);
                }
            } else {
                return Err(bad("its loss curve has another length"));
            }
        }
        let (e, m, n) = (
            t.group.members.len(),
            t.group.shape.hidden,
            t.group.shape.features,
        );
        if t.w.len() != e * m * n || t.b.len() != e * n || t.final_loss.len() != e {
            return Err(Error::invalid(format!(
                "the points of group {} do not hold its {e} members",
                t.group.name
            )));
        }
        out.push(t);
    }
    Ok(out)
}
