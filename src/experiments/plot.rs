//! SVG plots through plotters: log-log measurements beside their theory line,
//! and curves over training.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// One series of a plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Draw markers (measurements) or a line (theory, curves).
    pub markers: bool,
    /// Error bars (half-widths), for markers.
    pub err: Option<Vec<f64>>,
    /// Dashed-looking thin line (theory).
    pub theory: bool,
    /// Color index (default: the series' position).
    pub color: Option<usize>,
}

impl Series {
    /// Measured points (markers).
    pub fn measured(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            markers: true,
            err: None,
            theory: false,
            color: None,
        }
    }
    /// A solid line.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            markers: false,
            err: None,
            theory: false,
            color: None,
        }
    }
    /// A theory curve (dashed).
    pub fn theory(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            markers: false,
            err: None,
            theory: true,
            color: None,
        }
    }
    /// Uses palette colour `c`.
    pub fn with_color(mut self, c: usize) -> Self {
        self.color = Some(c);
        self
    }
    /// Error bars (half-widths), one per point.
    pub fn with_err(mut self, err: Vec<f64>) -> Self {
        self.err = Some(err);
        self
    }
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

fn range(series: &[Series], f: impl Fn(&(f64, f64)) -> f64, log: bool) -> (f64, f64) {
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(&f))
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.08).max(1e-12);
        (lo - pad, hi + pad)
    }
}

/// A short tick label: 3 significant digits, scientific when very large or small.
pub fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot: {e}"))
}

/// A plot with optional log axes.
pub fn plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    log_y: bool,
    series: &[Series],
) -> Result<()> {
    let root = SVGBackend::new(path, (760, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1) = range(series, |p| p.0, log_x);
    let (y0, y1) = range(series, |p| p.1, log_y);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .light_line_style(WHITE.mix(0.0))
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
                            && (!log_x || p.0 > 0.0)
                            && (!log_y || p.1 > 0.0)
                    })
                    .collect();
                if s.markers {
                    let drawn = chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        .map_err(err)?;
                    if !s.name.is_empty() {
                        drawn
                            .label(s.name.clone())
                            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
                    }
                    if let Some(e) = &s.err {
                        for (&(x, y), &d) in s.points.iter().zip(e) {
                            let (lo, hi) = (y - d, y + d);
                            if y.is_finite() && d.is_finite() && (!log_y || lo > 0.0) {
                                chart
                                    .draw_series(LineSeries::new(
                                        vec![(x, lo), (x, hi)],
                                        color.stroke_width(1),
                                    ))
                                    .map_err(err)?;
                            }
                        }
                    }
                } else {
                    let style = if s.theory {
                        color.stroke_width(1)
                    } else {
                        color.stroke_width(2)
                    };
                    let drawn = chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(err)?;
                    if !s.name.is_empty() {
                        drawn.label(s.name.clone()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], style)
                        });
                    }
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    match (log_x, log_y) {
        (true, true) => draw!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(err)?
        ),
        (true, false) => draw!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(err)?
        ),
        (false, true) => draw!(
            builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(err)?
        ),
        (false, false) => draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
    }
    root.present().map_err(err)?;
    Ok(())
}
