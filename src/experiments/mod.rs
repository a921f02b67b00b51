//! The experiments users run widenet for: finite networks against their
//! infinite-width limits (`compare`), lazy against rich training (`drift`),
//! learning-rate transfer across widths (`mutransfer`) and deep linear
//! dynamics (`deep-linear`). Each writes an output folder with `report.json`
//! (every number, the configuration, the device), `report.md` and SVG plots.

pub mod compare;
pub mod data;
pub mod deep_linear;
pub mod drift;
pub mod mutransfer;
pub mod plot;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where an experiment writes: `report.json`, `report.md` and SVG plots.
pub struct OutDir {
    pub path: PathBuf,
}

impl OutDir {
    /// Creates the folder (default `runs/NAME-YYYYmmdd-HHMMSS`).
    pub fn create(dir: Option<&Path>, name: &str) -> Result<Self> {
        let path = match dir {
            Some(p) => p.to_path_buf(),
            None => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                PathBuf::from("runs").join(format!("{name}-{secs}"))
            }
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::file(&path, format!("cannot create the output folder: {e}")))?;
        Ok(OutDir { path })
    }

    /// A file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `report.json` (atomically).
    pub fn write_json(&self, value: &serde_json::Value) -> Result<()> {
        let text =
            serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
        crate::fsutil::write_atomic(&self.file("report.json"), text.as_bytes())
    }

    /// Writes `report.md` (atomically).
    pub fn write_md(&self, text: &str) -> Result<()> {
        crate::fsutil::write_atomic(&self.file("report.md"), text.as_bytes())
    }
}

/// Least-squares slope and intercept of `log y` against `log x` (pairs with a
/// non-positive or non-finite value are left out).
pub fn fit_loglog(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0 && a.is_finite() && b.is_finite())
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// A fitted power law with its uncertainty across seeds.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Slope {
    /// Slope of the fit to the mean over seeds.
    pub slope: f64,
    /// Standard error of the per-seed slopes.
    pub stderr: f64,
    /// Intercept (log scale) of the fit to the mean.
    pub intercept: f64,
}

/// Slope of `values[seed][i]` against `x[i]`: the fit to the seed mean, with the
/// standard error of the slopes fitted seed by seed.
pub fn seed_slope(x: &[f64], values: &[Vec<f64>]) -> Option<Slope> {
    let mean: Vec<f64> = (0..x.len())
        .map(|i| values.iter().map(|v| v[i]).sum::<f64>() / values.len() as f64)
        .collect();
    let (slope, intercept) = fit_loglog(x, &mean)?;
    let per: Vec<f64> = values
        .iter()
        .filter_map(|v| fit_loglog(x, v).map(|f| f.0))
        .collect();
    let stderr = if per.len() > 1 {
        let m = per.iter().sum::<f64>() / per.len() as f64;
        (per.iter().map(|s| (s - m).powi(2)).sum::<f64>()
            / (per.len() - 1) as f64
            / per.len() as f64)
            .sqrt()
    } else {
        f64::NAN
    };
    Some(Slope {
        slope,
        stderr,
        intercept,
    })
}

/// A progress bar on stderr, hidden when `quiet`.
pub fn progress(quiet: bool, total: u64, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// Mean of a slice.
pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Standard deviation of a slice.
pub(crate) fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
}
