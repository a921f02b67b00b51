//! The Dense layer: its parameters' scales under each parameterization and its
//! kernel update (neural-tangents' `stax.Dense`; Jacot et al. 2018 for the
//! `ntk` form, Sohl-Dickstein et al. 2020, <https://arxiv.org/abs/2001.07301>,
//! for `standard`).

use super::Parameterization;
use crate::error::{Error, Result};

/// A fully connected layer: `out` features, weights of scale `W_std`,
/// biases of scale `b_std` (none when `None`), in the `ntk` or `standard`
/// parameterization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense {
    /// Output features.
    pub out: usize,
    /// Weight scale.
    pub w_std: f64,
    /// Bias scale; `None` means the layer has no bias (neural-tangents' `b_std=None`).
    pub b_std: Option<f64>,
    /// `Ntk` or `Standard`.
    pub parameterization: Parameterization,
}

/// Where a Dense layer sits in a network, which decides its muP and
/// mean-field scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The first Dense layer (reads the inputs).
    Input,
    /// Every Dense layer between the first and the last, residual blocks included.
    Hidden,
    /// The last Dense layer.
    Readout,
    /// The only Dense layer of the network.
    Only,
}

/// How one Dense layer's stored parameters are drawn and used: the layer
/// computes `mult_w * W x + mult_b * b` with `W ~ init_w * N(0, 1)` and
/// `b ~ init_b * N(0, 1)`, and trains them with the learning rate times
/// `lr_w`, `lr_b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerScale {
    /// Standard deviation of the stored weights.
    pub init_w: f64,
    /// Multiplier of the weights in the forward pass.
    pub mult_w: f64,
    /// Standard deviation of the stored biases.
    pub init_b: f64,
    /// Multiplier of the biases in the forward pass.
    pub mult_b: f64,
    /// Learning-rate multiplier of the weights.
    pub lr_w: f64,
    /// Learning-rate multiplier of the biases.
    pub lr_b: f64,
}

impl Dense {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        self.problem().map_or(Ok(()), |m| Err(Error::invalid(m)))
    }

    /// What is wrong with the numbers, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.out == 0 {
            return Some("out_dim must be at least 1".into());
        }
        let b = self.b_std.unwrap_or(0.0);
        if !(self.w_std.is_finite() && b.is_finite()) || self.w_std < 0.0 || b < 0.0 {
            return Some(format!(
                "W_std and b_std must be finite and non-negative (got {} and {})",
                self.w_std, b
            ));
        }
        if !self.parameterization.is_per_layer() {
            return Some(format!(
                "parameterization '{}' applies to a whole network; a Dense layer takes ntk or standard",
                self.parameterization
            ));
        }
        None
    }

    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.b_std.is_some()
    }

    /// The kernel update of one pair: `(q, Theta)` of the layer's output from
    /// those of its input (`fan_in` features).
    pub fn kernel(&self, fan_in: f64, q: f64, theta: f64) -> (f64, f64) {
        let w2 = self.w_std * self.w_std;
        let b2 = self.b_std.map_or(0.0, |b| b * b);
        match self.parameterization {
            Parameterization::Standard => {
                let bias = if self.has_bias() { 1.0 } else { 0.0 };
                (w2 * q + b2, fan_in * q + w2 * theta + bias)
            }
            _ => {
                let qn = w2 * q + b2;
                (qn, qn + w2 * theta)
            }
        }
    }

    /// The variance of the output from that of the input.
    pub fn variance(&self, c: f64) -> f64 {
        self.kernel(1.0, c, 0.0).0
    }

    /// The layer's scales in a network trained with `net` (`None`: the
    /// layer's own parameterization), `base_width` the muP base width, for an
    /// Adam-like optimizer when `adam` (see the table in the README).
    pub fn scale(
        &self,
        fan_in: usize,
        role: Role,
        net: Option<Parameterization>,
        base_width: usize,
        adam: bool,
    ) -> LayerScale {
        let (sw, sb) = (self.w_std, self.b_std.unwrap_or(0.0));
        let n = fan_in as f64;
        let ntk = LayerScale {
            init_w: 1.0,
            mult_w: sw / n.sqrt(),
            init_b: 1.0,
            mult_b: sb,
            lr_w: 1.0,
            lr_b: 1.0,
        };
        let standard = LayerScale {
            init_w: sw / n.sqrt(),
            mult_w: 1.0,
            init_b: sb,
            mult_b: 1.0,
            lr_w: 1.0,
            lr_b: 1.0,
        };
        // The width a muP or mean-field layer is scaled by: its output for
        // the input layer, its input for the others.
        let width = match role {
            Role::Input => self.out,
            _ => fan_in,
        } as f64;
        match net.unwrap_or(self.parameterization) {
            Parameterization::Ntk => ntk,
            Parameterization::Standard => standard,
            Parameterization::Mup => {
                let rho = width / base_width.max(1) as f64;
                match role {
                    Role::Only => standard,
                    Role::Readout => LayerScale {
                        init_w: standard.init_w / rho.sqrt(),
                        lr_w: 1.0 / rho,
                        lr_b: 1.0,
                        ..standard
                    },
                    Role::Input => LayerScale {
                        lr_w: if adam { 1.0 } else { rho },
                        lr_b: if adam { 1.0 } else { rho },
                        ..standard
                    },
                    Role::Hidden => LayerScale {
                        lr_w: if adam { 1.0 / rho } else { 1.0 },
                        lr_b: if adam { 1.0 } else { rho },
                        ..standard
                    },
                }
            }
            Parameterization::MeanField => {
                let mult_w = if role == Role::Readout {
                    sw / n
                } else {
                    ntk.mult_w
                };
                LayerScale {
                    mult_w,
                    lr_w: width,
                    lr_b: width,
                    ..ntk
                }
            }
        }
    }
}
