//! The numbers of a finished run: per member of the sweep its geometry and
//! loss, per point of the phase diagram its measured and predicted phase, and
//! every member's weights in a safetensors file.

use super::config::SuperpositionConfig;
use super::geometry::{Geometry, measure};
use super::phase::{self, Phase};
use super::sweep::{Timing, Trained};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;

/// Phase-diagram points at least this far (decades of importance and
/// density) from every theoretical boundary are checked against the theory.
pub const CLEAR_OF_BOUNDARY: f64 = 0.15;

/// One member of the sweep after training.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// `relu` or `linear`.
    pub model: String,
    /// Probability that a feature is zero.
    pub sparsity: f64,
    /// Feature `i` had importance `importance_decay^i`.
    pub importance_decay: f64,
    /// Seed index.
    pub seed: usize,
    /// The geometry of its weights.
    #[serde(flatten)]
    pub geometry: Geometry,
    /// Loss on held-out draws.
    pub final_loss: f64,
    /// The bias `b`.
    pub bias: Vec<f32>,
    /// Loss on the training batch at each logged step.
    pub loss_curve: Vec<f64>,
}

/// The members of the sweep groups (`relu`, `linear`).
pub fn runs(cfg: &SuperpositionConfig, trained: &[Trained]) -> Vec<Run> {
    let (n, m) = (cfg.features, cfg.hidden);
    let mut out = Vec::new();
    for t in trained.iter().filter(|t| t.group.name != "phase") {
        for (e, p) in t.group.points.iter().enumerate() {
            out.push(Run {
                model: t.group.name.to_string(),
                sparsity: p.sparsity,
                importance_decay: p.importance_decay.unwrap_or(f64::NAN),
                seed: p.seed,
                geometry: measure(&t.w[e * m * n..(e + 1) * m * n], m, n),
                final_loss: t.final_loss[e],
                bias: t.b[e * n..(e + 1) * n].to_vec(),
                loss_curve: t.curve.iter().map(|(_, l)| l[e]).collect(),
            });
        }
    }
    out
}

/// One point of the phase diagram after training: the restart of lowest
/// final loss, and the phases of all restarts.
#[derive(Clone, Debug, Serialize)]
pub struct PhasePoint {
    /// Importance of feature 2 relative to feature 1.
    pub relative_importance: f64,
    /// Density `1 - S`.
    pub density: f64,
    /// `W = (w_1, w_2)` of the best restart.
    pub w: [f32; 2],
    /// `b` of the best restart.
    pub b: [f32; 2],
    /// The phase the best restart's weights show.
    pub measured: Phase,
    /// The phase the theory predicts.
    pub theory: Phase,
    /// Decades to the nearest theoretical boundary.
    pub distance_to_boundary: f64,
    /// Loss of the best restart on held-out draws.
    pub final_loss: f64,
    /// Phase of every restart.
    pub restarts: Vec<Phase>,
    /// Held-out loss of every restart.
    pub restart_losses: Vec<f64>,
}

/// The phase diagram's points, if the run had one.
pub fn phase_points(trained: &[Trained]) -> Vec<PhasePoint> {
    let Some(t) = trained.iter().find(|t| t.group.name == "phase") else {
        return Vec::new();
    };
    let mut out: Vec<PhasePoint> = Vec::new();
    let pts = &t.group.points;
    let mut e = 0;
    while e < pts.len() {
        // The restarts of a point are consecutive members.
        let k = pts[e..]
            .iter()
            .take_while(|p| {
                p.sparsity == pts[e].sparsity && p.relative_importance == pts[e].relative_importance
            })
            .count();
        let ids: Vec<usize> = (e..e + k).collect();
        let w = |i: usize| [t.w[2 * i], t.w[2 * i + 1]];
        let best = ids
            .iter()
            .copied()
            .min_by(|&a, &b| t.final_loss[a].total_cmp(&t.final_loss[b]))
            .unwrap_or(e);
        let r = pts[e].relative_importance.unwrap_or(f64::NAN);
        let d = 1.0 - pts[e].sparsity;
        out.push(PhasePoint {
            relative_importance: r,
            density: d,
            w: w(best),
            b: [t.b[2 * best], t.b[2 * best + 1]],
            measured: phase::classify(w(best)),
            theory: phase::theory(r, d),
            distance_to_boundary: phase::distance_to_boundary(r, d),
            final_loss: t.final_loss[best],
            restarts: ids.iter().map(|&i| phase::classify(w(i))).collect(),
            restart_losses: ids.iter().map(|&i| t.final_loss[i]).collect(),
        });
        e += k.max(1);
    }
    out
}

/// The phase diagram's JSON: points, and how many of those clear of the
/// boundaries agree with the theory.
pub fn phase_json(points: &[PhasePoint]) -> Value {
    let clear: Vec<&PhasePoint> = points
        .iter()
        .filter(|p| p.distance_to_boundary >= CLEAR_OF_BOUNDARY)
        .collect();
    let agree = clear.iter().filter(|p| p.measured == p.theory).count();
    json!({
        "features": 2,
        "hidden": 1,
        "boundaries": "superposition below density 4r/(2+5r) (r <= 1) and 4/(5+2r) (r >= 1); r = 1 above 4/7",
        "clear_of_boundary_decades": CLEAR_OF_BOUNDARY,
        "points_clear_of_boundaries": clear.len(),
        "agreeing_with_theory": agree,
        "points": points,
    })
}

