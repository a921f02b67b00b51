//! The figures and report.md of `widenet chaos`, drawn from report.json.

use super::ChaosConfig;
use crate::activation::Activation;
use crate::error::Result;
use crate::experiments::plot::{HeatMap, Overlay, Series, heatmap, plot};
use crate::experiments::{OutDir, floats};
use serde_json::Value;

fn grid_rows(v: &Value) -> Vec<Vec<Option<f64>>> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    r.as_array()
                        .map(|c| c.iter().map(Value::as_f64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fmt(v: &Value) -> String {
    v.as_f64().map_or("null".into(), |x| format!("{x:.4}"))
}

/// Every figure, as SVG and PNG.
#[allow(clippy::too_many_arguments)]
pub fn all(
    out: &OutDir,
    cfg: &ChaosConfig,
    act: Activation,
    r: &Value,
    th: &[(Vec<f64>, Vec<f64>)],
    layers: &[f64],
    crosses: &[(usize, usize)],
) -> Result<()> {
    let g = &r["grid"];
    let (sw2, sb2) = (floats(&g["sw2"]), floats(&g["sb2"]));
    let crit: Vec<(f64, f64)> = floats(&g["critical"]["sb2"])
        .into_iter()
        .zip(floats(&g["critical"]["sw2"]))
        .map(|(b, w)| (w, b))
        .filter(|p| p.0.is_finite())
        .collect();
    let title = format!("{act}: correlation depth scale ξ_c at infinite width");
    heatmap(
        &out.file("phase_xi_c.svg"),
        &HeatMap {
            title,
            x_label: "σ_w² (weight variance × fan-in)".into(),
            y_label: "σ_b² (bias variance)".into(),
            x: sw2,
            y: sb2,
            values: grid_rows(&g["xi_c"]),
            scale_label: "ξ_c (layers, log scale)".into(),
            log_scale: true,
            missing: "no finite q* or ξ_c".into(),
            overlays: vec![Overlay {
                name: "critical line χ₁ = 1".into(),
                points: crit,
                rgb: (255, 255, 255),
                dashed: false,
            }],
            ..HeatMap::default()
        },
    )?;

    // q_l and c_l against depth at the widest width, theory dashed.
    let p = &r["propagation"];
    let widths = p["widths"].as_array().cloned().unwrap_or_default();
    let widest = widths
        .iter()
        .max_by_key(|w| w["width"].as_u64().unwrap_or(0))
        .cloned()
        .unwrap_or(Value::Null);
    let wname = widest["width"].as_u64().unwrap_or(0);
    let pts = p["points"].as_array().cloned().unwrap_or_default();
    for (key, name, ylab, file) in [
        ("q", "q_l", "q_l (pre-activation variance)", "q_depth.svg"),
        (
            "c",
            "c_l",
            "c_l (correlation of the two inputs)",
            "c_depth.svg",
        ),
    ] {
        let mut series = Vec::new();
        for (i, pt) in pts.iter().enumerate() {
            let label = format!(
                "{} σ_w² = {:.3}",
                pt["phase"].as_str().unwrap_or(""),
                pt["sw2"].as_f64().unwrap_or(f64::NAN)
            );
            let m = &widest["points"][i];
            let mean = floats(&m[format!("{key}_mean")]);
            let err = floats(&m[format!("{key}_err")]);
            series.push(
                Series::measured(
                    format!("{label}, width {wname}"),
                    layers.iter().copied().zip(mean).collect(),
                )
                .with_err(err)
                .with_color(i),
            );
            let t = if key == "q" { &th[i].0 } else { &th[i].1 };
            let tname = if i == 0 {
                "dashed: the infinite-width map"
            } else {
                ""
            };
            series.push(
                Series::theory(
                    tname,
                    layers.iter().copied().zip(t.iter().copied()).collect(),
                )
                .with_color(i),
            );
        }
        plot(
            &out.file(file),
            &format!(
                "{act}, σ_b² = {}: {name} through depth, {} seeds",
                cfg.prop_sb2, cfg.seeds
            ),
            "layer l",
            ylab,
            false,
            key == "q" && cfg.act()? == Activation::RELU,
            &series,
        )?;
    }

    // The gap to the maps against width, with the fitted power laws.
    let wx: Vec<f64> = cfg.widths.iter().map(|&w| w as f64).collect();
    let mut series = Vec::new();
    for (i, (key, name)) in [
        ("gap_q", "q_l: rms relative gap"),
        ("gap_c", "c_l: rms gap"),
    ]
    .iter()
    .enumerate()
    {
        let y = floats(&p[*key]);
        series.push(
            Series::measured(*name, wx.iter().copied().zip(y).collect())
                .with_err(floats(&p[format!("{key}_err")]))
                .with_color(i),
        );
        if let Some(s) = p[format!("{key}_slope")].as_object() {
            let (a, b) = (
                s["slope"].as_f64().unwrap_or(f64::NAN),
                s["intercept"].as_f64().unwrap_or(f64::NAN),
            );
            let se = s["stderr"].as_f64().unwrap_or(f64::NAN);
            let (w0, w1) = (wx[0], wx[wx.len() - 1]);
            series.push(
                Series::power_fit(format!("fit: slope {a:.2} ± {se:.2}"), a, b, w0, w1)
                    .with_color(i),
            );
        }
    }
    if wx.len() > 1 {
        plot(
            &out.file("gap_width.svg"),
            &format!(
                "{act}: finite networks against the maps, depth {}",
                cfg.prop_depth
            ),
            "width (neurons per layer, log scale)",
            "gap, averaged over layers (log scale)",
            true,
            true,
            &series,
        )?;
    }

    // Gradient norms against chi_1^(L - l).
    let gp = r["gradients"]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let depth = cfg.prop_depth;
    let mut series = Vec::new();
    for (i, (pt, gpt)) in pts.iter().zip(&gp).enumerate() {
        let ratio = floats(&gpt["ratio"]);
        let le = floats(&gpt["log_err"]);
        let err: Vec<f64> = ratio
            .iter()
            .zip(&le)
            .map(|(r, e)| r * (e.exp() - 1.0))
            .collect();
        series.push(
            Series::measured(
                format!(
                    "{} σ_w² = {:.3}, fit χ₁ = {}",
                    pt["phase"].as_str().unwrap_or(""),
                    pt["sw2"].as_f64().unwrap_or(f64::NAN),
                    fmt(&gpt["chi1_fit"])
                ),
                layers.iter().copied().zip(ratio).collect(),
            )
            .with_err(err)
            .with_color(i),
        );
        if let Some(chi) = gpt["chi1_theory"].as_f64() {
            let t: Vec<(f64, f64)> = layers
                .iter()
                .map(|&l| (l, chi.powf(depth as f64 - l)))
                .collect();
            series.push(Series::theory(format!("χ₁^(L-l), χ₁ = {chi:.4}"), t).with_color(i));
        }
    }
    plot(
        &out.file("gradients.svg"),
        &format!(
            "{act}: gradient reaching layer l, width {}, at q* from layer 1",
            r["gradients"]["width"]
        ),
        "layer l",
        "|dL/dz_l|² / |dL/dz_L|² (log scale)",
        false,
        true,
        &series,
    )?;

    // Trainability with 6 xi_c.
    let t = &r["trainability"];
    let tsw2 = floats(&t["sw2"]);
    let depths: Vec<f64> = cfg.depths.iter().map(|&d| d as f64).collect();
    let six: Vec<(f64, f64)> = tsw2
        .iter()
        .zip(t["six_xi_c"].as_array().cloned().unwrap_or_default())
        .map(|(&w, x)| (w, x.as_f64().unwrap_or(f64::INFINITY)))
        .collect();
    let title = format!(
        "{act}, σ_b² = {}: training accuracy after {} SGD steps",
        cfg.train_sb2, cfg.steps
    );
    heatmap(
        &out.file("trainability.svg"),
        &HeatMap {
            title,
            x_label: "σ_w² (weight variance × fan-in)".into(),
            y_label: "depth (hidden layers, log scale)".into(),
            x: tsw2,
            y: depths,
            log_y: true,
            values: grid_rows(&t["accuracy"]),
            scale_label: "training accuracy".into(),
            missing: "every network diverged".into(),
            crosses: crosses.to_vec(),
            cross_label: "a network diverged".into(),
            overlays: vec![Overlay {
                name: "6 ξ_c (theory)".into(),
                points: six,
                rgb: (230, 30, 30),
                dashed: true,
            }],
            range: Some((0.5, 1.0)),
            ..HeatMap::default()
        },
    )
}

/// A fitted gap slope (`{slope, stderr}`) against the theory's -1/2.
fn half(fit: &Value) -> String {
    let s = crate::experiments::Slope {
        slope: fit["slope"].as_f64().unwrap_or(f64::NAN),
        stderr: fit["stderr"].as_f64().unwrap_or(f64::NAN),
        intercept: 0.0,
    };
    crate::experiments::framing::verdict(&s, -0.5)
}

/// report.md: what was run, the numbers, the figures, the command.
pub fn markdown(out: &OutDir, cfg: &ChaosConfig, act: Activation, r: &Value) -> String {
    let p = &r["propagation"];
    let t = &r["trainability"];
    let mut s = format!(
        "# Edge of chaos: {act}\n\n\
         Ran the infinite-width signal-propagation theory of {act} on a {} x {} grid of \
         σ_w² in [{}, {}] and σ_b² in [{}, {}] (Gauss-Hermite degree {} where there is no closed form), \
         finite MLPs of depth {} at widths {:?} ({} seeds) against the iterated maps, and a \
         trainability map of {} x {} MLPs of width {} trained for {} SGD steps (lr {}, batch {}) on \
         {} points of {} features in {} classes ({}). Device: {}. Time: {:.1} s (grid {:.2} s, critical line {:.2} s).\n\n",
        cfg.sb2.n,
        cfg.sw2.n,
        cfg.sw2.lo,
        cfg.sw2.hi,
        cfg.sb2.lo,
        cfg.sb2.hi,
        cfg.degree,
        cfg.prop_depth,
        cfg.widths,
        cfg.seeds,
        cfg.depths.len(),
        cfg.train_sw2.n,
        cfg.train_width,
        cfg.steps,
        cfg.lr,
        cfg.batch,
        r["data"]["n"],
        r["data"]["d"],
        r["data"]["classes"],
        "a tanh teacher's sign, or the user's data",
        r["device"].as_str().unwrap_or("?"),
        r["seconds"].as_f64().unwrap_or(f64::NAN),
        r["theory_seconds"]["grid"].as_f64().unwrap_or(f64::NAN),
        r["theory_seconds"]["critical"].as_f64().unwrap_or(f64::NAN),
    );
    let full = ChaosConfig::default();
    s += &crate::experiments::framing::sizes_noisy(
        "chaos",
        &[
            ("seeds", cfg.seeds, full.seeds),
            (
                "trainability cells",
                cfg.depths.len() * cfg.train_sw2.n,
                full.depths.len() * full.train_sw2.n,
            ),
            ("SGD steps", cfg.steps, full.steps),
        ],
    );
    s += "## Phase diagram\n\n![xi_c](phase_xi_c.png)\n\nCritical line (σ_w² where χ₁ = 1, |χ₁ - 1| < 1e-9 after f64 secant steps): ";
    let cb = floats(&r["critical"]["sb2"]);
    let cw = r["critical"]["sw2"].as_array().cloned().unwrap_or_default();
    let n = cb.len();
    for i in [0, n / 4, n / 2, 3 * n / 4, n.saturating_sub(1)] {
        if i < n {
            s += &format!("σ_b² {:.3} → {}; ", cb[i], fmt(&cw[i]));
        }
    }
    s += "\n\n## Signal propagation\n\n![q](q_depth.png)\n![c](c_depth.png)\n\n| point | σ_w² | χ₁ | ξ_q | ξ_c | q* | c* |\n|---|---|---|---|---|---|---|\n";
    for pt in p["points"].as_array().cloned().unwrap_or_default() {
        let th = &pt["theory"];
        s += &format!(
            "| {} | {:.4} | {} | {} | {} | {} | {} |\n",
            pt["phase"].as_str().unwrap_or(""),
            pt["sw2"].as_f64().unwrap_or(f64::NAN),
            fmt(&th["chi1"]),
            fmt(&th["xi_q"]),
            fmt(&th["xi_c"]),
            fmt(&th["q_star"]),
            fmt(&th["c_star"])
        );
    }
    s += "\nGap between the finite networks and the maps (rms over layers, mean over points and seeds):\n\n| width | q_l (relative) | c_l |\n|---|---|---|\n";
    for (i, w) in cfg.widths.iter().enumerate() {
        s += &format!(
            "| {w} | {} | {} |\n",
            fmt(&p["gap_q"][i]),
            fmt(&p["gap_c"][i])
        );
    }
    s += &format!(
        "\nFitted slopes against width (theory -1/2 for Monte Carlo fluctuations): q {} ± {} ({}), c {} ± {} ({}).\n\n![gap](gap_width.png)\n\n",
        fmt(&p["gap_q_slope"]["slope"]),
        fmt(&p["gap_q_slope"]["stderr"]),
        half(&p["gap_q_slope"]),
        fmt(&p["gap_c_slope"]["slope"]),
        fmt(&p["gap_c_slope"]["stderr"]),
        half(&p["gap_c_slope"]),
    );
    s += "## Gradients\n\n![gradients](gradients.png)\n\n| point | χ₁ theory | χ₁ fitted to the gradient norms |\n|---|---|---|\n";
    for (pt, g) in p["points"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .zip(
            r["gradients"]["points"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    {
        s += &format!(
            "| {} σ_w² {:.4} | {} | {} |\n",
            pt["phase"].as_str().unwrap_or(""),
            pt["sw2"].as_f64().unwrap_or(f64::NAN),
            fmt(&g["chi1_theory"]),
            fmt(&g["chi1_fit"])
        );
    }
    s += &format!(
        "\n## Trainability\n\n![trainability](trainability.png)\n\nA cell is trainable when its training accuracy reaches {}. \
         Beyond 6 ξ_c: {} of {} cells trainable (share {}); within: {} of {} (share {}).\n\n",
        cfg.threshold,
        t["beyond_6xi_c"]["trainable"],
        t["beyond_6xi_c"]["cells"],
        fmt(&t["beyond_6xi_c"]["share_trainable"]),
        t["within_6xi_c"]["trainable"],
        t["within_6xi_c"]["cells"],
        fmt(&t["within_6xi_c"]["share_trainable"]),
    );
    s += &format!(
        "## Reproduce\n\n```\nwidenet chaos --config {}/report.json --out {}\n```\n",
        out.path.display(),
        out.path.display()
    );
    s
}
