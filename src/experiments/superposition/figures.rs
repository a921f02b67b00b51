//! The figures, as the paper draws them: `W^T W` and `b` beside the feature
//! norms coloured by superposition, one panel per sparsity; dimensions per
//! feature and feature dimensionalities against `1 / (1 - S)` with the sticky
//! fractions; and the two-feature phase diagram with the theory's boundaries.

use super::config::SuperpositionConfig;
use super::geometry::gram;
use super::phase::{self, Phase};
use super::report::{PhasePoint, Run, over_seeds};
use super::sweep::Trained;
use crate::error::{Error, Result};
use crate::experiments::plot::{Series, plot};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The fractions at which the dimensions per feature stick (Elhage et al.
/// 2022, "Feature dimensionality"), with the geometry behind each.
pub const STICKY: [(f64, &str); 5] = [
    (1.0, "1: no superposition"),
    (0.75, "3/4: tetrahedron"),
    (2.0 / 3.0, "2/3: triangle"),
    (0.5, "1/2: antipodal pair"),
    (0.4, "2/5: pentagon"),
];

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot: {e}"))
}

/// Something drawable on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Writes a figure as SVG and PNG at `path` (its extension replaced).
fn write(path: &Path, size: (u32, u32), fig: &impl Figure) -> Result<()> {
    let svg = path.with_extension("svg");
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    fig.draw(&root)?;
    root.present().map_err(err)?;
    register_font()?;
    let png = path.with_extension("png");
    let root = BitMapBackend::new(&png, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    fig.draw(&root)?;
    root.present().map_err(err)
}

/// The bitmap backend draws text with a font of its own: DejaVu Sans, shipped
/// inside the binary.
fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(err("the embedded font could not be loaded"))
    }
}

/// Red (negative) through white to blue (positive), for values in [-1, 1].
fn diverging(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (end, a) = if t >= 0.0 {
        ((33.0, 102.0, 172.0), t)
    } else {
        ((178.0, 24.0, 43.0), -t)
    };
    let mix = |e: f64| (255.0 + (e - 255.0) * a).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Black (no superposition) through red to yellow (superposition of 1 or more).
fn heat(v: f64) -> RGBColor {
    let stops = [
        (20.0, 20.0, 40.0),
        (190.0, 50.0, 90.0),
        (250.0, 220.0, 60.0),
    ];
    let t = v.clamp(0.0, 1.0) * 2.0;
    let (i, f) = if t >= 1.0 { (1, t - 1.0) } else { (0, t) };
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    size: u32,
) -> Result<()> {
    area.draw(&Text::new(
        s.to_string(),
        at,
        ("sans-serif", size).into_font(),
    ))
    .map_err(err)
}

fn rect<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    color: RGBColor,
) -> Result<()> {
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))
        .map_err(err)
}

/// One panel: `W^T W` (`n x n`), `b` beside it, and `||W_i||` as bars
/// coloured by superposition, with feature `i` on row `i`.
fn weights_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    origin: (i32, i32),
    cell: i32,
    run: &Run,
    w: &[f32],
    hidden: usize,
) -> Result<()> {
    let n = run.bias.len();
    let g = gram(w, hidden, n);
    let (x0, y0) = origin;
    let title = format!("S = {}", run.sparsity);
    text(area, &title, (x0, y0), 14)?;
    let sub = format!(
        "{} represented, {:.2} dims/feature",
        run.geometry.features_represented, run.geometry.dims_per_feature
    );
    text(area, &sub, (x0, y0 + 16), 11)?;
    let top = y0 + 34;
    let side = cell * n as i32;
    for i in 0..n {
        for j in 0..n {
            let at = (x0 + j as i32 * cell, top + i as i32 * cell);
            rect(
                area,
                at,
                (at.0 + cell, at.1 + cell),
                diverging(g[i * n + j]),
            )?;
        }
        let bx = x0 + side + 4;
        let at = (bx, top + i as i32 * cell);
        rect(
            area,
            at,
            (bx + cell, at.1 + cell),
            diverging(f64::from(run.bias[i])),
        )?;
        // Bars: 60 px for a norm of 1.
        let nx = bx + cell + 8;
        let len = (run.geometry.norms[i] * 60.0).min(80.0).round() as i32;
        let c = heat(run.geometry.superposition[i]);
        rect(area, (nx, at.1 + 1), (nx + len.max(1), at.1 + cell - 1), c)?;
    }
    let frame = ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(1);
    area.draw(&Rectangle::new([(x0, top), (x0 + side, top + side)], frame))
        .map_err(err)?;
    let nx = x0 + side + 4 + cell + 8;
    // The norm 1 mark.
    area.draw(&PathElement::new(
        vec![(nx + 60, top - 3), (nx + 60, top + side + 3)],
        BLACK.mix(0.5),
    ))
    .map_err(err)?;
    text(area, "W^T W", (x0, top + side + 4), 11)?;
    text(area, "b", (x0 + side + 4, top + side + 4), 11)?;
    text(area, "||W_i||", (nx, top + side + 4), 11)
}

