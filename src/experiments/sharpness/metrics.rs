//! What a sharpness trajectory is summarized by: the step where it first
//! reaches the stability threshold `2/eta`, the median ratio to the
//! threshold over the last half of training, and the slope of progressive
//! sharpening before the threshold is reached.

/// The first measured step whose sharpness is at least `reach * threshold`.
pub fn reached_step(
    steps: &[usize],
    sharpness: &[f64],
    threshold: f64,
    reach: f64,
) -> Option<usize> {
    steps
        .iter()
        .zip(sharpness)
        .find(|(_, s)| s.is_finite() && **s >= reach * threshold)
        .map(|(t, _)| *t)
}

/// The median of `sharpness / threshold` over the measurements after step
/// `total / 2` (`None` when none of them is finite).
pub fn late_ratio(steps: &[usize], sharpness: &[f64], threshold: f64, total: usize) -> Option<f64> {
    let v: Vec<f64> = steps
        .iter()
        .zip(sharpness)
        .filter(|(t, s)| 2 * **t > total && s.is_finite())
        .map(|(_, s)| s / threshold)
        .collect();
    (!v.is_empty()).then(|| crate::stats::median(v))
}

/// A least-squares line `y = slope * x + intercept`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    /// Change of sharpness per step.
    pub slope: f64,
    /// Sharpness at step 0 on the line.
    pub intercept: f64,
    /// The last step the line was fitted over.
    pub until: usize,
}

/// The progressive-sharpening line: sharpness against step from the start
/// until the threshold is first reached (that measurement included), or over
/// the whole run when it never is; `None` with fewer than three finite points.
pub fn sharpening(steps: &[usize], sharpness: &[f64], reached: Option<usize>) -> Option<Line> {
    let pts: Vec<(f64, f64)> = steps
        .iter()
        .zip(sharpness)
        .filter(|(t, s)| s.is_finite() && reached.is_none_or(|r| **t <= r))
        .map(|(t, s)| (*t as f64, *s))
        .collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some(Line {
        slope,
        intercept: my - slope * mx,
        until: pts.last().map_or(0, |p| p.0 as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trajectory_that_climbs_and_hovers() {
        let steps: Vec<usize> = (0..=10).map(|i| 10 * i).collect();
        // Rises 1 per 10 steps from 2 to 5, then hovers at 5 and 5.5 (2/eta = 5).
        let s = [2.0, 3.0, 4.0, 5.0, 5.5, 5.0, 5.5, 5.0, 5.5, 5.0, 5.5];
        assert_eq!(reached_step(&steps, &s, 5.0, 1.0), Some(30));
        assert_eq!(reached_step(&steps, &s, 5.0, 1.2), None);
        let r = late_ratio(&steps, &s, 5.0, 100).unwrap();
        // Steps 60..100: 5.5, 5, 5.5, 5, 5.5: median 5.5.
        assert!((r - 1.1).abs() < 1e-12, "{r}");
        let l = sharpening(&steps, &s, Some(30)).unwrap();
        assert!((l.slope - 0.1).abs() < 1e-12 && (l.intercept - 2.0).abs() < 1e-12);
        assert_eq!(l.until, 30);
        assert!(sharpening(&steps, &s, Some(10)).is_none());
        let nan = [f64::NAN; 11];
        assert_eq!(late_ratio(&steps, &nan, 5.0, 100), None);
    }
}
