//! The figures of `widenet chaos`: heat maps (the phase diagram of `xi_c`,
//! the trainability map) and curves against depth, each with its legend and
//! colour bar in a panel beside the data, written as SVG and PNG.

use crate::error::{Error, Result};
use crate::experiments::plot::{Series, tick};
use plotters::coord::Shift;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};
use std::path::Path;

/// The drawing area of a figure.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot: {e}"))
}

/// The palette of the curves (matplotlib's tab10).
pub const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Viridis at `t` in [0, 1] (a few stops, linearly interpolated).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 6] = [
        (68.0, 1.0, 84.0),
        (65.0, 68.0, 135.0),
        (42.0, 120.0, 142.0),
        (34.0, 168.0, 132.0),
        (122.0, 209.0, 81.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Grey of cells without a value.
pub const MISSING: RGBColor = RGBColor(190, 190, 190);

/// One entry of a legend panel.
pub enum Key {
    /// A solid line.
    Line(String, RGBColor),
    /// A dashed line (theory).
    Dashed(String, RGBColor),
    /// A filled marker.
    Marker(String, RGBColor),
    /// A square patch.
    Patch(String, RGBColor),
    /// A cross (diverged or missing points).
    Cross(String, RGBColor),
}

/// Draws `keys` top-down in a panel (the area right of the data).
pub fn legend(area: &Area<'_>, top: i32, keys: &[Key]) -> Result<()> {
    let font = ("sans-serif", 15).into_font();
    for (i, k) in keys.iter().enumerate() {
        let y = top + 24 * i as i32;
        let (x0, x1) = (8, 36);
        let text = match k {
            Key::Line(t, c) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))
                    .map_err(err)?;
                t
            }
            Key::Dashed(t, c) => {
                for s in 0..3 {
                    let a = x0 + 10 * s;
                    area.draw(&PathElement::new(vec![(a, y), (a + 6, y)], c.stroke_width(2)))
                        .map_err(err)?;
                }
                t
            }
            Key::Marker(t, c) => {
                area.draw(&Circle::new(((x0 + x1) / 2, y), 4, c.filled()))
                    .map_err(err)?;
                t
            }
            Key::Patch(t, c) => {
                area.draw(&Rectangle::new([(x0 + 6, y - 7), (x1 - 6, y + 7)], c.filled()))
                    .map_err(err)?;
                t
            }
            Key::Cross(t, c) => {
                area.draw(&Cross::new(((x0 + x1) / 2, y), 5, c.stroke_width(2)))
                    .map_err(err)?;
                t
            }
        };
        area.draw(&Text::new(text.clone(), (x1 + 8, y - 8), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// A vertical colour bar from `lo` to `hi` (labelled ends and middle) under `label`.
pub fn colorbar(
    area: &Area<'_>,
    top: i32,
    label: &str,
    lo: f64,
    hi: f64,
    fmt: &dyn Fn(f64) -> String,
) -> Result<()> {
    let font = ("sans-serif", 15).into_font();
    area.draw(&Text::new(label.to_string(), (8, top), font.clone()))
        .map_err(err)?;
    let (y0, h) = (top + 26, 200);
    for k in 0..h {
        let t = 1.0 - k as f64 / (h - 1) as f64;
        area.draw(&Rectangle::new(
            [(10, y0 + k), (34, y0 + k + 1)],
            viridis(t).filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new([(10, y0), (34, y0 + h)], BLACK.stroke_width(1)))
        .map_err(err)?;
    for (t, v) in [(1.0, hi), (0.5, 0.5 * (lo + hi)), (0.0, lo)] {
        let y = y0 + ((1.0 - t) * (h - 1) as f64) as i32;
        area.draw(&PathElement::new(vec![(34, y), (40, y)], BLACK.stroke_width(1)))
            .map_err(err)?;
        area.draw(&Text::new(fmt(v), (44, y - 8), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// Draws a figure of `size` into an SVG string, with the data area (left)
/// and the legend panel (right, `panel` pixels) handed to `draw`; writes
/// `path` (atomically) and the PNG beside it.
pub fn figure(
    path: &Path,
    size: (u32, u32),
    panel: u32,
    draw: impl FnOnce(&Area<'_>, &Area<'_>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (data, side) = root.split_horizontally(size.0 - panel);
        draw(&data, &side)?;
        root.present().map_err(err)?;
    }
    crate::atomic::write_atomic(path, svg.as_bytes())?;
    png(path)
}

/// A line and marker chart with theory curves dashed, error bars, and the
/// legend beside the data; the y axis in log scale when `log_y` (decades as ticks).
#[allow(clippy::too_many_arguments)]
pub fn curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    (log_x, log_y): (bool, bool),
    series: &[Series],
    extra_keys: Vec<Key>,
) -> Result<()> {
    figure(path, (980, 540), 250, |data, side| {
        curves_on(data, side, title, x_label, y_label, (log_x, log_y), series, extra_keys)
    })
}

#[allow(clippy::too_many_arguments)]
fn curves_on(
    data: &Area<'_>,
    side: &Area<'_>,
    title: &str,
    x_label: &str,
    y_label: &str,
    (log_x, log_y): (bool, bool),
    series: &[Series],
    extra_keys: Vec<Key>,
) -> Result<()> {
    let vals = |f: &dyn Fn(&(f64, f64)) -> f64, log: bool| {
        let v: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(f))
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
    };
    let (x0, x1) = vals(&|p| p.0, log_x);
    let (y0, y1) = vals(&|p| p.1, log_y);
    let mut b = ChartBuilder::on(data);
    b.caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(78);
    let pad = ((x1 - x0) * 0.03).max(1e-9);
    let xr = if log_x {
        (x0 / 1.2)..(x1 * 1.2)
    } else {
        (x0 - pad)..(x1 + pad)
    };
    let mut keys: Vec<Key> = Vec::new();
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .light_line_style(WHITE.mix(0.0))
                .label_style(("sans-serif", 15))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[s.color.unwrap_or(i) % COLORS.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .cloned()
                    .filter(|p| {
                        p.0.is_finite()
                            && p.1.is_finite()
                            && (!log_y || p.1 > 0.0)
                            && (!log_x || p.0 > 0.0)
                    })
                    .collect();
                if s.markers {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(err)?;
                    if let Some(e) = &s.err {
                        for (&(x, y), &d) in s.points.iter().zip(e) {
                            let lo = if log_y { (y - d).max(y * 1e-3) } else { y - d };
                            if y.is_finite() && d.is_finite() && d > 0.0 {
                                chart
                                    .draw_series(LineSeries::new(
                                        vec![(x, lo), (x, y + d)],
                                        color.stroke_width(1),
                                    ))
                                    .map_err(err)?;
                            }
                        }
                    }
                    keys.push(Key::Marker(s.name.clone(), color));
                } else if s.theory {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, color.stroke_width(2)))
                        .map_err(err)?;
                    keys.push(Key::Dashed(s.name.clone(), color));
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(err)?;
                    keys.push(Key::Line(s.name.clone(), color));
                }
            }
        }};
    }
    let (l0, l1) = (
        y0.max(1e-300).log10().floor(),
        y1.max(1e-300).log10().ceil().max(y0.max(1e-300).log10().floor() + 1.0),
    );
    let yl = 10f64.powf(l0)..10f64.powf(l1);
    let pad = ((y1 - y0) * 0.06).max(1e-9);
    let yr = (y0 - pad)..(y1 + pad);
    match (log_x, log_y) {
        (false, true) => body!(b.build_cartesian_2d(xr, yl.log_scale()).map_err(err)?),
        (false, false) => body!(b.build_cartesian_2d(xr, yr).map_err(err)?),
        (true, true) => body!(
            b.build_cartesian_2d(xr.log_scale(), yl.log_scale())
                .map_err(err)?
        ),
        (true, false) => body!(b.build_cartesian_2d(xr.log_scale(), yr).map_err(err)?),
    }
    keys.retain(|k| match k {
        Key::Line(t, _) | Key::Dashed(t, _) | Key::Marker(t, _) => !t.is_empty(),
        _ => true,
    });
    keys.extend(extra_keys);
    legend(side, 60, &keys)
}

/// Writes `NAME.png` beside `NAME.svg` (rendered with the system's fonts).
pub fn png(svg: &Path) -> Result<()> {
    let text = std::fs::read_to_string(svg).map_err(|e| Error::file(svg, e))?;
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(&text, &opt).map_err(|e| Error::file(svg, e))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| Error::file(svg, "empty image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
    let bytes = pixmap
        .encode_png()
        .map_err(|e| Error::file(svg, format!("PNG: {e}")))?;
    crate::atomic::write_atomic(&svg.with_extension("png"), &bytes)
}
