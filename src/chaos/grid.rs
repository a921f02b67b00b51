//! The theory over a grid of `(sigma_w^2, sigma_b^2)` on any backend, and the
//! critical line `chi_1 = 1`.

use super::Expectations;
use super::fixed::polish_critical;
use crate::activation::Activation;
use crate::backend::{Backend, SIGNAL_OUTPUTS, SignalSpec, SignalTask};
use crate::error::{Error, Result};

/// Evenly spaced values `lo, ..., hi` (`n` of them), written `LO:HI:N`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Axis {
    /// First value.
    pub lo: f64,
    /// Last value.
    pub hi: f64,
    /// Number of values.
    pub n: usize,
}

/// Most values an axis may have.
pub const MAX_AXIS: usize = 4096;

impl Axis {
    /// Parses `LO:HI:N` (`N` from 1 to 4096; `LO <= HI`, both finite and
    /// non-negative, as variances are; `N = 1` needs `LO = HI`).
    pub fn parse(s: &str) -> Result<Axis> {
        let bad = || {
            Error::invalid(format!(
                "'{s}' is not LO:HI:N (two non-negative numbers LO <= HI and a count N from 1 to {MAX_AXIS}, e.g. 0.5:4:128)"
            ))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let [lo, hi, n] = parts.as_slice() else {
            return Err(bad());
        };
        let lo: f64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: f64 = hi.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let a = Axis { lo, hi, n };
        a.validate().map_err(|_| bad())?;
        Ok(a)
    }

    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lo.is_finite()
            && self.hi.is_finite()
            && self.lo >= 0.0
            && self.lo <= self.hi
            && (1..=MAX_AXIS).contains(&self.n)
            && (self.n > 1 || self.lo == self.hi);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "axis {}:{}:{} must have 0 <= LO <= HI and 1 to {MAX_AXIS} values",
                self.lo, self.hi, self.n
            )))
        }
    }

    /// The values, as the device receives them (f32, then back to f64).
    pub fn values(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                let v = if self.n == 1 {
                    self.lo
                } else {
                    self.lo + (self.hi - self.lo) * i as f64 / (self.n - 1) as f64
                };
                f64::from(v as f32)
            })
            .collect()
    }
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.lo, self.hi, self.n)
    }
}

/// The theory on a grid: rows are `sb2` values, columns `sw2` values.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Grid {
    /// The `N` columns.
    pub sw2: Vec<f64>,
    /// The `M` rows.
    pub sb2: Vec<f64>,
    /// `M x N` fixed points of the length map.
    pub q_star: Vec<Vec<Option<f64>>>,
    /// `M x N` fixed points of the correlation map.
    pub c_star: Vec<Vec<Option<f64>>>,
    /// `M x N` values of `chi_1`.
    pub chi1: Vec<Vec<Option<f64>>>,
    /// `M x N` depth scales of the length.
    pub xi_q: Vec<Vec<Option<f64>>>,
    /// `M x N` depth scales of the correlation.
    pub xi_c: Vec<Vec<Option<f64>>>,
}

fn get(v: f32) -> Option<f64> {
    (v >= 0.0 && v.is_finite()).then_some(f64::from(v))
}

/// `q*`, `c*`, `chi_1`, `xi_q`, `xi_c` at every grid point, in one call of
/// [`Backend::signal_propagation`] (f32 on a device, f64 on the CPU).
pub fn theory_grid(
    dev: &dyn Backend,
    act: Activation,
    quadrature: bool,
    degree: usize,
    sw2: &Axis,
    sb2: &Axis,
) -> Result<Grid> {
    sw2.validate()?;
    sb2.validate()?;
    let (ws, bs) = (sw2.values(), sb2.values());
    let mut input = Vec::with_capacity(2 * ws.len() * bs.len());
    for &b in &bs {
        for &w in &ws {
            input.extend([w as f32, b as f32]);
        }
    }
    let spec = SignalSpec {
        act,
        quadrature,
        degree,
        task: SignalTask::FixedPoints,
    };
    let buf = dev.upload(&input)?;
    let mut out = dev.zeros(input.len() / 2 * SIGNAL_OUTPUTS)?;
    dev.signal_propagation(&spec, &buf, &mut out)?;
    let v = dev.read(&out)?;
    let field = |f: usize| -> Vec<Vec<Option<f64>>> {
        (0..bs.len())
            .map(|i| {
                (0..ws.len())
                    .map(|j| get(v[(i * ws.len() + j) * SIGNAL_OUTPUTS + f]))
                    .collect()
            })
            .collect()
    };
    Ok(Grid {
        q_star: field(0),
        c_star: field(1),
        chi1: field(2),
        xi_q: field(3),
        xi_c: field(4),
        sw2: ws,
        sb2: bs,
    })
}

/// The critical line: for each `sb2` the `sw2` in `[lo, hi]` where
/// `chi_1 = 1` (`None` where there is none), bracketed by
/// [`Backend::signal_propagation`] and brought to `|chi_1 - 1| < 1e-9` by
/// secant steps in f64.
pub fn critical_line(
    dev: &dyn Backend,
    act: Activation,
    quadrature: bool,
    degree: usize,
    sb2: &[f64],
    lo: f64,
    hi: f64,
) -> Result<Vec<Option<f64>>> {
    let input: Vec<f32> = sb2
        .iter()
        .flat_map(|&b| [b as f32, lo as f32, hi as f32])
        .collect();
    let spec = SignalSpec {
        act,
        quadrature,
        degree,
        task: SignalTask::Critical,
    };
    let buf = dev.upload(&input)?;
    let mut out = dev.zeros(sb2.len())?;
    dev.signal_propagation(&spec, &buf, &mut out)?;
    let found = dev.read(&out)?;
    let e = Expectations::new(act, degree, quadrature);
    let (lo, hi) = (f64::from(lo as f32), f64::from(hi as f32));
    Ok(sb2
        .iter()
        .zip(found)
        .map(|(&b, w)| get(w).and_then(|w| polish_critical(&e, b, w, lo, hi)))
        .collect())
}
