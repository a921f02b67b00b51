//! Heat maps with curves drawn over them (phase diagrams, maps over two
//! settings): cells coloured by viridis, cells without a value grey, crossed
//! cells, and the colour bar and legend in the panel beside the data.

use super::render::{err, register_font};
use super::ticks;
use super::{Format, format};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Size of a heat map, in pixels.
const SIZE: (u32, u32) = (1000, 600);
/// Width of the panel of the colour bar and legend.
const PANEL: u32 = 280;
/// Grey of cells without a value.
const MISSING: RGBColor = RGBColor(190, 190, 190);
/// Red of crossed cells.
const CROSS: RGBColor = RGBColor(230, 0, 0);

/// A curve drawn over a heat map.
#[derive(Clone, Debug)]
pub struct Overlay {
    /// Legend text.
    pub name: String,
    /// Points in data coordinates (non-finite ones are left out).
    pub points: Vec<(f64, f64)>,
    /// Its colour, as red, green, blue.
    pub rgb: (u8, u8, u8),
    /// Dashed (a theory's prediction).
    pub dashed: bool,
}

/// A heat map: `values[i][j]` at `(x[j], y[i])`, coloured from the low to
/// the high end of `range` (of `log10(value)` when `log_scale`).
#[derive(Clone, Debug, Default)]
pub struct HeatMap {
    /// Title.
    pub title: String,
    /// x axis name, with units.
    pub x_label: String,
    /// y axis name, with units.
    pub y_label: String,
    /// Column centres, ascending.
    pub x: Vec<f64>,
    /// Row centres, ascending.
    pub y: Vec<f64>,
    /// The y axis in log scale, with a tick at every row (depths, say).
    pub log_y: bool,
    /// Rows of values (`None`: no value, drawn grey).
    pub values: Vec<Vec<Option<f64>>>,
    /// The colour bar's name.
    pub scale_label: String,
    /// Colours by `log10(value)`.
    pub log_scale: bool,
    /// What grey cells mean (legend).
    pub missing: String,
    /// Cells `(row, column)` marked with a cross.
    pub crosses: Vec<(usize, usize)>,
    /// What a cross means (legend).
    pub cross_label: String,
    /// Curves on top.
    pub overlays: Vec<Overlay>,
    /// Colour range in the scale's units (default: the values' range).
    pub range: Option<(f64, f64)>,
}

/// Viridis at `t` in [0, 1] (six stops, linearly interpolated).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 6] = [
        (68.0, 1.0, 84.0),
        (65.0, 68.0, 135.0),
        (42.0, 120.0, 142.0),
        (34.0, 168.0, 132.0),
        (122.0, 209.0, 81.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Edges of cells centred on `c` (midpoints; the ends mirrored).
fn edges(c: &[f64]) -> Vec<f64> {
    match c.len() {
        0 => vec![0.0, 1.0],
        1 => vec![c[0] - 0.5, c[0] + 0.5],
        n => {
            let mut e = Vec::with_capacity(n + 1);
            e.push(c[0] - 0.5 * (c[1] - c[0]));
            e.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
            e.push(c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]));
            e
        }
    }
}

