//! SVG plots through plotters, each with a PNG copy: log-log measurements
//! beside their theory line (dashed, in the colour of the data it predicts),
//! curves over training, the legend outside the data, log axes that end on
//! labelled decades.

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
    /// Draw markers as crosses (diverged, missing or never-reached points).
    pub cross: bool,
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
            cross: false,
        }
    }
    /// Points marked with a cross: diverged, missing, or never reached.
    pub fn marked(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            cross: true,
            ..Series::measured(name, points)
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
            cross: false,
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
            cross: false,
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
        // Whole decades, so that both ends carry a labelled tick.
        let (a, b) = (lo.log10().floor(), hi.log10().ceil());
        let b = if b <= a { a + 1.0 } else { b };
        (10f64.powf(a), 10f64.powf(b))
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

/// A plot with optional log axes, written as SVG at `path` and as PNG beside
/// it; the legend sits to the right of the axes.
pub fn plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    log_y: bool,
    series: &[Series],
) -> Result<()> {
    draw_svg(path, title, x_label, y_label, log_x, log_y, series)?;
    super::png::render(path)
}

fn color_of(s: &Series, i: usize) -> RGBColor {
    COLORS[s.color.unwrap_or(i) % COLORS.len()]
}

fn draw_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    log_y: bool,
    series: &[Series],
) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (area, legend) = root.split_horizontally(730);
    let (x0, x1) = range(series, |p| p.0, log_x);
    let (y0, y1) = range(series, |p| p.1, log_y);
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(76);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 16))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let color = color_of(s, i);
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
                if s.cross {
                    chart
                        .draw_series(pts.iter().map(|&p| Cross::new(p, 6, color.stroke_width(2))))
                        .map_err(err)?;
                } else if s.markers {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        .map_err(err)?;
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
                } else if s.theory {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 8, 5, color.stroke_width(2)))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(err)?;
                }
            }
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
    // The legend, outside the axes: one row per named series.
    let font = ("sans-serif", 14).into_font();
    let mut y = 50;
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.name.is_empty())
    {
        let color = color_of(s, i);
        let (x, yc) = (10, y + 7);
        if s.cross {
            legend
                .draw(&Cross::new((x + 12, yc), 6, color.stroke_width(2)))
                .map_err(err)?;
        } else if s.markers {
            legend
                .draw(&Circle::new((x + 12, yc), 4, color.filled()))
                .map_err(err)?;
        } else if s.theory {
            for k in 0..3 {
                legend
                    .draw(&PathElement::new(
                        vec![(x + 8 * k, yc), (x + 8 * k + 5, yc)],
                        color.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
        } else {
            legend
                .draw(&PathElement::new(
                    vec![(x, yc), (x + 24, yc)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
        }
        // Long names wrap onto a second line.
        let mut lines = vec![String::new()];
        for word in s.name.split(' ') {
            let cur = lines.last_mut().map_or(0, |l| l.len());
            if cur > 0 && cur + word.len() > 30 {
                lines.push(String::new());
            }
            if let Some(l) = lines.last_mut() {
                if !l.is_empty() {
                    l.push(' ');
                }
                l.push_str(word);
            }
        }
        for l in &lines {
            legend
                .draw(&Text::new(l.clone(), (x + 32, y), font.clone()))
                .map_err(err)?;
            y += 18;
        }
        y += 6;
    }
    root.present().map_err(err)?;
    Ok(())
}
