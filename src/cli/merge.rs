//! `--shard I/N` on the sweeps and `widenet merge`, which joins the shards'
//! points and rebuilds the report exactly as a single machine would.

use super::{Cli, Command};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use widenet::error::{Error, Result};
use widenet::experiments::shard::{self, Plan, ShardRecord};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  widenet compare --quick --shard 0/2 --out runs/s0\n  widenet compare --quick --shard 1/2 --out runs/s1\n  widenet merge runs/all runs/s0 runs/s1\n\n\
Checks that every shard ran the same configuration and widenet version and that no unit is missing\n\
or computed twice (naming them), copies the points into OUT/points and writes the report from them\n\
(computing nothing): report.json equals a single-machine run, number for number."
)]
pub struct MergeArgs {
    /// The output folder of the merged report.
    pub out: PathBuf,
    /// The shards' output folders (each with shard.json and points/).
    #[arg(required = true, num_args = 1..)]
    pub shards: Vec<PathBuf>,
}

/// Whether a command is a sweep of checkpointed points (takes `--shard`).
fn is_sweep(c: &Option<Command>) -> bool {
    matches!(
        c,
        None | Some(
            Command::Compare(_)
                | Command::Drift(_)
                | Command::Mutransfer(_)
                | Command::Chaos(_)
                | Command::LearningCurves(_)
                | Command::RandomLabels(_)
                | Command::Sharpness(_)
                | Command::Superposition(_)
        )
    )
}

/// The command line without `--shard`, `--from-points`, `--out` and `--resume`
/// (and without the program's name).
fn reproducing_argv(argv: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for a in argv.iter().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        match a.as_str() {
            "--shard" | "--out" => skip_value = true,
            "--resume" | "--from-points" | "--list-units" => {}
            s if s.starts_with("--shard=") || s.starts_with("--out=") => {}
            _ => kept.push(a.clone()),
        }
    }
    kept
}

/// Sets the process's plan from `--shard` and `--from-points`.
pub(crate) fn plan_from(cli: &Cli, argv: Vec<String>) -> Result<()> {
    let chosen = [cli.shard.is_some(), cli.from_points, cli.list_units];
    if chosen.iter().filter(|c| **c).count() > 1 {
        return Err(Error::invalid(
            "--shard, --from-points and --list-units exclude each other",
        ));
    }
    if chosen.iter().any(|c| *c) && !is_sweep(&cli.command) {
        return Err(Error::invalid(
            "--shard: only the sweeps take it (compare, drift, mutransfer, chaos, learning-curves, random-labels, sharpness, superposition)",
        ));
    }
    let plan = match &cli.shard {
        Some(s) => Plan::parse(s)?,
        None if cli.from_points => Plan::FromPoints,
        None if cli.list_units => Plan::List,
        None => Plan::All,
    };
    shard::set_plan(plan, reproducing_argv(&argv));
    Ok(())
}

fn read_record(dir: &Path) -> Result<ShardRecord> {
    let path = dir.join("shard.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("not a shard's output folder (no readable shard.json: {e})"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("invalid shard.json: {e}")))
}

/// Checks the shards against each other: same sweep, configuration, version
/// and command; every unit computed by exactly one shard, with its point saved.
fn check(shards: &[(PathBuf, ShardRecord)]) -> Result<()> {
    let (first_dir, first) = &shards[0];
    if first.version != env!("CARGO_PKG_VERSION") {
        return Err(Error::invalid(format!(
            "{} was computed by widenet {}, this is {}",
            first_dir.display(),
            first.version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut by_index: BTreeMap<usize, &Path> = BTreeMap::new();
    for (dir, r) in shards {
        let differ = |what: &str| {
            Err(Error::invalid(format!(
                "{} and {} ran different {what}",
                first_dir.display(),
                dir.display()
            )))
        };
        if r.version != first.version {
            return differ("widenet versions");
        }
        if r.experiment != first.experiment || r.argv != first.argv {
            return differ("commands");
        }
        if r.fingerprint != first.fingerprint || r.units != first.units {
            return differ("configurations");
        }
        if r.count != first.count {
            return differ("numbers of shards");
        }
        if let Some(other) = by_index.insert(r.index, dir) {
            return Err(Error::invalid(format!(
                "shard {}/{} is given twice: {} and {}",
                r.index,
                r.count,
                other.display(),
                dir.display()
            )));
        }
    }
    let mut owners: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut unsaved = Vec::new();
    for (dir, r) in shards {
        for u in &r.owned {
            owners
                .entry(u.as_str())
                .or_default()
                .push(dir.display().to_string());
            if !dir.join("points").join(format!("{u}.json")).is_file() {
                unsaved.push(format!("{u} (in {})", dir.display()));
            }
        }
    }
    let missing: Vec<&str> = first
        .units
        .iter()
        .filter(|u| !owners.contains_key(u.as_str()))
        .map(|u| u.as_str())
        .collect();
    let twice: Vec<String> = owners
        .iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(u, o)| format!("{u} (in {})", o.join(", ")))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        let absent: Vec<String> = (0..first.count)
            .filter(|i| !by_index.contains_key(i))
            .map(|i| format!("{i}/{}", first.count))
            .collect();
        problems.push(format!(
            "units missing: {} (shards not given: {})",
            missing.join(", "),
            absent.join(", ")
        ));
    }
    if !twice.is_empty() {
        problems.push(format!("units computed twice: {}", twice.join("; ")));
    }
    if !unsaved.is_empty() {
        problems.push(format!(
            "units without a saved point (the shard did not finish): {}",
            unsaved.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid(format!("merge: {}", problems.join("; "))));
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| Error::io(from, "read", e))?;
    widenet::atomic::write_atomic(to, &bytes)
}

/// `widenet merge OUT SHARD...`.
pub(crate) fn run(a: &MergeArgs) -> Result<()> {
    let shards = a
        .shards
        .iter()
        .map(|d| read_record(d).map(|r| (d.clone(), r)))
        .collect::<Result<Vec<_>>>()?;
    check(&shards)?;
    let points = a.out.join("points");
    if points.exists() {
        std::fs::remove_dir_all(&points).map_err(|e| Error::io(&points, "clear", e))?;
    }
    std::fs::create_dir_all(&points)
        .map_err(|e| Error::file(&points, format!("cannot create the output folder: {e}")))?;
    copy(
        &shards[0].0.join("points").join("config.json"),
        &points.join("config.json"),
    )?;
    for (dir, r) in &shards {
        for u in &r.owned {
            let name = format!("{u}.json");
            copy(&dir.join("points").join(&name), &points.join(&name))?;
        }
    }
    let mut argv = vec!["widenet".to_string()];
    argv.extend(shards[0].1.argv.iter().cloned());
    argv.extend([
        "--out".to_string(),
        a.out.display().to_string(),
        "--resume".to_string(),
        "--from-points".to_string(),
    ]);
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        Error::invalid(format!(
            "merge: the shards' command line does not parse: {e}"
        ))
    })?;
    plan_from(&cli, argv)?;
    super::dispatch(cli)
}
