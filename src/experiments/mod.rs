//! The experiments users run widenet for: finite networks against their
//! infinite-width limits (`compare`), lazy against rich training (`drift`),
//! learning-rate transfer across widths (`mutransfer`), deep linear
//! dynamics (`deep-linear`), the edge of stability (`sharpness`), learning
//! curves against the kernel's eigenstructure (`learning-curves`), the
//! fitting of random labels (`random-labels`), the edge of chaos (`chaos`)
//! and toy models of superposition (`superposition`). Each writes an output
//! folder with `report.json`
//! (every number, the configuration, the device), `report.md` and SVG plots.

pub mod chaos;
pub mod compare;
pub mod data;
pub mod deep_linear;
pub mod drift;
pub mod framing;
pub mod learning_curves;
pub mod mutransfer;
pub mod plot;
pub mod random_labels;
pub mod shard;
pub mod sharpness;
pub mod sphere;
pub mod superposition;
pub mod task;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// `YYYY-MM-DDTHH-MM-SS` (UTC) of a Unix time: a folder name that sorts by
/// time and reads as a date (no `:`, which some file systems refuse).
pub fn timestamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Where an experiment writes: `report.json`, `report.md` and SVG plots.
pub struct OutDir {
    /// The folder.
    pub path: PathBuf,
}

impl OutDir {
    /// Creates the folder (default `runs/NAME-YYYY-MM-DDTHH-MM-SS`, UTC).
    pub fn create(dir: Option<&Path>, name: &str) -> Result<Self> {
        let path = match dir {
            Some(p) => p.to_path_buf(),
            None => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                PathBuf::from("runs").join(format!("{name}-{}", timestamp(secs)))
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
        crate::atomic::write_atomic(&self.file("report.json"), text.as_bytes())
    }

    /// Writes `report.md` (atomically), its figure links pointing at the
    /// files the figure format writes ([`plot::image_links`]).
    pub fn write_md(&self, text: &str) -> Result<()> {
        let text = plot::image_links(text);
        crate::atomic::write_atomic(&self.file("report.md"), text.as_bytes())
    }
}

pub use crate::stats::fit_loglog;

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
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(total)
    } else {
        // A log or a pipe: a plain line per update, at most one a second.
        indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(Lines), 1),
        )
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// Progress for stderr that is not a terminal: every drawn line on a line of
/// its own, cursor movements ignored.
#[derive(Debug)]
struct Lines;

