//! Drawing one figure on any plotters backend: the data panel on the left
//! (log axes drawn as log10 coordinates with ticks that say the values), the
//! legend panel on the right, never over the data.

use super::ticks::{self, Axis};
use super::{Kind, Series};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// What one figure shows.
pub(super) struct Figure<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
    pub series: &'a [Series],
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Size of every figure, in pixels.
const SIZE: (u32, u32) = (1000, 560);
/// Width of the legend panel.
const LEGEND: u32 = 300;

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot: {e}"))
}

pub(super) fn svg(fig: &Figure<'_>, path: &Path) -> Result<()> {
    register_font()?;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    draw(fig, &root)?;
    root.present()
        .map_err(|e| err(format!("{}: {e}", path.display())))
}

pub(super) fn png(fig: &Figure<'_>, path: &Path) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(fig, &root)?;
    root.present()
        .map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Text is measured (and, on the bitmap backend, drawn) with a font of our
/// own: DejaVu Sans, shipped inside the binary.
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

fn color(s: &Series, i: usize) -> RGBColor {
    COLORS[s.color.unwrap_or(i) % COLORS.len()]
}

/// A point in the axes' coordinates (log10 on a log axis), if it can be drawn.
fn to_axes(p: (f64, f64), log_x: bool, log_y: bool) -> Option<(f64, f64)> {
    let f = |v: f64, log: bool| {
        if log {
            (v > 0.0 && v.is_finite()).then(|| v.log10())
        } else {
            v.is_finite().then_some(v)
        }
    };
    Some((f(p.0, log_x)?, f(p.1, log_y)?))
}

/// The axis of one coordinate over every drawable value (and error bar).
fn axis_of(fig: &Figure<'_>, x: bool) -> Axis {
    let log = if x { fig.log_x } else { fig.log_y };
    let mut vals: Vec<f64> = Vec::new();
    for s in fig.series {
        for (k, p) in s.points.iter().enumerate() {
            let v = if x { p.0 } else { p.1 };
            vals.push(v);
            if let (false, Some(e)) = (x, &s.err) {
                if let Some(d) = e.get(k) {
                    vals.push(v - d);
                    vals.push(v + d);
                }
            }
        }
        if x {
            vals.extend(&s.missing);
        }
    }
    vals.retain(|v| v.is_finite() && (!log || *v > 0.0));
    let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return if log {
            ticks::log(0.1, 10.0, false)
        } else {
            ticks::linear(0.0, 1.0)
        };
    }
    if log {
        // Widths: powers of 2 on the x axis when every measured x is one.
        let measured: Vec<f64> = fig
            .series
            .iter()
            .filter(|s| s.kind == Kind::Markers)
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.0)
                    .chain(s.missing.iter().copied())
            })
            .collect();
        let pow2 = x
            && !measured.is_empty()
            && measured.iter().all(|v| *v > 0.0 && v.log2().fract() == 0.0);
        ticks::log(lo, hi, pow2)
    } else {
        ticks::linear(lo, hi)
    }
}

