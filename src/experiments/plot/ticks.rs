//! Axis ticks that read well: 1-2-5 steps on linear axes, powers of 10 (or
//! of 2, where the data are powers of 2) on log axes, and an axis range that
//! ends on ticks, so that both ends carry a label.

/// Ticks and the axis range they span, in the axis's own coordinates (log10
/// of the values on a log axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Tick positions, ascending.
    pub ticks: Vec<f64>,
    /// The range drawn.
    pub lo: f64,
    /// The range drawn.
    pub hi: f64,
    /// Positions are log10 of the values.
    pub log: bool,
}

/// A short tick label: 3 significant digits, scientific when very large or small.
pub fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = format!("{:.2}", v / 10f64.powi(e));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The label of a tick at position `p` of an axis.
pub fn label_at(axis: &Axis, p: f64) -> String {
    if axis.log {
        label(10f64.powf(p))
    } else {
        label(p)
    }
}

/// Linear ticks over `[lo, hi]`: a 1-2-5 step giving 4 to 8 ticks, and the
/// range widened to the ticks around it.
pub fn linear(lo: f64, hi: f64) -> Axis {
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else if lo == hi {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    } else {
        (hi, lo)
    };
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| (hi - lo) / s <= 7.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let n = ((last - first) / step).round() as usize;
    let ticks = (0..=n)
        .map(|i| clean(first + i as f64 * step, step))
        .collect();
    Axis {
        ticks,
        lo: first,
        hi: last,
        log: false,
    }
}

/// Rounds away the float noise of `k * step`.
fn clean(v: f64, step: f64) -> f64 {
    let r = (v / step).round() * step;
    if r.abs() < step * 1e-9 { 0.0 } else { r }
}

/// Log ticks over the positive values `[lo, hi]`: powers of 2 where `pow2`
/// (widths), else 1, 2 and 5 times powers of 10; the axis ends on the ticks
/// just around the data, and at most 9 ticks are labelled (the ends, then
/// decades or every other power of 2).
pub fn log(lo: f64, hi: f64, pow2: bool) -> Axis {
    let (lo, hi) = (lo.max(f64::MIN_POSITIVE), hi.max(lo * 1.0001));
    // Candidates with a rank: 0 for decades (or every power of 2), 1 for the rest.
    let candidates: Vec<(f64, u8)> = if pow2 {
        let (a, b) = (lo.log2().floor() as i32, hi.log2().ceil() as i32);
        (a..=b).map(|k| (2f64.powi(k), 0)).collect()
    } else {
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (a..=b)
            .flat_map(|k| [(1.0, 0u8), (2.0, 1), (5.0, 1)].map(|(m, r)| (m * 10f64.powi(k), r)))
            .collect()
    };
    let start = candidates
        .iter()
        .rposition(|&(t, _)| t <= lo * (1.0 + 1e-9))
        .unwrap_or(0);
    let end = candidates
        .iter()
        .position(|&(t, _)| t >= hi * (1.0 - 1e-9))
        .unwrap_or(candidates.len() - 1)
        .max(start);
    let span = &candidates[start..=end];
    // Interior ticks: all if few, else decades, else every k-th.
    let interior: Vec<f64> = if span.len() <= 9 {
        span.iter().map(|c| c.0).collect()
    } else {
        let major: Vec<f64> = span.iter().filter(|c| c.1 == 0).map(|c| c.0).collect();
        let every = major.len().div_ceil(7).max(1);
        major.iter().step_by(every).copied().collect()
    };
    let mut ticks: Vec<f64> = vec![span[0].0];
    ticks.extend(
        interior
            .into_iter()
            .filter(|&t| t > span[0].0 && t < span[span.len() - 1].0),
    );
    ticks.push(span[span.len() - 1].0);
    ticks.dedup();
    // Keep neighbours of the ends from crowding them (less than a third of
    // the typical spacing apart in log space).
    let logs: Vec<f64> = ticks.iter().map(|t| t.log10()).collect();
    let typical = (logs[logs.len() - 1] - logs[0]) / (logs.len().max(2) - 1) as f64;
    let mut kept: Vec<f64> = Vec::new();
    for (i, &v) in logs.iter().enumerate() {
        let last = i == logs.len() - 1;
        if let Some(&prev) = kept.last() {
            if v - prev < typical / 3.0 && !last {
                continue;
            }
            if last && v - prev < typical / 3.0 && kept.len() > 1 {
                kept.pop();
            }
        }
        kept.push(v);
    }
    Axis {
        lo: kept[0],
        hi: kept[kept.len() - 1],
        ticks: kept,
        log: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_labelled_ticks() {
        let a = linear(0.013, 0.87);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert!(a.ticks.len() >= 4 && a.ticks.len() <= 8, "{a:?}");
        let w = log(64.0, 2048.0, true);
        assert_eq!(w.ticks.len(), 6, "{w:?}");
        assert_eq!(label_at(&w, w.lo), "64");
        assert_eq!(label_at(&w, w.hi), "2048");
        let d = log(3e-4, 0.2, false);
        assert_eq!(label_at(&d, d.lo), "2e-4");
        assert_eq!(label_at(&d, d.hi), "0.2");
        assert!(d.ticks.len() <= 9);
        let many = log(1.0, 1e30, false);
        assert!(many.ticks.len() <= 9, "{many:?}");
    }
}