/// Every member's weights and biases, `{group}.weight` `[E, m, n]` and
/// `{group}.bias` `[E, n]`, with the members' settings in the metadata.
pub fn write_weights(path: &Path, trained: &[Trained]) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut views = Vec::new();
    let mut meta = std::collections::HashMap::new();
    for t in trained {
        let (e, s) = (t.group.members.len(), t.group.shape);
        for (what, data, shape) in [
            ("weight", &t.w, vec![e, s.hidden, s.features]),
            ("bias", &t.b, vec![e, s.features]),
        ] {
            let v = TensorView::new(Dtype::F32, shape, bytemuck::cast_slice(data))
                .map_err(|err| Error::file(path, err))?;
            views.push((format!("{}.{what}", t.group.name), v));
        }
        let points =
            serde_json::to_string(&t.group.points).map_err(|err| Error::file(path, err))?;
        meta.insert(format!("{}.members", t.group.name), points);
    }
    meta.insert("format".to_string(), "pt".to_string());
    let bytes =
        safetensors::tensor::serialize(views, Some(meta)).map_err(|err| Error::file(path, err))?;
    crate::atomic::write_atomic(path, &bytes)
}

/// Mean and standard deviation (over seeds) of `f` for the runs of one model
/// at one sparsity and importance.
pub fn over_seeds(
    runs: &[Run],
    model: &str,
    sparsity: f64,
    decay: f64,
    f: impl Fn(&Run) -> f64,
) -> (f64, f64) {
    let v: Vec<f64> = runs
        .iter()
        .filter(|r| r.model == model && r.sparsity == sparsity && r.importance_decay == decay)
        .map(f)
        .collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Mean superposition of a run's represented features (0 when none).
pub fn mean_superposition(r: &Run) -> f64 {
    let v: Vec<f64> = r
        .geometry
        .norms
        .iter()
        .zip(&r.geometry.superposition)
        .filter(|(n, _)| **n > super::geometry::REPRESENTED)
        .map(|(_, s)| *s)
        .collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `report.md`: what was run, a table per model and sparsity, the phase
/// diagram's agreement, the figures, and the command that reproduces it.
pub fn markdown(
    cfg: &SuperpositionConfig,
    device: &str,
    timing: &Timing,
    runs: &[Run],
    phase: &Value,
    figures: &[(&str, &str)],
    command: &str,
) -> String {
    let mut md = String::from("# widenet superposition\n\n");
    md.push_str(&format!(
        "The toy models of superposition (Elhage et al. 2022, section 3): {} sparse features (each zero with probability S, else uniform on [0, 1], drawn on the device every step) through {} hidden dimensions, x' = ReLU(W^T W x + b) and the linear x' = W^T W x + b, importance {} (feature i has R^i), importance-weighted mean squared error, Adam at lr {} for {} steps of {} draws. Sparsities {:?}, {} seed(s) each; {} members in all (with the phase diagram's), trained as one batched run on {device}: {} steps in {:.1} s ({:.0} member-steps/s).\n\n",
        cfg.features,
        cfg.hidden,
        cfg.importance_decay.iter().map(|r| format!("R = {r}")).collect::<Vec<_>>().join(", "),
        cfg.lr,
        cfg.steps,
        cfg.batch,
        cfg.sparsity,
        cfg.seeds,
        timing.members,
        timing.steps_run,
        timing.seconds,
        timing.member_steps_per_second,
    ));
    let full = SuperpositionConfig::default();
    md.push_str(&crate::experiments::framing::sizes_noisy(
        "superposition",
        &[
            ("sparsities", cfg.sparsity.len(), full.sparsity.len()),
            ("seed(s)", cfg.seeds, full.seeds),
            ("steps", cfg.steps, full.steps),
        ],
    ));
    for &decay in &cfg.importance_decay {
        md.push_str(&format!(
            "## Importance decay R = {decay}\n\n| S | 1/(1-S) |"
        ));
        for model in &cfg.models {
            let m = model.name();
            md.push_str(&format!(
                " {m}: features represented | {m}: dimensions per feature | {m}: mean superposition | {m}: loss |"
            ));
        }
        md.push_str("\n|---|---|");
        md.push_str(&"---|---|---|---|".repeat(cfg.models.len()));
        md.push('\n');
        for &s in &cfg.sparsity {
            md.push_str(&format!("| {s} | {:.1} |", 1.0 / (1.0 - s)));
            for model in &cfg.models {
                let m = model.name();
                let (rep, _) = over_seeds(runs, m, s, decay, |r| {
                    r.geometry.features_represented as f64
                });
                let (dpf, sd) = over_seeds(runs, m, s, decay, |r| r.geometry.dims_per_feature);
                let (sup, _) = over_seeds(runs, m, s, decay, mean_superposition);
                let (loss, _) = over_seeds(runs, m, s, decay, |r| r.final_loss);
                md.push_str(&format!(
                    " {rep:.2} | {dpf:.3} ± {sd:.3} | {sup:.3} | {loss:.3e} |"
                ));
            }
            md.push('\n');
        }
        md.push('\n');
    }
    if let Some(n) = phase["points_clear_of_boundaries"].as_u64() {
        md.push_str(&format!(
            "## Two features in one dimension\n\n{} of the {n} points of the phase diagram at least {} decades from the theoretical boundaries ({}) show the phase the theory predicts.\n\n",
            phase["agreeing_with_theory"],
            CLEAR_OF_BOUNDARY,
            phase["boundaries"].as_str().unwrap_or("")
        ));
    }
    md.push_str("## Figures\n\n");
    for (file, caption) in figures {
        md.push_str(&format!("![{caption}]({file})\n\n"));
    }
    md.push_str(&format!(
        "Weights of every member: `weights.safetensors`. Reproduce with\n\n```\n{command}\n```\n"
    ));
    md
}
