//! Finite networks of any [`Arch`], in ensembles: E independently
//! initialized members trained together, every dispatch covering all members.
//!
//! # Parameterizations
//!
//! Each Dense layer (fan-in `n`) stores trainable `W` and `b` and computes
//! `z = mult_w * W x + mult_b * b` ([`LayerScale`]). With `sigma_w = W_std`,
//! `sigma_b = b_std` and, for muP, `rho = width / base_width`:
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
//! `ntk` and `standard` are exactly neural-tangents' `stax.Dense`, so the
//! infinite-width limit of a widenet network is the kernel
//! [`crate::kernel`] computes for the same architecture. `mup` is Table 3
//! of Tensor Programs V (Yang et al. 2021, <https://arxiv.org/abs/2203.03466>)
//! written relative to a base width at which it coincides with `standard`;
//! `mean-field` scales the output by `1/width` (Mei, Montanari and Nguyen
//! 2018) and every learning rate by the width. Both apply to a whole network
//! by each Dense layer's [`Role`](crate::arch::Role): the first Dense layer is
//! the input layer (its width is its fan-out), the last the readout, every
//! other one (inside residual blocks too) a hidden layer (its width is its
//! fan-in).

pub mod direction;
pub mod empirical;
pub mod ensemble;
pub mod hvp;
pub mod params;
mod plan;
pub mod spectrum;
pub mod train;

pub use ensemble::Ensemble;
pub use params::Params;

use crate::activation::Activation;
use crate::arch::{Arch, Dense, DenseSite, Layer, LayerScale, Mlp, Parameterization};
use crate::error::{Error, Result};

/// An ensemble's network: its architecture, input size, members and how its
/// layers are scaled; saved as the metadata of its parameter file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetSpec {
    /// The layers.
    pub arch: Arch,
    /// Input features.
    pub d_in: usize,
    /// Members of the ensemble.
    pub ensemble: usize,
    /// `None`: every Dense layer as its own parameterization says; else
    /// this one for every Dense layer (muP and mean-field by role).
    #[serde(default)]
    pub parameterization: Option<Parameterization>,
    /// muP's base width (where it coincides with `standard`).
    #[serde(default = "default_base")]
    pub base_width: usize,
}

fn default_base() -> usize {
    64
}

/// The command line's MLP shorthand for a network: `depth` times
/// (Dense(`width`), activation), then Dense(`d_out`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpSpec {
    /// Input features.
    pub d_in: usize,
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Outputs.
    pub d_out: usize,
    /// The nonlinearity.
    pub activation: Activation,
    /// Any of the four parameterizations.
    pub parameterization: Parameterization,
    /// Weight scale.
    pub w_std: f64,
    /// Bias scale.
    pub b_std: f64,
    /// muP's base width.
    pub base_width: usize,
    /// Members.
    pub ensemble: usize,
}

impl MlpSpec {
    /// The network this shorthand describes.
    pub fn net(&self) -> NetSpec {
        let per_layer = self.parameterization.is_per_layer();
        NetSpec {
            arch: Arch::mlp(&Mlp {
                depth: self.depth,
                width: self.width,
                activation: self.activation,
                w_std: self.w_std,
                b_std: Some(self.b_std),
                parameterization: if per_layer {
                    self.parameterization
                } else {
                    Parameterization::Ntk
                },
                d_out: self.d_out,
            }),
            d_in: self.d_in,
            ensemble: self.ensemble,
            parameterization: (!per_layer).then_some(self.parameterization),
            base_width: self.base_width,
        }
    }
}

/// One Dense layer of a network, with everything its passes need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseLayer {
    /// Its number among the Dense layers (parameter names use it).
    pub index: usize,
    /// Input width.
    pub fan_in: usize,
    /// Output width.
    pub fan_out: usize,
    /// The layer as specified.
    pub dense: Dense,
    /// Where it sits.
    pub role: crate::arch::Role,
}

impl NetSpec {
    /// Checks the architecture for `d_in` inputs and the numbers; returns the
    /// output width.
    pub fn validate(&self) -> Result<usize> {
        if self.ensemble == 0 {
            return Err(Error::invalid("the ensemble needs at least 1 member"));
        }
        let d_out = self.arch.output_width(self.d_in)?;
        if !matches!(self.arch.layers.first(), Some(Layer::Dense(_))) {
            return Err(Error::invalid(
                "a finite network must start with a Dense layer (layer 1 reads the inputs)",
            ));
        }
        if self.parameterization == Some(Parameterization::Mup) && self.base_width == 0 {
            return Err(Error::invalid("the muP base width must be at least 1"));
        }
        let params = self
            .dense_layers()
            .iter()
            .map(|l| (l.fan_in + 1) * l.fan_out)
            .sum::<usize>()
            .saturating_mul(self.ensemble);
        if params > (1usize << 32) {
            return Err(Error::invalid(format!(
                "{params} parameters in all: more than 2^32"
            )));
        }
        Ok(d_out)
    }

    /// The output width (0 when the architecture does not check).
    pub fn d_out(&self) -> usize {
        self.arch.output_width(self.d_in).unwrap_or(0)
    }

    /// The Dense layers in parameter order.
    pub fn dense_layers(&self) -> Vec<DenseLayer> {
        self.arch
            .dense_layers(self.d_in)
            .into_iter()
            .map(|s: DenseSite<'_>| DenseLayer {
                index: s.index,
                fan_in: s.fan_in,
                fan_out: s.dense.out,
                dense: *s.dense,
                role: s.role,
            })
            .collect()
    }

    /// The scales of a Dense layer for an Adam-like optimizer (`adam`) or an
    /// SGD-like one.
    pub fn scale(&self, l: &DenseLayer, adam: bool) -> LayerScale {
        l.dense.scale(
            l.fan_in,
            l.role,
            self.parameterization,
            self.base_width,
            adam,
        )
    }

    /// The same network with `ensemble` members.
    pub fn with_ensemble(&self, ensemble: usize) -> NetSpec {
        NetSpec {
            ensemble,
            ..self.clone()
        }
    }
}