/// Writes the heat map to `path` (its extension replaced by `.svg` and
/// `.png` as [`format()`] says).
pub fn heatmap(path: &Path, h: &HeatMap) -> Result<()> {
    register_font()?;
    let f = format();
    if f != Format::Png {
        let p = path.with_extension("svg");
        let root = SVGBackend::new(&p, SIZE).into_drawing_area();
        draw(h, &root)?;
        root.present()
            .map_err(|e| err(format!("{}: {e}", p.display())))?;
    }
    if f != Format::Svg {
        let p = path.with_extension("png");
        let root = BitMapBackend::new(&p, SIZE).into_drawing_area();
        draw(h, &root)?;
        root.present()
            .map_err(|e| err(format!("{}: {e}", p.display())))?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(h: &HeatMap, root: &DrawingArea<DB, Shift>) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let titled = root.titled(&h.title, ("sans-serif", 20)).map_err(err)?;
    let (data, side) = titled.split_horizontally(SIZE.0 - PANEL);
    let scale = |v: f64| if h.log_scale { v.log10() } else { v };
    let (lo, hi) = h.range.unwrap_or_else(|| {
        let vals = h.values.iter().flatten().flatten().map(|&v| scale(v));
        let (lo, hi) = vals
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        }
    });
    let ty = |v: f64| if h.log_y { v.log10() } else { v };
    let yc: Vec<f64> = h.y.iter().map(|&v| ty(v)).collect();
    let (xe, ye) = (edges(&h.x), edges(&yc));
    let (x0, x1) = (xe[0], xe[xe.len() - 1]);
    let (y0, y1) = (ye[0], ye[ye.len() - 1]);
    let mut chart = ChartBuilder::on(&data)
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc(h.x_label.as_str())
        .y_desc(h.y_label.as_str())
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let mut cells = Vec::new();
    for (i, row) in h.values.iter().enumerate().take(yc.len()) {
        for (j, v) in row.iter().enumerate().take(h.x.len()) {
            let c = match v.map(scale).filter(|v| v.is_finite()) {
                Some(v) => viridis((v - lo) / (hi - lo)),
                None => MISSING,
            };
            cells.push(Rectangle::new(
                [(xe[j], ye[i]), (xe[j + 1], ye[i + 1])],
                c.filled(),
            ));
        }
    }
    chart.draw_series(cells).map_err(err)?;
    chart
        .draw_series(
            h.crosses
                .iter()
                .filter(|&&(i, j)| i < yc.len() && j < h.x.len())
                .map(|&(i, j)| Cross::new((h.x[j], yc[i]), 5, CROSS.stroke_width(2))),
        )
        .map_err(err)?;
    // Ticks: 1-2-5 steps on x (and a linear y), every row on a log y.
    let label = ("sans-serif", 13).into_font().color(&BLACK);
    let inside = |t: &f64, a: f64, b: f64| *t >= a - 1e-9 * (b - a) && *t <= b + 1e-9 * (b - a);
    for t in ticks::linear(x0, x1)
        .ticks
        .iter()
        .filter(|t| inside(t, x0, x1))
    {
        let (px, py) = chart.backend_coord(&(*t, y0));
        root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))
            .map_err(err)?;
        let style = label.clone().pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(ticks::label(*t), (px, py + 8), style))
            .map_err(err)?;
    }
    let yt: Vec<(f64, String)> = if h.log_y {
        h.y.iter().map(|&v| (ty(v), ticks::label(v))).collect()
    } else {
        let a = ticks::linear(y0, y1);
        a.ticks
            .iter()
            .filter(|t| inside(t, y0, y1))
            .map(|&t| (t, ticks::label(t)))
            .collect()
    };
    for (t, text) in yt {
        let (px, py) = chart.backend_coord(&(x0, t));
        root.draw(&PathElement::new(vec![(px - 5, py), (px, py)], BLACK))
            .map_err(err)?;
        let style = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(text, (px - 8, py), style))
            .map_err(err)?;
    }
    for o in &h.overlays {
        let c = RGBColor(o.rgb.0, o.rgb.1, o.rgb.2);
        let pts: Vec<(f64, f64)> = o
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!h.log_y || p.1 > 0.0))
            .map(|&(x, y)| (x, ty(y)))
            .collect();
        for piece in clip_y(&pts, y0, y1) {
            if o.dashed {
                chart
                    .draw_series(DashedLineSeries::new(piece, 9, 5, c.stroke_width(3)))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(piece, c.stroke_width(3)))
                    .map_err(err)?;
            }
        }
    }
    panel(h, &side, lo, hi)
}

/// The pieces of a polyline inside `y0..=y1`, cut where it crosses an edge: a
/// curve that leaves the plot ends at the edge instead of running along it.
fn clip_y(pts: &[(f64, f64)], y0: f64, y1: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for (i, &p) in pts.iter().enumerate() {
        if let Some(&q) = i.checked_sub(1).and_then(|j| pts.get(j)) {
            let mut cuts: Vec<(f64, (f64, f64))> = [y0, y1]
                .iter()
                .filter(|&&e| (q.1 - e) * (p.1 - e) < 0.0)
                .map(|&e| {
                    let t = (e - q.1) / (p.1 - q.1);
                    (t, (q.0 + t * (p.0 - q.0), e))
                })
                .collect();
            cuts.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Outside before a cut: it enters; inside: it leaves.
            for (_, c) in cuts {
                cur.push(c);
                if cur.len() > 1 {
                    pieces.push(std::mem::take(&mut cur));
                }
            }
        }
        if (y0..=y1).contains(&p.1) {
            cur.push(p);
        } else if !cur.is_empty() {
            pieces.push(std::mem::take(&mut cur));
        }
    }
    if cur.len() > 1 {
        pieces.push(cur);
    }
    pieces.retain(|p| p.len() > 1);
    pieces
}