/// A horizontal colour scale with its end labels.
fn scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    label: &str,
    ends: (&str, &str),
    color: impl Fn(f64) -> RGBColor,
    lo: f64,
) -> Result<()> {
    text(area, label, (x, y), 12)?;
    for k in 0..100 {
        let v = lo + (1.0 - lo) * k as f64 / 99.0;
        rect(area, (x + 2 * k, y + 16), (x + 2 * k + 2, y + 28), color(v))?;
    }
    text(area, ends.0, (x, y + 31), 11)?;
    text(area, ends.1, (x + 190, y + 31), 11)
}

/// Panels of one model, one per sparsity.
struct Panels<'a> {
    title: String,
    panels: Vec<(&'a Run, &'a [f32])>,
    hidden: usize,
    cell: i32,
    size: (i32, i32),
    rows: i32,
}

impl Figure for Panels<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        text(area, &self.title, (20, 10), 16)?;
        let (pw, ph) = self.size;
        for (k, (run, w)) in self.panels.iter().enumerate() {
            let (c, r) = ((k % 5) as i32, (k / 5) as i32);
            weights_panel(
                area,
                (20 + c * pw, 40 + r * ph),
                self.cell,
                run,
                w,
                self.hidden,
            )?;
        }
        let y = 40 + self.rows * ph + 10;
        scale(area, (20, y), "W^T W and b", ("-1", "1"), diverging, -1.0)?;
        scale(
            area,
            (300, y),
            "bar length: ||W_i||, colour: superposition sum_j!=i (W^_i . W_j)^2",
            ("0", ">= 1"),
            heat,
            0.0,
        )
    }
}

/// `weights_{model}`: a panel per sparsity, seed 0 of the first importance decay.
pub fn weights(path: &Path, cfg: &SuperpositionConfig, runs: &[Run], t: &Trained) -> Result<()> {
    let (n, m) = (cfg.features, cfg.hidden);
    let decay = cfg.importance_decay[0];
    // The runs of a group follow its members' order.
    let mine: Vec<&Run> = runs.iter().filter(|r| r.model == t.group.name).collect();
    let panels: Vec<(&Run, &[f32])> = t
        .group
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.seed == 0 && p.importance_decay == Some(decay))
        .filter_map(|(e, _)| Some((*mine.get(e)?, t.w.get(e * m * n..(e + 1) * m * n)?)))
        .collect();
    let cell = (160 / n as i32).clamp(3, 12);
    let side = cell * n as i32;
    let (pw, ph) = (side + cell + 110, side + 62);
    let cols = panels.len().clamp(1, 5) as i32;
    let rows = panels.len().div_ceil(5).max(1) as i32;
    let fig = Panels {
        title: format!(
            "{} model, {n} features in {m} dimensions, importance {decay}^i: W^T W, b and feature norms by sparsity (seed 0)",
            t.group.name
        ),
        panels,
        hidden: m,
        cell,
        size: (pw, ph),
        rows,
    };
    write(
        path,
        ((cols * pw + 40).max(760) as u32, (rows * ph + 130) as u32),
        &fig,
    )
}

/// `dims_per_feature` and `feature_dimensionality`: against `1 / (1 - S)`,
/// with the sticky fractions.
pub fn dimensionality(out: &Path, cfg: &SuperpositionConfig, runs: &[Run]) -> Result<()> {
    let x = |s: f64| 1.0 / (1.0 - s);
    let (x0, x1) = (
        x(cfg.sparsity[0]).min(1.0),
        x(*cfg.sparsity.last().unwrap_or(&0.0)),
    );
    let sticky = |series: &mut Vec<Series>| {
        for (k, (v, name)) in STICKY.iter().enumerate() {
            series.push(
                Series::theory(*name, vec![(x0, *v), (x1.max(x0 * 10.0), *v)]).with_color(3 + k),
            );
        }
    };
    let mut series = Vec::new();
    for (k, model) in cfg.models.iter().enumerate() {
        for &decay in &cfg.importance_decay {
            let name = model.name();
            let stats: Vec<(f64, f64, f64)> = cfg
                .sparsity
                .iter()
                .map(|&s| {
                    let (mean, sd) =
                        over_seeds(runs, name, s, decay, |r| r.geometry.dims_per_feature);
                    (x(s), mean, sd)
                })
                .collect();
            series.push(
                Series::measured(
                    format!("{name}, importance {decay}^i (mean and sd over seeds)"),
                    stats.iter().map(|p| (p.0, p.1)).collect(),
                )
                .with_err(stats.iter().map(|p| p.2).collect())
                .with_color(k),
            );
        }
    }
    sticky(&mut series);
    plot(
        &out.join("dims_per_feature.svg"),
        &format!(
            "Dimensions per feature m / ||W||_F^2 ({} features, {} dimensions)",
            cfg.features, cfg.hidden
        ),
        "1 / (1 - S) (log scale)",
        "dimensions per feature",
        true,
        false,
        &series,
    )?;
    let mut series = Vec::new();
    let relu: Vec<&Run> = runs.iter().filter(|r| r.model == "relu").collect();
    series.push(
        Series::measured(
            "each feature's dimensionality D_i (relu, all seeds)",
            relu.iter()
                .flat_map(|r| {
                    r.geometry
                        .dimensionality
                        .iter()
                        .map(|d| (x(r.sparsity), *d))
                })
                .collect(),
        )
        .with_color(0),
    );
    let decay = cfg.importance_decay[0];
    series.push(
        Series::line(
            format!("dimensions per feature (relu, importance {decay}^i, mean)"),
            cfg.sparsity
                .iter()
                .map(|&s| {
                    (
                        x(s),
                        over_seeds(runs, "relu", s, decay, |r| r.geometry.dims_per_feature).0,
                    )
                })
                .collect(),
        )
        .with_color(1),
    );
    sticky(&mut series);
    plot(
        &out.join("feature_dimensionality.svg"),
        "Feature dimensionality D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2",
        "1 / (1 - S) (log scale)",
        "dimensionality",
        true,
        false,
        &series,
    )
}