impl indicatif::TermLike for Lines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        if !s.trim().is_empty() {
            eprintln!("{}", s.trim_end());
        }
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.write_line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) use crate::stats::mean;

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the user asked to stop (Ctrl-C); long loops check it between points.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Asks the running experiment to stop, as Ctrl-C does.
pub fn request_interrupt() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Clears a stop request, so that a process that outlives an interrupted
/// experiment (a Python session) can run the next one.
pub fn clear_interrupt() {
    INTERRUPTED.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Finished points of a sweep, saved as they complete in `OUT/points/`, so
/// that an interrupted run resumes without recomputing them.
///
/// Each sweep asks [`Checkpoint::mine`] for every unit, in the same order on
/// every machine; under `--shard I/N` (see [`shard`]) it computes only the
/// units this shard owns and ends with [`Checkpoint::finish_shard`].
pub struct Checkpoint {
    dir: PathBuf,
    out: PathBuf,
    experiment: String,
    fingerprint: String,
    plan: shard::Plan,
    units: std::cell::RefCell<Vec<(String, bool)>>,
}

impl Checkpoint {
    /// Opens the checkpoint folder of `out`. With `resume`, points saved by an
    /// earlier run of the same configuration are kept (another configuration
    /// is an error); without, earlier points are discarded.
    pub fn open(out: &OutDir, fingerprint: &serde_json::Value, resume: bool) -> Result<Self> {
        let dir = out.file("points");
        let cfg_path = dir.join("config.json");
        if resume && cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::file(&cfg_path, e))?;
            let old: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::file(&cfg_path, format!("unreadable checkpoint: {e}")))?;
            // Compare through the same text round trip (f32 data print shorter than their f64 values).
            let norm = |v: &serde_json::Value| {
                serde_json::to_string(v)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            };
            if norm(&old) != norm(fingerprint) {
                return Err(Error::invalid(format!(
                    "{} holds points of a run with another configuration; use another output folder or start afresh",
                    out.path.display()
                )));
            }
        } else if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        let text =
            serde_json::to_string_pretty(fingerprint).map_err(|e| Error::invalid(e.to_string()))?;
        crate::atomic::write_atomic(&cfg_path, text.as_bytes())?;
        let experiment = fingerprint["experiment"]
            .as_str()
            .unwrap_or("sweep")
            .to_string();
        Ok(Checkpoint {
            dir,
            out: out.path.clone(),
            experiment,
            fingerprint: shard::fingerprint_hash(text.as_bytes()),
            plan: shard::plan(),
            units: Default::default(),
        })
    }

    /// Whether this process computes the sweep's next unit, `key` (units are
    /// numbered in the order of these calls, which must not depend on what
    /// is saved). Under `--shard I/N`: whether its number is `I mod N`; in a
    /// merge, every unit must be saved already (else an error naming it).
    pub fn mine(&self, key: &str) -> Result<bool> {
        let mut units = self.units.borrow_mut();
        let k = units.len();
        let owned = match self.plan {
            shard::Plan::All => true,
            shard::Plan::Shard { index, count } => k % count == index,
            shard::Plan::List => false,
            shard::Plan::FromPoints => {
                if !self.dir.join(format!("{key}.json")).is_file() {
                    return Err(Error::invalid(format!(
                        "merge: no shard computed unit '{key}' (number {k}); rerun the shard that owns it"
                    )));
                }
                true
            }
        };
        units.push((key.to_string(), owned));
        Ok(owned)
    }

    /// Under `--shard` (or `--list-units`): writes `OUT/shard.json` (the units, the ones owned,
    /// the configuration's hash, the command line) and returns its content;
    /// the sweep then returns it instead of writing a report. Otherwise `None`.
    pub fn finish_shard(&self) -> Result<Option<serde_json::Value>> {
        let (index, count) = match self.plan {
            shard::Plan::Shard { index, count } => (index, count),
            shard::Plan::List => (0, 0),
            _ => return Ok(None),
        };
        let units = self.units.borrow();
        let record = shard::ShardRecord {
            experiment: self.experiment.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint: self.fingerprint.clone(),
            index,
            count,
            units: units.iter().map(|u| u.0.clone()).collect(),
            owned: units.iter().filter(|u| u.1).map(|u| u.0.clone()).collect(),
            argv: shard::argv(),
        };
        let v = serde_json::to_value(&record).map_err(|e| Error::invalid(e.to_string()))?;
        let text = serde_json::to_string_pretty(&v).map_err(|e| Error::invalid(e.to_string()))?;
        crate::atomic::write_atomic(&self.out.join("shard.json"), text.as_bytes())?;
        shard::mark_written();
        Ok(Some(v))
    }

    /// A saved point.
    pub fn get(&self, key: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join(format!("{key}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves a finished point.
    pub fn put(&self, key: &str, v: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string(v).map_err(|e| Error::invalid(e.to_string()))?;
        crate::atomic::write_atomic(&self.dir.join(format!("{key}.json")), text.as_bytes())
    }
}

/// The numbers of a JSON array.
pub(crate) fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

/// An experiment's settings with their presets (`--quick`, `--large`, defaults).
pub trait Preset: Default + serde::de::DeserializeOwned {
    /// Seconds: for tests and a first look.
    fn quick() -> Self;
    /// For real GPUs.
    fn large() -> Self;
}

macro_rules! preset {
    ($($t:ty),*) => {$(
        impl Preset for $t {
            fn quick() -> Self { <$t>::quick() }
            fn large() -> Self { <$t>::large() }
        }
    )*};
}
preset!(
    chaos::ChaosConfig,
    compare::CompareConfig,
    deep_linear::DeepLinearConfig,
    drift::DriftConfig,
    mutransfer::MuTransferConfig,
    sharpness::SharpnessConfig,
    learning_curves::LearningCurvesConfig,
    random_labels::RandomLabelsConfig,
    superposition::SuperpositionConfig
);

#[cfg(test)]
mod timestamp_tests {
    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(super::timestamp(0), "1970-01-01T00-00-00");
        // 2026-11-30 14:05:12 UTC, as `date -u -d @1796047512` prints it.
        assert_eq!(super::timestamp(1_796_047_512), "2026-11-30T14-05-12");
        // A leap day.
        assert_eq!(super::timestamp(951_782_400), "2000-02-29T00-00-00");
    }
}
