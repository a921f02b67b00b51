//! The experiments as functions: a preset, the caller's overrides, and a
//! report returned as JSON. Without `out` the report folder is written to a
//! temporary folder that is removed afterwards (the experiments always write
//! their checkpoints, figures and report; that is how they resume).

use crate::arrays::view;
use crate::detach;
use crate::device;
use crate::errors::{OrPy, invalid};
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use std::path::PathBuf;
use widenet::experiments::data::{Split, teacher};
use widenet::experiments::{self, OutDir, Preset, compare, deep_linear, drift, mutransfer};
use widenet::matrix::Matrix;

/// The settings: the preset (`quick`, `large` or the defaults) with the
/// overrides (a JSON object, keys as the command line's flags) on top.
fn config<T: Preset + serde::Serialize>(preset: Option<&str>, overrides: &str) -> PyResult<T> {
    let base = match preset {
        None | Some("default") => T::default(),
        Some("quick") => T::quick(),
        Some("large") => T::large(),
        Some(p) => {
            return Err(invalid(format!(
                "unknown preset '{p}' (expected quick, large or default)"
            )));
        }
    };
    let mut v = serde_json::to_value(base).map_err(|e| invalid(e.to_string()))?;
    let o: serde_json::Value =
        serde_json::from_str(overrides).map_err(|e| invalid(format!("settings: {e}")))?;
    if let (Some(base), serde_json::Value::Object(o)) = (v.as_object_mut(), o) {
        for (k, val) in o {
            base.insert(k.replace('_', "-"), val);
        }
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("settings: {e}")))
}

/// Data for `compare` from arrays: the first `n_train` rows train, the rest test.
fn split(x: &Matrix<f32>, y: &Matrix<f32>, n_train: usize) -> PyResult<Split> {
    if y.rows() != x.rows() {
        return Err(invalid(format!(
            "y has {} rows but x has {}",
            y.rows(),
            x.rows()
        )));
    }
    if n_train >= x.rows() {
        return Err(invalid(format!(
            "n_train ({n_train}) must leave test points among the {} rows",
            x.rows()
        )));
    }
    let take = |m: &Matrix<f32>, a: usize, b: usize| {
        Matrix::from_vec(
            b - a,
            m.cols(),
            m.data()[a * m.cols()..b * m.cols()].to_vec(),
        )
        .or_py()
    };
    Ok(Split {
        x_train: take(x, 0, n_train)?,
        y_train: take(y, 0, n_train)?,
        x_test: take(x, n_train, x.rows())?,
        y_test: take(y, n_train, x.rows())?,
    })
}

/// A folder for a run that is to leave none.
fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("widenet-{name}-{}-{nanos}", std::process::id()))
}

/// Runs experiment `name` (compare, drift, mutransfer, deep_linear); returns
/// `report.json`'s content.
#[pyfunction]
#[pyo3(signature = (name, overrides, preset=None, x=None, y=None, out=None, resume=false, quiet=true, device=None))]
#[allow(clippy::too_many_arguments)]
pub fn experiment(
    py: Python<'_>,
    name: &str,
    overrides: &str,
    preset: Option<&str>,
    x: Option<PyReadonlyArray2<'_, f32>>,
    y: Option<PyReadonlyArray2<'_, f32>>,
    out: Option<PathBuf>,
    resume: bool,
    quiet: bool,
    device: Option<String>,
) -> PyResult<String> {
    if resume && out.is_none() {
        return Err(invalid(
            "resume needs out= (the folder of the run to continue)",
        ));
    }
    if x.is_some() && name != "compare" {
        return Err(invalid(format!(
            "{name} makes its own data; x and y are for compare"
        )));
    }
    let choice = device::choice(device.as_deref()).or_py()?;
    enum Cfg {
        Compare(compare::CompareConfig, Split),
        Drift(drift::DriftConfig),
        MuTransfer(mutransfer::MuTransferConfig),
        DeepLinear(deep_linear::DeepLinearConfig),
    }
    let cfg = match name {
        "compare" => {
            let c: compare::CompareConfig = config(preset, overrides)?;
            c.validate().or_py()?;
            let data = match (&x, &y) {
                (Some(x), Some(y)) => split(
                    &view(x, "x")?.to_owned(),
                    &view(y, "y")?.to_owned(),
                    c.n_train,
                )?,
                (None, None) => teacher(c.d_in, c.n_train, c.n_test, c.seed),
                _ => return Err(invalid("compare takes x and y together")),
            };
            Cfg::Compare(c, data)
        }
        "drift" => Cfg::Drift(config(preset, overrides)?),
        "mutransfer" => Cfg::MuTransfer(config(preset, overrides)?),
        "deep_linear" | "deep-linear" => Cfg::DeepLinear(config(preset, overrides)?),
        other => {
            return Err(invalid(format!(
                "unknown experiment '{other}' (expected compare, drift, mutransfer or deep_linear)"
            )));
        }
    };
    let keep = out.is_some();
    let dir = out.unwrap_or_else(|| scratch(name));
    let result = detach::run(py, experiments::request_interrupt, |_| {
        let dev = device::open(&choice)?;
        let out = OutDir::create(Some(&dir), name)?;
        let d = dev.as_ref();
        match &cfg {
            Cfg::Compare(c, data) => compare::run(d, c, data, &out, quiet, resume),
            Cfg::Drift(c) => drift::run(d, c, &out, quiet, resume),
            Cfg::MuTransfer(c) => mutransfer::run(d, c, &out, quiet, resume),
            Cfg::DeepLinear(c) => deep_linear::run(d, c, &out, quiet),
        }
    });
    experiments::clear_interrupt();
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    serde_json::to_string(&report).map_err(|e| invalid(e.to_string()))
}
