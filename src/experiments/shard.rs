//! Sweeps spread over machines: every sweep lists its work units (its
//! checkpointed points) in a deterministic order, and a shard `I/N` computes
//! the units whose index `k` in that order has `k mod N == I` (round robin:
//! neighbouring units, often of similar cost, land on different shards).
//!
//! The plan is process-wide, set once by the command line (`--shard I/N`,
//! and by `widenet merge`, which rebuilds the report from the shards' points
//! and refuses to compute any point itself); every sweep gets it through
//! [`Checkpoint`](super::Checkpoint) without knowing of it.

use crate::error::{Error, Result};
use std::sync::Mutex;

/// What this process computes of a sweep.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Plan {
    /// Every unit (a single-machine run).
    #[default]
    All,
    /// The units `k` with `k mod count == index`; writes `shard.json` instead
    /// of the report.
    Shard {
        /// This shard, `0..count`.
        index: usize,
        /// Shards in all.
        count: usize,
    },
    /// No unit: only list them, in `shard.json` (as shard 0 of 0), for a
    /// driver that schedules them.
    List,
    /// Every unit must be a saved point already (`widenet merge`): computing
    /// one is an error.
    FromPoints,
}

impl Plan {
    /// Parses `I/N` (`0 <= I < N`).
    pub fn parse(text: &str) -> Result<Plan> {
        let bad = || {
            Error::invalid(format!(
                "--shard: expected I/N with 0 <= I < N (e.g. 0/4), got '{text}'"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Plan::Shard { index, count })
    }
}

struct Global {
    plan: Plan,
    argv: Vec<String>,
    shard_written: bool,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    plan: Plan::All,
    argv: Vec::new(),
    shard_written: false,
});

fn global() -> std::sync::MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the plan of the sweeps this process runs, and the command line that
/// reproduces the sweep (recorded in `shard.json`, without `--shard`,
/// `--out` and `--resume`).
pub fn set_plan(plan: Plan, argv: Vec<String>) {
    let mut g = global();
    g.plan = plan;
    g.argv = argv;
    g.shard_written = false;
}

/// The current plan.
pub fn plan() -> Plan {
    global().plan.clone()
}

/// Whether a sweep of this process wrote its `shard.json` (a command that
/// took `--shard` but is no sweep did not).
pub fn shard_written() -> bool {
    global().shard_written
}

pub(crate) fn mark_written() {
    global().shard_written = true;
}

pub(crate) fn argv() -> Vec<String> {
    global().argv.clone()
}

/// A short fingerprint (FNV-1a, 64 bits, hex) of some bytes (a
/// configuration's JSON text).
pub fn fingerprint_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `shard.json`: what one shard ran.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ShardRecord {
    /// The sweep (`compare`, `drift`, ...).
    pub experiment: String,
    /// The widenet version that ran it.
    pub version: String,
    /// Hash of the configuration (`points/config.json`).
    pub fingerprint: String,
    /// This shard.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
    /// Every unit of the sweep, in order.
    pub units: Vec<String>,
    /// The units this shard computed.
    pub owned: Vec<String>,
    /// The command line without `--shard`, `--out` and `--resume`.
    pub argv: Vec<String>,
}
