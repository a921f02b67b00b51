//! The report of `widenet drift`: each fitted slope against what theory
//! says of it, and why.

use super::DriftConfig;
use crate::arch::Parameterization;
use crate::experiments::framing;

/// What theory says of a movement's slope in width under `p`: the power and why.
pub(super) fn theory(p: Parameterization, key: &str) -> (f64, &'static str) {
    match (p, key) {
        (Parameterization::Mup, _) => (
            0.0,
            "muP keeps every layer's update of order one at every width (Yang and Hu 2021): features and kernel move by a width-independent amount",
        ),
        (_, "ntk_movement") => (
            -1.0,
            "perturbation theory: the NTK's change is driven by the dNTK, of order 1/width (Dyer and Gur-Ari 2020; Huang and Yau 2020; Roberts, Yaida and Hanin 2022); the terms first order in the weights' change average out over the units, so the kernel moves like 1/width while each feature moves like width^-1/2",
        ),
        _ => (
            -0.5,
            "each hidden unit's preactivation moves by order width^-1/2 (the readout weights are of order width^-1/2), so the feature matrix changes by width^-1/2 relative to its size",
        ),
    }
}

pub(super) fn power_text(p: f64) -> &'static str {
    if p == 0.0 {
        "order one"
    } else if p == -1.0 {
        "width^-1"
    } else {
        "width^-1/2"
    }
}

pub(super) fn markdown(cfg: &DriftConfig, r: &serde_json::Value, out: &std::path::Path) -> String {
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let arch = framing::sweep_arch(
        cfg.arch.as_ref().map(ToString::to_string).as_deref(),
        cfg.depth,
        &cfg.activation,
        &cfg.widths,
    );
    let mut md = framing::teacher_opening("drift", arch, cfg.n_train, cfg.d_in, r);
    let full = DriftConfig::default();
    md.push_str(&framing::sweep_noisy(
        "drift",
        [cfg.seeds, cfg.widths.len(), cfg.steps],
        [full.seeds, full.widths.len(), full.steps],
    ));
    md.push_str(&format!("Relative change (relative Frobenius distance between the end and the start of training) of each member's empirical NTK and of its last hidden features over {} steps of full-batch gradient descent on MSE, {} seeds; muP's base width is the first width, {}. Each slope is fitted to the mean over seeds; its error is the standard error of the slopes fitted seed by seed.\n\n", cfg.steps, cfg.seeds, cfg.widths[0]));
    md.push_str("| parameterization | lr | quantity | slope in width | standard error | theory | against theory |\n|---|---|---|---|---|---|---|\n");
    let mut differs = false;
    for b in r["parameterizations"].as_array().into_iter().flatten() {
        let p = if b["parameterization"] == "ntk" {
            Parameterization::Ntk
        } else {
            Parameterization::Mup
        };
        for key in ["ntk_movement", "feature_movement"] {
            let sl = &b["slopes"][key];
            let fit = crate::experiments::Slope {
                slope: num(&sl["slope"]),
                stderr: num(&sl["stderr"]),
                intercept: 0.0,
            };
            let (power, _) = theory(p, key);
            let v = framing::verdict(&fit, power);
            differs |= v != "agrees";
            md.push_str(&format!(
                "| {} | {:.4} | {} | {:.3} | {:.3} | {power} | {v} |\n",
                p.name(),
                num(&b["lr"]),
                key.replace('_', " "),
                fit.slope,
                fit.stderr
            ));
        }
    }
    let a = &r["alpha_sweep"];
    for key in ["ntk_movement", "feature_movement"] {
        let sl = &a["slopes"][key];
        let fit = crate::experiments::Slope {
            slope: num(&sl["slope"]),
            stderr: num(&sl["stderr"]),
            intercept: 0.0,
        };
        let v = framing::verdict(&fit, -1.0);
        differs |= v != "agrees";
        md.push_str(&format!(
            "| ntk, width {}, slope in alpha | {:.4} | {} | {:.3} | {:.3} | -1 | {v} |\n",
            cfg.alpha_width,
            num(&a["lr"]),
            key.replace('_', " "),
            fit.slope,
            fit.stderr
        ));
    }
    md.push_str("\nWhy these powers:\n\n");
    for (p, key) in [
        (Parameterization::Ntk, "ntk_movement"),
        (Parameterization::Ntk, "feature_movement"),
        (Parameterization::Mup, "ntk_movement"),
    ] {
        let (power, why) = theory(p, key);
        let what = if p == Parameterization::Mup {
            "muP, both".to_string()
        } else {
            format!("ntk, {}", key.replace('_', " "))
        };
        md.push_str(&format!("- {what} ({power}): {why}.\n"));
    }
    md.push_str("- Output scale alpha (-1): training `alpha f` centred at initialization asks each member for a change of `y / alpha`, so the weights, the features and (to first order) the kernel move like 1/alpha in the lazy limit (Chizat, Oyallon and Bach 2019); at small alpha the movement is no longer small and the power bends.\n\n");
    if differs {
        md.push_str("Where a slope differs from its theory, the likely causes are the few widths (or scales) and seeds of the sweep and corrections of higher order in 1/width at the small widths, which bend a fit over the whole range. A larger run (`--large`, more seeds) narrows the errors.\n\n");
    }
    md.push_str("![movement against width](movement_vs_width.svg)\n\n![movement against alpha](movement_vs_alpha.svg)\n\n");
    md.push_str(&framing::closing("drift", out));
    md
}