/// The colour bar (labelled ends and middle) and the legend.
fn panel<DB: DrawingBackend>(
    h: &HeatMap,
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
) -> Result<()> {
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    area.draw(&Text::new(h.scale_label.clone(), (10, 30), font.clone()))
        .map_err(err)?;
    let (y0, len) = (56, 200);
    for k in 0..len {
        let t = 1.0 - k as f64 / (len - 1) as f64;
        area.draw(&Rectangle::new(
            [(12, y0 + k), (36, y0 + k + 1)],
            viridis(t).filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(12, y0), (36, y0 + len)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    let value = |v: f64| {
        if h.log_scale {
            ticks::label(10f64.powf(v))
        } else {
            ticks::label(v)
        }
    };
    for (t, v) in [(1.0, hi), (0.5, 0.5 * (lo + hi)), (0.0, lo)] {
        let y = y0 + ((1.0 - t) * (len - 1) as f64) as i32;
        area.draw(&PathElement::new(vec![(36, y), (42, y)], BLACK))
            .map_err(err)?;
        area.draw(&Text::new(value(v), (46, y - 7), font.clone()))
            .map_err(err)?;
    }
    let mut y = y0 + len + 40;
    for o in &h.overlays {
        let c = RGBColor(o.rgb.0, o.rgb.1, o.rgb.2);
        // A pale line would vanish on white: drawn on a dark patch.
        area.draw(&Rectangle::new(
            [(8, y - 8), (44, y + 8)],
            viridis(0.0).filled(),
        ))
        .map_err(err)?;
        if o.dashed {
            for s in 0..3 {
                let a = 10 + 12 * s;
                area.draw(&PathElement::new(
                    vec![(a, y), (a + 7, y)],
                    c.stroke_width(3),
                ))
                .map_err(err)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(10, y), (42, y)], c.stroke_width(3)))
                .map_err(err)?;
        }
        area.draw(&Text::new(o.name.clone(), (52, y - 7), font.clone()))
            .map_err(err)?;
        y += 26;
    }
    area.draw(&Rectangle::new(
        [(14, y - 8), (38, y + 8)],
        MISSING.filled(),
    ))
    .map_err(err)?;
    area.draw(&Text::new(h.missing.clone(), (52, y - 7), font.clone()))
        .map_err(err)?;
    if !h.crosses.is_empty() {
        y += 26;
        area.draw(&Cross::new((26, y), 5, CROSS.stroke_width(2)))
            .map_err(err)?;
        area.draw(&Text::new(h.cross_label.clone(), (52, y - 7), font))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clip_y;

    #[test]
    fn curves_leaving_the_plot_are_cut_at_its_edge() {
        // In, out through the top, back in, across the whole height.
        let pts = [(0.0, 0.5), (1.0, 1.5), (2.0, 0.5), (3.0, -0.5), (4.0, 2.0)];
        let p = clip_y(&pts, 0.0, 1.0);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0], vec![(0.0, 0.5), (0.5, 1.0)]);
        assert_eq!(p[1], vec![(1.5, 1.0), (2.0, 0.5), (2.5, 0.0)]);
        assert_eq!(p[2], vec![(3.2, 0.0), (3.6, 1.0)]);
        // One point: no line; wholly inside: one piece, unchanged; wholly above: nothing.
        assert_eq!(clip_y(&pts[..1], 0.0, 1.0), Vec::<Vec<(f64, f64)>>::new());
        let flat = [(0.0, 0.2), (1.0, 0.8)];
        assert_eq!(clip_y(&flat, 0.0, 1.0), vec![flat.to_vec()]);
        assert!(clip_y(&[(0.0, 2.0), (1.0, 3.0)], 0.0, 1.0).is_empty());
    }
}