fn phase_color(p: Phase) -> RGBColor {
    match p {
        Phase::NotRepresented => RGBColor(31, 119, 180),
        Phase::Dedicated => RGBColor(44, 160, 44),
        Phase::Superposition => RGBColor(214, 39, 40),
        Phase::Other => RGBColor(120, 120, 120),
    }
}

/// `phase_diagram`: measured phases on the theory's regions and boundaries.
pub fn phase_diagram(path: &Path, points: &[PhasePoint]) -> Result<()> {
    write(path, (1000, 640), &PhaseFigure(points))
}

struct PhaseFigure<'a>(&'a [PhasePoint]);

impl Figure for PhaseFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let points = self.0;
        let (left, right) = root.split_horizontally(680);
        let mut chart = ChartBuilder::on(&left)
            .caption("Two features in one dimension: measured phase (points) and theory (regions, dashed boundaries)", ("sans-serif", 15))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (0.1f64..10.0)
                    .log_scale()
                    .with_key_points(vec![0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]),
                (0.01f64..1.0)
                    .log_scale()
                    .with_key_points(vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("importance of feature 2 relative to feature 1 (log scale)")
            .y_desc("feature density 1 - S (log scale)")
            .x_label_formatter(&|v| crate::experiments::plot::ticks::label(*v))
            .y_label_formatter(&|v| crate::experiments::plot::ticks::label(*v))
            .disable_mesh()
            .draw()
            .map_err(err)?;
        // Theory regions, tinted.
        let k = 80;
        let lin = |lo: f64, hi: f64, i: usize| lo * (hi / lo).powf(i as f64 / k as f64);
        for i in 0..k {
            for j in 0..k {
                let (r0, r1) = (lin(0.1, 10.0, i), lin(0.1, 10.0, i + 1));
                let (p0, p1) = (lin(0.01, 1.0, j), lin(0.01, 1.0, j + 1));
                let c = phase_color(phase::theory((r0 * r1).sqrt(), (p0 * p1).sqrt())).mix(0.18);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(r0, p0), (r1, p1)],
                        c.filled(),
                    )))
                    .map_err(err)?;
            }
        }
        // Boundaries, dashed.
        let curve: Vec<(f64, f64)> = (0..=200)
            .map(|i| {
                let r = lin(0.1, 10.0, 0) * 100f64.powf(i as f64 / 200.0);
                (r, phase::superposition_boundary(r))
            })
            .collect();
        let dash = BLACK.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(curve, 6, 4, dash))
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(1.0, 4.0 / 7.0), (1.0, 1.0)],
                6,
                4,
                dash,
            ))
            .map_err(err)?;
        for p in points {
            let c = phase_color(p.measured);
            chart
                .draw_series(std::iter::once(Circle::new(
                    (p.relative_importance, p.density),
                    6,
                    c.filled(),
                )))
                .map_err(err)?;
            if p.measured != p.theory {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (p.relative_importance, p.density),
                        9,
                        BLACK.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
        }
        // The legend, in its own panel.
        let mut y = 60;
        for ph in [
            Phase::NotRepresented,
            Phase::Dedicated,
            Phase::Superposition,
            Phase::Other,
        ] {
            right
                .draw(&Circle::new((16, y + 6), 6, phase_color(ph).filled()))
                .map_err(err)?;
            text(&right, ph.label(), (30, y), 12)?;
            y += 26;
        }
        right
            .draw(&Circle::new((16, y + 6), 9, BLACK.stroke_width(2)))
            .map_err(err)?;
        text(&right, "measured phase differs from theory", (30, y), 12)?;
        y += 26;
        right
            .draw(&PathElement::new(
                vec![(6, y + 6), (28, y + 6)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
        text(&right, "theoretical boundary (dashed)", (34, y), 12)?;
        y += 26;
        text(&right, "tinted regions: the theory's phase", (6, y), 12)
    }
}
