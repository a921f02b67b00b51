//! Figures through plotters, as SVG and PNG: measurements with error bars,
//! fitted lines and theory curves dashed in the colour of the data they
//! predict, missing or diverged points marked, the legend in a panel of its
//! own beside the data, and axes that end on labelled ticks (powers of 10, or
//! of 2 for widths, on log axes).

pub mod heatmap;
mod render;
pub mod ticks;

pub use heatmap::{HeatMap, Overlay, heatmap};

use crate::error::Result;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Markers (measurements), with error bars if given.
    Markers,
    /// A solid line (curves over training).
    Line,
    /// A dashed line (a theory's prediction).
    Theory,
    /// A thin solid line through measurements (a fit).
    Fit,
}

/// One series of a plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text (an empty name leaves the series out of the legend).
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub kind: Kind,
    /// Error bars (half-widths), for markers.
    pub err: Option<Vec<f64>>,
    /// Palette colour (default: the series' position).
    pub color: Option<usize>,
    /// Markers drawn hollow (where series coincide).
    pub hollow: bool,
    /// x of points that are missing (diverged runs), marked at the bottom.
    pub missing: Vec<f64>,
}

impl Series {
    fn new(name: impl Into<String>, points: Vec<(f64, f64)>, kind: Kind) -> Self {
        Series {
            name: name.into(),
            points,
            kind,
            err: None,
            color: None,
            hollow: false,
            missing: Vec::new(),
        }
    }

    /// Measured points (markers).
    pub fn measured(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series::new(name, points, Kind::Markers)
    }

    /// A solid line.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series::new(name, points, Kind::Line)
    }

    /// A theory curve (dashed).
    pub fn theory(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series::new(name, points, Kind::Theory)
    }

    /// A fitted line `y = exp(intercept) x^slope` over `[x0, x1]` (log-log fit).
    pub fn power_fit(
        name: impl Into<String>,
        slope: f64,
        intercept: f64,
        x0: f64,
        x1: f64,
    ) -> Self {
        let pts = (0..=32)
            .map(|i| {
                let x = x0 * (x1 / x0).powf(i as f64 / 32.0);
                (x, (intercept + slope * x.ln()).exp())
            })
            .collect();
        Series::new(name, pts, Kind::Fit)
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

    /// Hollow markers.
    pub fn hollow(mut self) -> Self {
        self.hollow = true;
        self
    }

    /// Marks missing points (diverged runs) at these x.
    pub fn with_missing(mut self, xs: Vec<f64>) -> Self {
        self.missing = xs;
        self
    }
}

/// A measured power law in one palette colour: markers (with error bars when
/// given) labelled with the fitted slope, the fitted line (thin, solid) and
/// the theory's power `theory.0` (dashed, labelled `theory.1`) drawn densely
/// through the geometric mean of the measurements.
pub fn scaling(
    name: &str,
    points: &[(f64, f64)],
    err: Option<Vec<f64>>,
    fit: Option<crate::experiments::Slope>,
    theory: (f64, &str),
    color: usize,
) -> Vec<Series> {
    let label = match fit {
        Some(f) if f.stderr.is_finite() => {
            format!("{name} (slope {:.2} ± {:.2})", f.slope, f.stderr)
        }
        Some(f) => format!("{name} (slope {:.2})", f.slope),
        None => name.to_string(),
    };
    let mut m = Series::measured(label, points.to_vec()).with_color(color);
    if let Some(e) = err {
        m = m.with_err(e);
    }
    let mut out = vec![m];
    let pos: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
        .collect();
    if pos.len() < 2 {
        return out;
    }
    let (x0, x1) = (pos[0].0, pos[pos.len() - 1].0);
    if let Some(f) = fit {
        out.push(Series::power_fit("", f.slope, f.intercept, x0, x1).with_color(color));
    }
    let p = theory.0;
    let c = pos.iter().map(|(x, y)| y.ln() - p * x.ln()).sum::<f64>() / pos.len() as f64;
    out.push(Series::power_fit(theory.1, p, c, x0, x1).with_color(color));
    if let Some(t) = out.last_mut() {
        t.kind = Kind::Theory;
    }
    out
}

/// Which files a figure is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// SVG only.
    Svg,
    /// PNG only.
    Png,
    /// Both (the default).
    Both,
}

impl Format {
    /// Parses `svg`, `png` or `both`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "svg" => Ok(Format::Svg),
            "png" => Ok(Format::Png),
            "both" => Ok(Format::Both),
            _ => Err(crate::Error::invalid(format!(
                "format must be svg, png or both, got '{s}'"
            ))),
        }
    }
}

