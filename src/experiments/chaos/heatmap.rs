//! Heat maps with overlaid curves: the phase diagram of `xi_c` and the
//! trainability map.

use super::figures::{Area, Key, MISSING, colorbar, figure, legend, viridis};
use crate::error::{Error, Result};
use crate::experiments::plot::tick;
use plotters::prelude::*;
use std::path::Path;

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot: {e}"))
}

/// A curve drawn over a heat map.
pub struct Overlay {
    /// Legend text.
    pub name: String,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Dashed (theory).
    pub dashed: bool,
}

/// A heat map: `values[i][j]` at `(x[j], y[i])`, coloured from `lo` to `hi`
/// (of `log10(value)` when `log`); cells without a value grey, `crosses`
/// marked with an x.
pub struct HeatMap<'a> {
    /// Title.
    pub title: &'a str,
    /// x axis label.
    pub x_label: &'a str,
    /// y axis label.
    pub y_label: &'a str,
    /// Column centres.
    pub x: &'a [f64],
    /// Row centres.
    pub y: &'a [f64],
    /// Rows of values.
    pub values: &'a [Vec<Option<f64>>],
    /// Colour scale's label.
    pub scale_label: &'a str,
    /// Colour scale in log10.
    pub log: bool,
    /// What grey cells mean.
    pub missing: &'a str,
    /// Cells `(row, column)` to cross.
    pub crosses: &'a [(usize, usize)],
    /// What a cross means.
    pub cross_label: &'a str,
    /// Curves on top.
    pub overlays: Vec<Overlay>,
    /// Fixed colour range (else the values' range).
    pub range: Option<(f64, f64)>,
}

/// Edges of cells centred on `c` (midpoints; ends mirrored).
fn edges(c: &[f64]) -> Vec<f64> {
    if c.len() == 1 {
        return vec![c[0] - 0.5, c[0] + 0.5];
    }
    let mut e = Vec::with_capacity(c.len() + 1);
    e.push(c[0] - 0.5 * (c[1] - c[0]));
    for w in c.windows(2) {
        e.push(0.5 * (w[0] + w[1]));
    }
    let n = c.len();
    e.push(c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]));
    e
}

/// Draws the heat map to `path` (SVG) and its PNG.
pub fn heatmap(path: &Path, h: &HeatMap<'_>) -> Result<()> {
    figure(path, (960, 600), 250, |data, side| draw(data, side, h))
}

fn draw(data: &Area<'_>, side: &Area<'_>, h: &HeatMap<'_>) -> Result<()> {
    let f = |v: f64| if h.log { v.max(1e-300).log10() } else { v };
    let vals: Vec<f64> = h
        .values
        .iter()
        .flatten()
        .flatten()
        .map(|&v| f(v))
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = h.range.unwrap_or_else(|| {
        let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        }
    });
    let (xe, ye) = (edges(h.x), edges(h.y));
    let (x0, x1) = (xe[0], xe[xe.len() - 1]);
    let (y0, y1) = (ye[0], ye[ye.len() - 1]);
    let mut chart = ChartBuilder::on(data)
        .caption(h.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(h.x_label)
        .y_desc(h.y_label)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let mut cells = Vec::new();
    for (i, row) in h.values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let color = match v.map(f).filter(|v| v.is_finite()) {
                Some(v) => viridis((v - lo) / (hi - lo)),
                None => MISSING,
            };
            cells.push(Rectangle::new(
                [(xe[j], ye[i]), (xe[j + 1], ye[i + 1])],
                color.filled(),
            ));
        }
    }
    chart.draw_series(cells).map_err(err)?;
    let cross = RGBColor(230, 0, 0);
    chart
        .draw_series(h.crosses.iter().map(|&(i, j)| {
            Cross::new((h.x[j], h.y[i]), 4, cross.stroke_width(1))
        }))
        .map_err(err)?;
    let mut keys = Vec::new();
    for o in &h.overlays {
        let pts: Vec<(f64, f64)> = o
            .points
            .iter()
            .cloned()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && p.1 >= y0 && p.1 <= y1)
            .collect();
        if o.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 8, 5, o.color.stroke_width(3)))
                .map_err(err)?;
            keys.push(Key::Dashed(o.name.clone(), o.color));
        } else {
            chart
                .draw_series(LineSeries::new(pts, o.color.stroke_width(3)))
                .map_err(err)?;
            keys.push(Key::Line(o.name.clone(), o.color));
        }
    }
    keys.push(Key::Patch(h.missing.to_string(), MISSING));
    if !h.crosses.is_empty() {
        keys.push(Key::Cross(h.cross_label.to_string(), cross));
    }
    let fmt = |v: f64| {
        if h.log {
            tick(10f64.powf(v))
        } else {
            tick(v)
        }
    };
    colorbar(side, 40, h.scale_label, lo, hi, &fmt)?;
    legend(side, 320, &keys)
}
