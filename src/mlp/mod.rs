//! Wide MLP ensembles: `d_in -> depth x (Dense(width) -> activation) -> Dense(d_out)`,
//! E independently initialized members trained together, every dispatch
//! covering all members.
//!
//! # Parameterizations
//!
//! Each layer `l` (fan-in `n`, the readout is `l = depth`) stores trainable
//! `W` and `b` and computes `z = mult_w * W x + mult_b * b`. With
//! `sigma_w = --w-std`, `sigma_b = --b-std` and, for muP, `rho = width / base_width`:
//!
//! | parameterization | init of W | mult_w | init of b | mult_b | lr of W (SGD / Adam) | lr of b (SGD / Adam) |
//! |---|---|---|---|---|---|---|
//! | `ntk` (neural-tangents) | N(0, 1) | sigma_w / sqrt(n) | N(0, 1) | sigma_b | 1 / 1 | 1 / 1 |
//! | `standard` (neural-tangents) | N(0, sigma_w^2 / n) | 1 | N(0, sigma_b^2) | 1 | 1 / 1 | 1 / 1 |
//! | `mup`, input layer | as standard | 1 | as standard | 1 | rho / 1 | rho / 1 |
//! | `mup`, hidden layers | as standard | 1 | as standard | 1 | 1 / (1/rho) | rho / 1 |
//! | `mup`, readout | N(0, sigma_w^2 / (n rho)) | 1 | as standard | 1 | (1/rho) / (1/rho) | 1 / 1 |
//! | `mean-field` | as ntk | as ntk, readout sigma_w / n | as ntk | sigma_b | width / width | width / width |
//!
//! `ntk` and `standard` are exactly neural-tangents' `stax.Dense` (so the
//! infinite-width limit of a widenet network is the kernel [`crate::kernel`]
//! computes for the same flags). `mup` is Table 3 of Tensor Programs V (Yang et
//! al. 2021, <https://arxiv.org/abs/2203.03466>) written relative to a base
//! width at which it coincides with `standard`: "input weights and all biases"
//! of fan-out `width` get SGD rate `x rho`, "output weights" initial variance
//! and rates `/ rho`, hidden weights Adam rate `/ rho`. `mean-field` scales the
//! output by `1/width` instead of `1/sqrt(width)` (Mei, Montanari and Nguyen
//! 2018; Chizat and Bach 2018) and multiplies every learning rate by the width,
//! so that a two-layer network's dynamics do not depend on the width; deeper
//! networks use the same two rules.

pub mod empirical;
pub mod ensemble;
pub mod params;
pub mod train;

use crate::activation::Activation;
use crate::error::{Error, Result};

/// How an MLP's layers are scaled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    Ntk,
    Standard,
    Mup,
    MeanField,
}

impl Parameterization {
    /// Parses `ntk`, `standard`, `mup` or `mean-field`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "ntk" => Ok(Parameterization::Ntk),
            "standard" | "sp" => Ok(Parameterization::Standard),
            "mup" | "mu-p" => Ok(Parameterization::Mup),
            "mean-field" | "meanfield" | "mf" => Ok(Parameterization::MeanField),
            _ => Err(Error::invalid(format!(
                "unknown parameterization '{s}' (expected ntk, standard, mup or mean-field)"
            ))),
        }
    }

    /// The name as parsed.
    pub fn name(&self) -> &'static str {
        match self {
            Parameterization::Ntk => "ntk",
            Parameterization::Standard => "standard",
            Parameterization::Mup => "mup",
            Parameterization::MeanField => "mean-field",
        }
    }
}

/// An MLP ensemble's architecture; saved as the metadata of its parameter file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpSpec {
    pub d_in: usize,
    pub width: usize,
    /// Hidden layers; the readout comes on top.
    pub depth: usize,
    pub d_out: usize,
    pub activation: Activation,
    pub parameterization: Parameterization,
    pub w_std: f64,
    pub b_std: f64,
    /// muP's base width (where it coincides with `standard`); ignored by the others.
    pub base_width: usize,
    /// Members of the ensemble.
    pub ensemble: usize,
}