static FORMAT: AtomicU8 = AtomicU8::new(2);

/// Sets the format of every figure written from now on in this process.
pub fn set_format(f: Format) {
    FORMAT.store(f as u8, Ordering::Relaxed);
}

/// The format figures are written in.
pub fn format() -> Format {
    match FORMAT.load(Ordering::Relaxed) {
        0 => Format::Svg,
        1 => Format::Png,
        _ => Format::Both,
    }
}

/// `markdown` with every local figure link (`](name.svg)` or `](name.png)`)
/// pointing at a file the current [`format()`] writes: the PNG unless only
/// SVG is written.
pub fn image_links(markdown: &str) -> String {
    links_for(markdown, format())
}

fn links_for(markdown: &str, format: Format) -> String {
    let ext = if format == Format::Svg { "svg" } else { "png" };
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(i) = rest.find("](") {
        let (head, tail) = rest.split_at(i + 2);
        out.push_str(head);
        let end = tail.find(')').unwrap_or(tail.len());
        let target = &tail[..end];
        match target.rsplit_once('.') {
            Some((stem, "svg" | "png")) if !target.contains("://") => {
                out.push_str(stem);
                out.push('.');
                out.push_str(ext);
            }
            _ => out.push_str(target),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// An axis label that says when its axis is logarithmic (unless it already
/// does: "log2", "log scale", ...).
fn log_label(label: &str, log: bool) -> String {
    let says = ["log scale", "log2", "log10"];
    if log && !says.iter().any(|w| label.to_ascii_lowercase().contains(w)) {
        format!("{label} (log scale)")
    } else {
        label.to_string()
    }
}

/// A plot with optional log axes, written to `path` (its extension, if any,
/// replaced by `.svg` and `.png` as [`format()`] says).
pub fn plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    log_y: bool,
    series: &[Series],
) -> Result<()> {
    let (x_label, y_label) = (log_label(x_label, log_x), log_label(y_label, log_y));
    let fig = render::Figure {
        title,
        x_label: &x_label,
        y_label: &y_label,
        log_x,
        log_y,
        series,
    };
    let f = format();
    if f != Format::Png {
        render::svg(&fig, &path.with_extension("svg"))?;
    }
    if f != Format::Svg {
        render::png(&fig, &path.with_extension("png"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_axes_say_so_in_their_labels() {
        assert_eq!(super::log_label("width", true), "width (log scale)");
        assert_eq!(super::log_label("width (log2)", true), "width (log2)");
        assert_eq!(super::log_label("step", false), "step");
    }

    #[test]
    fn report_links_point_at_the_written_figures() {
        let md = "![a](a.svg) text ](b.png) [c](https://x.org/c.svg) ![d](d.txt)";
        let svg = super::links_for(md, super::Format::Svg);
        let both = super::links_for(md, super::Format::Both);
        assert_eq!(
            svg,
            "![a](a.svg) text ](b.svg) [c](https://x.org/c.svg) ![d](d.txt)"
        );
        assert_eq!(
            both,
            "![a](a.png) text ](b.png) [c](https://x.org/c.svg) ![d](d.txt)"
        );
    }

    use super::*;

    #[test]
    fn a_figure_is_written_as_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("widenet-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let xs: [f64; 6] = [64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0];
        let meas: Vec<(f64, f64)> = xs.iter().map(|&x| (x, 2.0 / x.sqrt())).collect();
        let series = [
            Series::measured(
                "NTK distance at initialization (slope -0.50 ± 0.01)",
                meas.clone(),
            )
            .with_err(vec![0.01; 6])
            .with_missing(vec![4096.0]),
            Series::theory("theory for the NTK: width^-1/2", meas.clone()).with_color(0),
            Series::measured("NNGP", meas.iter().map(|&(x, y)| (x, y * 1.02)).collect()).hollow(),
            Series::power_fit("fit", -0.5, 2f64.ln(), 64.0, 2048.0).with_color(1),
        ];
        let path = dir.join("fig.svg");
        plot(
            &path,
            "A figure",
            "width",
            "relative Frobenius distance",
            true,
            true,
            &series,
        )
        .unwrap();
        for ext in ["svg", "png"] {
            let len = std::fs::metadata(path.with_extension(ext)).unwrap().len();
            assert!(len > 5_000, "{ext}: {len} bytes");
        }
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        // Labelled ends of the log axes: 64 and 4096 (the missing point).
        let texts: Vec<&str> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .map(str::trim)
            .collect();
        for label in ["64", "4096", "2048"] {
            assert!(texts.contains(&label), "{label} missing from {texts:?}");
        }
        eprintln!("figure in {}", dir.display());
    }
}
