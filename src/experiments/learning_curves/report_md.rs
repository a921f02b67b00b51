//! `report.md` of `learning-curves`.

use super::report::Inputs;
use crate::experiments::floats;
use crate::experiments::task::Source;
use serde_json::Value;

fn f(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

/// The markdown report: what was run, the numbers, the figures, the command.
pub(super) fn markdown(rep: &Value, r: &Inputs<'_>) -> String {
    let cfg = r.cfg;
    let data = match &cfg.source {
        Source::Sphere { d, target } => format!(
            "points uniform on the sphere in R^{d} (radius sqrt({d})), target `{target}` (power in each spherical-harmonic degree)"
        ),
        Source::Files { x, y } => format!("`{x}` and `{y}`, split at random"),
    };
    let mut md = String::from("# widenet learning-curves\n\n");
    md.push_str(&format!(
        "Data: {data}; pool of {} points, {} test points, label noise sd {}. Kernel: {} of `{}`, ridge {}. Device: {}. Time: {:.1} s (kernels {:.1} s, eigendecomposition of the pool {:.1} s, kernel regression {:.1} s, finite networks {:.1} s).\n\n",
        r.task.pool(),
        r.task.test_y.len(),
        cfg.noise,
        if cfg.get == crate::predict::Get::Ntk { "NTK" } else { "NNGP" },
        cfg.arch,
        cfg.ridge,
        r.dev.info().name,
        rep["timing"]["total_s"].as_f64().unwrap_or(f64::NAN),
        rep["timing"]["kernel_s"].as_f64().unwrap_or(f64::NAN),
        rep["timing"]["eigen_s"].as_f64().unwrap_or(f64::NAN),
        rep["timing"]["kernel_regression_s"].as_f64().unwrap_or(f64::NAN),
        rep["timing"]["finite_s"].as_f64().unwrap_or(f64::NAN),
    ));
    let full = super::LearningCurvesConfig::default();
    md.push_str(&crate::experiments::framing::sizes_noisy(
        "learning-curves",
        &[
            ("draws", cfg.draws, full.draws),
            ("training-set sizes", cfg.n.len(), full.n.len()),
        ],
    ));
    md.push_str(&format!(
        "Prediction: eigenlearning (Simon et al.; Bordelon, Canatar and Pehlevan 2020) from the {} spectrum. Measurement: kernel regression on {} random training sets per n drawn from the pool, tested on the test points (labels with the same noise).\n\n",
        rep["predicted"]["source"].as_str().unwrap_or(""),
        cfg.draws
    ));
    let fit = &rep["fit"];
    let th = &fit["theory"];
    md.push_str("## Exponents of the test MSE in n\n\n| | exponent | ± |\n|---|---|---|\n");
    md.push_str(&format!(
        "| measured (fit to the mean; ± is the standard error over draws) | {} | {} |\n| predicted (fit of the eigenlearning curve; ± from its residuals) | {} | {} |\n| eigenlearning from the pool's spectrum | {} | |\n| theory: -min(target tail exponent, 2 alpha) | {} | {} |\n\n",
        f(&fit["measured_exponent"]),
        f(&fit["measured_exponent_se"]),
        f(&fit["predicted_exponent"]),
        f(&fit["predicted_exponent_se"]),
        f(&fit["pool_predicted_exponent"]),
        f(&th["theory_exponent"]),
        f(&th["theory_exponent_se"]),
    ));
    md.push_str(&format!(
        "Fits over n in [{}, {}]. Spectrum decay lambda_i ~ i^-alpha with alpha = {} ± {}; target tail sum_(j > i) v_j^2 ~ i^-{} ± {} (mode indices in the same range).\n\n",
        fit["n_range"][0], fit["n_range"][1],
        f(&th["spectrum_decay"]["exponent"]), f(&th["spectrum_decay"]["se"]),
        f(&th["target_tail"]["exponent"]), f(&th["target_tail"]["se"]),
    ));
    md.push_str(&verdicts(rep, cfg));
    if let Some(c) = rep["spectrum"]["comparison"].as_object() {
        md.push_str(&format!(
            "Pool spectrum against the exact one, first {} modes: median relative difference {}, largest {}.\n\n",
            c["modes_compared"], f(&c["median_relative_difference"]), f(&c["max_relative_difference"])
        ));
    }
    md.push_str("## Test MSE\n\n| n | measured | sd | predicted | pool prediction | kappa |\n|---|---|---|---|---|---|\n");
    let m = &rep["measured"];
    let (t, sd) = (floats(&m["test_mse"]), floats(&m["test_mse_sd"]));
    let (p, pp, k) = (
        floats(&rep["predicted"]["test_mse"]),
        floats(&rep["predicted_pool"]["test_mse"]),
        floats(&rep["predicted"]["kappa"]),
    );
    for (i, n) in cfg.n.iter().enumerate() {
        md.push_str(&format!(
            "| {n} | {:.4e} | {:.2e} | {:.4e} | {:.4e} | {:.3e} |\n",
            t[i], sd[i], p[i], pp[i], k[i]
        ));
    }
    md.push_str(&format!(
        "\n## Finite networks\n\n{}; {} networks per width, the first {} test points, draw 0's training set.\n\n| width | n | test MSE (mean) | sd | kernel regression, same points |\n|---|---|---|---|---|\n",
        rep["finite_method"].as_str().unwrap_or(""),
        cfg.members,
        cfg.finite_test
    ));
    for w in rep["finite"].as_array().into_iter().flatten() {
        for (i, n) in w["n"].as_array().into_iter().flatten().enumerate() {
            md.push_str(&format!(
                "| {} | {n} | {:.4e} | {:.2e} | {:.4e} |\n",
                w["width"],
                w["test_mse"][i].as_f64().unwrap_or(f64::NAN),
                w["test_mse_sd"][i].as_f64().unwrap_or(f64::NAN),
                w["kernel_test_mse"][i].as_f64().unwrap_or(f64::NAN)
            ));
        }
    }
    md.push_str("\n![learning curves](learning_curves.png)\n\n![spectrum](spectrum.png)\n\n![target weights](target_weights.png)\n\n![learnability](learnability.png)\n\n");
    md.push_str(&format!(
        "Reproduce:\n\n```sh\n{}\n```\n",
        rep["command"].as_str().unwrap_or("")
    ));
    md
}

/// The measured exponent against eigenlearning's and the theory's, and why
/// the pool's own spectrum predicts a steeper curve where it does.
fn verdicts(rep: &Value, cfg: &super::LearningCurvesConfig) -> String {
    let fit = &rep["fit"];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let measured = crate::experiments::Slope {
        slope: num(&fit["measured_exponent"]),
        stderr: num(&fit["measured_exponent_se"]),
        intercept: 0.0,
    };
    let verdict = |v: &Value| crate::experiments::framing::verdict(&measured, num(v));
    let mut md = format!(
        "Measured against eigenlearning's exponent: {}; against the theory's: {} \
         (agreement: within two standard errors, at least 0.05).",
        verdict(&fit["predicted_exponent"]),
        verdict(&fit["theory"]["theory_exponent"]),
    );
    let pool = num(&fit["pool_predicted_exponent"]);
    let exact = rep["spectrum"]["comparison"].is_object();
    let follows_exact = verdict(&fit["predicted_exponent"]) == "agrees";
    if exact && follows_exact && pool < measured.slope - 0.05 {
        let (p, pp) = (
            floats(&rep["predicted"]["test_mse"]),
            floats(&rep["predicted_pool"]["test_mse"]),
        );
        if let (Some(n), Some(a), Some(b)) = (cfg.n.last(), p.last(), pp.last()) {
            md.push_str(&format!(
                " The pool's own spectrum predicts {pool:.3}: a pool of {} points has only {} \
                 modes, so as n nears its size that prediction runs out of tail and falls too fast \
                 (at n = {n}: {b:.3e} against {a:.3e} from the exact spectrum); the measurement \
                 is tested on fresh points and follows the exact spectrum.",
                cfg.pool, cfg.pool
            ));
        }
    }
    md + "\n\n"
}
