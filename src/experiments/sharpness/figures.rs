//! The figures of `widenet sharpness`: sharpness against step with the
//! `2/eta` line of each learning rate and the loss beside it (Cohen et al.
//! 2021, figure 1), the same across widths, and the sharpness at
//! initialization against width.

use super::Run;
use crate::arch::Parameterization;
use crate::error::Result;
use crate::experiments::OutDir;
use crate::experiments::plot::{Series, plot};

/// The runs of one parameterization and width, seed 0 first.
fn of(runs: &[Run], p: Parameterization, width: usize) -> Vec<&Run> {
    runs.iter()
        .filter(|r| r.parameterization == p && r.width == width)
        .collect()
}

/// The distinct learning rates of some runs, in order of first appearance.
pub(super) fn lrs(runs: &[&Run]) -> Vec<f64> {
    let mut v: Vec<f64> = Vec::new();
    for r in runs {
        if !v.contains(&r.lr) {
            v.push(r.lr);
        }
    }
    v
}

fn points(steps: &[usize], vals: &[Option<f64>]) -> Vec<(f64, f64)> {
    steps
        .iter()
        .zip(vals)
        .filter_map(|(t, v)| v.map(|v| (*t as f64, v)))
        .collect()
}

/// Sharpness and loss against step for every learning rate (seed 0) at one
/// width: `sharpness_{p}.svg` and `loss_{p}.svg`.
pub(super) fn trajectories(
    out: &OutDir,
    runs: &[Run],
    p: Parameterization,
    width: usize,
) -> Result<()> {
    let rs = of(runs, p, width);
    let mut sharp = Vec::new();
    let mut loss = Vec::new();
    let last = rs
        .iter()
        .map(|r| r.steps.last().copied().unwrap_or(0))
        .max()
        .unwrap_or(0) as f64;
    for (i, lr) in lrs(&rs).into_iter().enumerate() {
        let Some(r) = rs.iter().find(|r| r.lr == lr && r.seed == 0) else {
            continue;
        };
        let name = format!("eta = {lr:.3}");
        let mut s = Series::line(format!("sharpness, {name}"), points(&r.steps, &r.sharpness))
            .with_color(i);
        if let Some(d) = r.diverged_at {
            s = s.with_missing(vec![d as f64]);
        }
        sharp.push(s);
        sharp.push(
            Series::theory(
                format!("2/eta = {:.2}", 2.0 / lr),
                vec![(0.0, 2.0 / lr), (last, 2.0 / lr)],
            )
            .with_color(i),
        );
        let curve: Vec<(f64, f64)> = r
            .loss_curve
            .iter()
            .enumerate()
            .filter_map(|(t, v)| v.filter(|v| *v > 0.0).map(|v| (t as f64, v)))
            .collect();
        loss.push(Series::line(format!("loss, {name}"), curve).with_color(i));
    }
    plot(
        &out.file(&format!("sharpness_{}.svg", p.name())),
        &format!(
            "Sharpness under full-batch GD against 2/eta, {} width {width}",
            p.name()
        ),
        "step",
        "top Hessian eigenvalue (sharpness)",
        false,
        false,
        &sharp,
    )?;
    plot(
        &out.file(&format!("loss_{}.svg", p.name())),
        &format!("Training loss (MSE), {} width {width}", p.name()),
        "step",
        "training loss",
        false,
        true,
        &loss,
    )
}

/// Sharpness / (2/eta) against step for every width at one learning rate
/// (index `lr_index` of each width's rates, seed 0): `widths_{p}.svg`.
pub(super) fn across_widths(
    out: &OutDir,
    runs: &[Run],
    p: Parameterization,
    widths: &[usize],
    lr_index: usize,
) -> Result<()> {
    let mut series = Vec::new();
    let mut last = 0.0f64;
    let mut eta = f64::NAN;
    for (i, &w) in widths.iter().enumerate() {
        let rs = of(runs, p, w);
        let Some(&lr) = lrs(&rs).get(lr_index) else {
            continue;
        };
        eta = lr;
        let Some(r) = rs.iter().find(|r| r.lr == lr && r.seed == 0) else {
            continue;
        };
        let ratio: Vec<Option<f64>> = r
            .sharpness
            .iter()
            .map(|s| s.map(|s| s * lr / 2.0))
            .collect();
        last = last.max(r.steps.last().copied().unwrap_or(0) as f64);
        let mut s = Series::line(format!("width {w}"), points(&r.steps, &ratio)).with_color(i);
        if let Some(d) = r.diverged_at {
            s = s.with_missing(vec![d as f64]);
        }
        series.push(s);
    }
    series.push(
        Series::theory("2/eta (ratio 1)", vec![(0.0, 1.0), (last, 1.0)]).with_color(widths.len()),
    );
    plot(
        &out.file(&format!("widths_{}.svg", p.name())),
        &format!(
            "Sharpness over 2/eta across widths, {} (eta = {eta:.3})",
            p.name()
        ),
        "step",
        "sharpness / (2/eta)",
        false,
        false,
        &series,
    )
}

/// The mean and standard error over members of the sharpness at step 0.
pub(super) fn initial(runs: &[Run], p: Parameterization, width: usize) -> Option<(f64, f64)> {
    let v: Vec<f64> = of(runs, p, width)
        .iter()
        .filter_map(|r| r.sharpness.first().copied().flatten())
        .collect();
    if v.is_empty() {
        return None;
    }
    let m = crate::stats::mean(&v);
    let se = if v.len() > 1 {
        crate::stats::std(&v) / (v.len() as f64).sqrt()
    } else {
        0.0
    };
    Some((m, se))
}

/// Sharpness at initialization against width, each parameterization with
/// its fitted power law: `initial_vs_width.svg`. Returns the slopes.
pub(super) fn initial_vs_width(
    out: &OutDir,
    runs: &[Run],
    ps: &[Parameterization],
    widths: &[usize],
) -> Result<Vec<Option<f64>>> {
    let mut series = Vec::new();
    let mut slopes = Vec::new();
    for (i, &p) in ps.iter().enumerate() {
        let pts: Vec<(f64, f64, f64)> = widths
            .iter()
            .filter_map(|&w| initial(runs, p, w).map(|(m, se)| (w as f64, m, se)))
            .collect();
        let xs: Vec<f64> = pts.iter().map(|q| q.0).collect();
        let ys: Vec<f64> = pts.iter().map(|q| q.1).collect();
        let fit = crate::stats::fit_loglog(&xs, &ys);
        slopes.push(fit.map(|f| f.0));
        let label = match fit {
            Some((s, _)) => format!("{} (slope {s:.2})", p.name()),
            None => p.name().to_string(),
        };
        series.push(
            Series::measured(label, xs.iter().copied().zip(ys.iter().copied()).collect())
                .with_err(pts.iter().map(|q| q.2).collect())
                .with_color(i),
        );
        if let (Some((s, b)), Some(&x0), Some(&x1)) = (fit, xs.first(), xs.last())
            && x1 > x0
        {
            series.push(Series::power_fit(format!("{} fit", p.name()), s, b, x0, x1).with_color(i));
        }
    }
    plot(
        &out.file("initial_vs_width.svg"),
        "Sharpness at initialization against width (mean over members, standard error)",
        "width",
        "sharpness at step 0",
        true,
        true,
        &series,
    )?;
    Ok(slopes)
}