fn draw<DB: DrawingBackend>(fig: &Figure<'_>, root: &DrawingArea<DB, Shift>) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let titled = root.titled(fig.title, ("sans-serif", 20)).map_err(err)?;
    let (plot_area, legend_area) = titled.split_horizontally(SIZE.0 - LEGEND);
    let (xa, ya) = (axis_of(fig, true), axis_of(fig, false));
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(xa.lo..xa.hi, ya.lo..ya.hi)
        .map_err(err)?;
    // The axes and their names from plotters; the ticks, their labels and
    // the grid drawn here at the positions the axes chose.
    chart
        .configure_mesh()
        .x_desc(fig.x_label)
        .y_desc(fig.y_label)
        .x_labels(0)
        .y_labels(0)
        .disable_mesh()
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let grid = BLACK.mix(0.1);
    let label = ("sans-serif", 13).into_font().color(&BLACK);
    for &t in &xa.ticks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t, ya.lo), (t, ya.hi)],
                grid,
            )))
            .map_err(err)?;
        let (px, py) = chart.backend_coord(&(t, ya.lo));
        root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))
            .map_err(err)?;
        let style = label.clone().pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(ticks::label_at(&xa, t), (px, py + 8), style))
            .map_err(err)?;
    }
    for &t in &ya.ticks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(xa.lo, t), (xa.hi, t)],
                grid,
            )))
            .map_err(err)?;
        let (px, py) = chart.backend_coord(&(xa.lo, t));
        root.draw(&PathElement::new(vec![(px - 5, py), (px, py)], BLACK))
            .map_err(err)?;
        let style = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(ticks::label_at(&ya, t), (px - 8, py), style))
            .map_err(err)?;
    }
    for (i, s) in fig.series.iter().enumerate() {
        let c = color(s, i);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&p| to_axes(p, fig.log_x, fig.log_y))
            .collect();
        match s.kind {
            Kind::Markers => {
                if let Some(e) = &s.err {
                    for (&(x, y), &d) in s.points.iter().zip(e) {
                        let (Some(lo), Some(hi)) = (
                            to_axes((x, y - d), fig.log_x, fig.log_y),
                            to_axes((x, y + d), fig.log_x, fig.log_y),
                        ) else {
                            continue;
                        };
                        chart
                            .draw_series(std::iter::once(ErrorBar::new_vertical(
                                lo.0,
                                lo.1,
                                (lo.1 + hi.1) / 2.0,
                                hi.1,
                                c.stroke_width(1),
                                8,
                            )))
                            .map_err(err)?;
                    }
                }
                let style = if s.hollow {
                    c.stroke_width(2)
                } else {
                    c.filled()
                };
                // Three shapes, so that series that coincide stay apart.
                match i % 3 {
                    0 => chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, style))),
                    1 => chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 6, style))),
                    _ => chart.draw_series(pts.iter().map(|&p| {
                        let (px, py) = (p.0, p.1);
                        EmptyElement::at((px, py)) + Rectangle::new([(-5, -5), (5, 5)], style)
                    })),
                }
                .map_err(err)?;
            }
            Kind::Line | Kind::Fit => {
                let w = if s.kind == Kind::Line { 2 } else { 1 };
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(w)))
                    .map_err(err)?;
            }
            Kind::Theory => {
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        // Missing points: a cross on the bottom axis at their x.
        for &x in &s.missing {
            if let Some((px, _)) = to_axes((x, 1.0), fig.log_x, false) {
                chart
                    .draw_series(std::iter::once(Cross::new(
                        (px, ya.lo),
                        7,
                        c.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
        }
    }
    legend(fig, &legend_area)
}

/// The legend, one entry per named series, in the panel beside the data.
fn legend<DB: DrawingBackend>(fig: &Figure<'_>, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let text = ("sans-serif", 14).into_font().color(&BLACK);
    let mut y = 40;
    for (i, s) in fig.series.iter().enumerate() {
        if s.name.is_empty() {
            continue;
        }
        let c = color(s, i);
        let sample: Vec<(i32, i32)> = vec![(10, y), (40, y)];
        match s.kind {
            Kind::Markers => {
                let style = if s.hollow {
                    c.stroke_width(2)
                } else {
                    c.filled()
                };
                match i % 3 {
                    0 => area.draw(&Circle::new((25, y), 5, style)).map_err(err)?,
                    1 => area
                        .draw(&TriangleMarker::new((25, y), 6, style))
                        .map_err(err)?,
                    _ => area
                        .draw(&Rectangle::new([(20, y - 5), (30, y + 5)], style))
                        .map_err(err)?,
                }
            }
            Kind::Theory => area
                .draw(&PathElement::new(vec![(10, y), (20, y)], c.stroke_width(2)))
                .and_then(|_| {
                    area.draw(&PathElement::new(vec![(28, y), (40, y)], c.stroke_width(2)))
                })
                .map_err(err)?,
            Kind::Line => area
                .draw(&PathElement::new(sample, c.stroke_width(2)))
                .map_err(err)?,
            Kind::Fit => area
                .draw(&PathElement::new(sample, c.stroke_width(1)))
                .map_err(err)?,
        }
        for (k, line) in wrap(&s.name, 34).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (48, y - 7 + 17 * k as i32),
                text.clone(),
            ))
            .map_err(err)?;
        }
        y += 17 * wrap(&s.name, 34).len() as i32 + 8;
        if !s.missing.is_empty() {
            area.draw(&Cross::new((25, y), 6, c.stroke_width(2)))
                .map_err(err)?;
            area.draw(&Text::new(
                format!("diverged or missing ({})", s.missing.len()),
                (48, y - 7),
                text.clone(),
            ))
            .map_err(err)?;
            y += 25;
        }
    }
    Ok(())
}

/// Splits a legend text into lines of at most `width` characters.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split_whitespace() {
        let last = lines.last_mut().expect("lines is never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}