/// Scales of one layer, see the table in the module documentation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerScale {
    pub init_w: f64,
    pub mult_w: f64,
    pub init_b: f64,
    pub mult_b: f64,
    pub lr_w: f64,
    pub lr_b: f64,
}

impl MlpSpec {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("--d-in", self.d_in),
            ("--width", self.width),
            ("--d-out", self.d_out),
            ("--ensemble", self.ensemble),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.parameterization == Parameterization::Mup && self.base_width == 0 {
            return Err(Error::invalid("--base-width must be at least 1 for mup"));
        }
        if !(self.w_std.is_finite()
            && self.b_std.is_finite()
            && self.w_std >= 0.0
            && self.b_std >= 0.0)
        {
            return Err(Error::invalid(format!(
                "--w-std and --b-std must be finite and non-negative (got {} and {})",
                self.w_std, self.b_std
            )));
        }
        if self.depth > 1000 {
            return Err(Error::invalid(format!(
                "--depth {} is more than 1000 layers",
                self.depth
            )));
        }
        let params = self
            .layers()
            .map(|(i, o)| (i + 1) * o)
            .sum::<usize>()
            .saturating_mul(self.ensemble);
        if params > (1usize << 32) {
            return Err(Error::invalid(format!(
                "{params} parameters in all: more than 2^32"
            )));
        }
        Ok(())
    }

    /// (fan_in, fan_out) of each layer, readout last.
    pub fn layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..=self.depth).map(move |l| {
            let fan_in = if l == 0 { self.d_in } else { self.width };
            let fan_out = if l == self.depth {
                self.d_out
            } else {
                self.width
            };
            (fan_in, fan_out)
        })
    }

    /// The scales of layer `l` for an optimizer (`adam` or an SGD-like one).
    pub fn scale(&self, l: usize, adam: bool) -> LayerScale {
        let fan_in = if l == 0 { self.d_in } else { self.width } as f64;
        let (sw, sb) = (self.w_std, self.b_std);
        let readout = l == self.depth;
        let ntk = LayerScale {
            init_w: 1.0,
            mult_w: sw / fan_in.sqrt(),
            init_b: 1.0,
            mult_b: sb,
            lr_w: 1.0,
            lr_b: 1.0,
        };
        let standard = LayerScale {
            init_w: sw / fan_in.sqrt(),
            mult_w: 1.0,
            init_b: sb,
            mult_b: 1.0,
            lr_w: 1.0,
            lr_b: 1.0,
        };
        match self.parameterization {
            Parameterization::Ntk => ntk,
            Parameterization::Standard => standard,
            Parameterization::Mup => {
                if self.depth == 0 {
                    return standard;
                }
                let rho = self.width as f64 / self.base_width as f64;
                if readout {
                    LayerScale {
                        init_w: standard.init_w / rho.sqrt(),
                        lr_w: 1.0 / rho,
                        lr_b: 1.0,
                        ..standard
                    }
                } else if l == 0 {
                    LayerScale {
                        lr_w: if adam { 1.0 } else { rho },
                        lr_b: if adam { 1.0 } else { rho },
                        ..standard
                    }
                } else {
                    LayerScale {
                        lr_w: if adam { 1.0 / rho } else { 1.0 },
                        lr_b: if adam { 1.0 } else { rho },
                        ..standard
                    }
                }
            }
            Parameterization::MeanField => {
                let w = self.width as f64;
                let mult_w = if readout && self.depth > 0 {
                    sw / fan_in
                } else {
                    ntk.mult_w
                };
                LayerScale {
                    mult_w,
                    lr_w: w,
                    lr_b: w,
                    ..ntk
                }
            }
        }
    }
}
