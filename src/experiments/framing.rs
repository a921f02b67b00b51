//! The frame every `report.md` shares: it opens with what was run (data,
//! architecture, device, time taken), warns when a reduced run's numbers are
//! noisy and says how to run the full version, and closes with the command
//! that reproduces the run.

use std::path::Path;

/// What a run was, for the opening of its `report.md`.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    /// The subcommand (`compare`, `drift`, ...).
    pub experiment: &'a str,
    /// The data, in words (task, sizes).
    pub data: String,
    /// The architecture, in words or as stax layers.
    pub arch: String,
    /// The device's name.
    pub device: String,
    /// Wall time of the run, seconds.
    pub seconds: f64,
}

/// A duration in words: `12.3 s`, `4 min 05 s`, `1 h 02 min`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "unknown".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, s / 60 % 60)
    }
}

/// The title and the paragraph that says what was run.
pub fn opening(r: &Run<'_>) -> String {
    format!(
        "# widenet {}\n\n**What was run.** Data: {}. Architecture: {}. Device: {}. Time taken: {}.\n\n",
        r.experiment,
        r.data,
        r.arch,
        r.device,
        duration(r.seconds)
    )
}

/// The warning of a reduced run (fewer seeds or a smaller grid than the
/// defaults): `why` says what was reduced. Empty when `reduced` is false.
pub fn noisy(reduced: bool, experiment: &str, why: &str) -> String {
    if !reduced {
        return String::new();
    }
    format!(
        "> **Reduced run: its numbers are noisy** ({why}). The full run, on the default settings: `widenet {experiment}` (or `--large` on a real GPU).\n\n"
    )
}

/// The opening of a width sweep on the teacher task (drift, mutransfer),
/// with the device and the time from the report `r`.
pub fn teacher_opening(
    experiment: &str,
    arch: String,
    n_train: usize,
    d_in: usize,
    r: &serde_json::Value,
) -> String {
    opening(&Run {
        experiment,
        data: format!("teacher task, {n_train} training points in {d_in} dimensions"),
        arch,
        device: r["device"]["name"].as_str().unwrap_or("?").to_string(),
        seconds: r["seconds"].as_f64().unwrap_or(f64::NAN),
    })
}

/// The [`noisy`] warning from a run's sizes against the defaults, each as
/// `(what, run, default)`: reduced when any is smaller.
pub fn sizes_noisy(experiment: &str, sizes: &[(&str, usize, usize)]) -> String {
    let list = |pick: fn(&(&str, usize, usize)) -> usize| {
        sizes
            .iter()
            .map(|t| format!("{} {}", pick(t), t.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    noisy(
        sizes.iter().any(|&(_, run, full)| run < full),
        experiment,
        &format!("{}; the defaults are {}", list(|t| t.1), list(|t| t.2)),
    )
}

/// The size of a sweep (seeds, widths, steps) against its defaults: the
/// [`noisy`] warning when any is smaller.
pub fn sweep_noisy(experiment: &str, run: [usize; 3], full: [usize; 3]) -> String {
    sizes_noisy(
        experiment,
        &[
            ("seeds", run[0], full[0]),
            ("widths", run[1], full[1]),
            ("steps", run[2], full[2]),
        ],
    )
}

/// The architecture of a width sweep in words: the given one with its hidden
/// Dense layers set to each width, or the shorthand MLP.
pub fn sweep_arch(
    arch: Option<&str>,
    depth: usize,
    activation: &dyn std::fmt::Display,
    widths: &[usize],
) -> String {
    match arch {
        Some(a) => format!("`{a}`, hidden Dense layers set to each width of {widths:?}"),
        None => format!("depth-{depth} {activation} MLP, widths {widths:?}, one output"),
    }
}

/// The closing section: the command that reproduces the run from its
/// `report.json` (whose `config` holds every setting).
pub fn closing(experiment: &str, out: &Path) -> String {
    format!(
        "## Reproduce\n\n```sh\nwidenet {experiment} --config {}/report.json --out {}-again\n```\n",
        out.display(),
        out.display()
    )
}

/// How a fitted slope `s` (with its standard error over seeds) stands
/// against the theory's `theory`: agreement within two standard errors (or
/// 0.05 where the error is unknown or tiny), else the difference.
pub fn verdict(s: &crate::experiments::Slope, theory: f64) -> String {
    if !(s.slope.is_finite() && theory.is_finite()) {
        return "no fit to compare".into();
    }
    let d = s.slope - theory;
    let tol = if s.stderr.is_finite() {
        (2.0 * s.stderr).max(0.05)
    } else {
        0.05
    };
    if d.abs() <= tol {
        "agrees".into()
    } else {
        format!("differs by {d:+.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_run_than_the_defaults_is_flagged_as_noisy() {
        let w = sweep_noisy("compare", [4, 3, 100], [16, 6, 100]);
        assert!(
            w.contains(
                "(4 seeds, 3 widths, 100 steps; the defaults are 16 seeds, 6 widths, 100 steps)"
            ),
            "{w}"
        );
        assert!(w.contains("`widenet compare`"), "{w}");
        assert_eq!(
            sizes_noisy("chaos", &[("seeds", 4, 4), ("steps", 200, 100)]),
            ""
        );
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(3.25), "3.2 s");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(3720.0), "1 h 02 min");
        assert_eq!(duration(f64::NAN), "unknown");
    }

    #[test]
    fn the_frame_opens_with_the_run_and_closes_with_its_command() {
        let r = Run {
            experiment: "drift",
            data: "teacher task".into(),
            arch: "MLP".into(),
            device: "cpu".into(),
            seconds: 1.0,
        };
        let md = opening(&r) + &closing("drift", Path::new("runs/x"));
        assert!(md.starts_with("# widenet drift\n\n**What was run.** Data: teacher task."));
        assert!(md.contains("Time taken: 1.0 s."));
        assert!(
            md.ends_with("widenet drift --config runs/x/report.json --out runs/x-again\n```\n")
        );
        assert!(noisy(false, "drift", "2 seeds").is_empty());
        assert!(noisy(true, "drift", "2 seeds").contains("`widenet drift`"));
        let s = |slope, stderr| crate::experiments::Slope {
            slope,
            stderr,
            intercept: 0.0,
        };
        assert_eq!(verdict(&s(-0.52, 0.02), -0.5), "agrees");
        assert_eq!(verdict(&s(-0.80, 0.02), -1.0), "differs by +0.20");
        assert_eq!(verdict(&s(-0.97, f64::NAN), -1.0), "agrees");
    }
}
