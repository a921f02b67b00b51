//! Architectures as neural-tangents' `stax` composes them: a list of layers,
//! each of which knows how to initialize its parameters and how it transforms
//! the infinite-width kernels; the finite networks ([`crate::net`]) and the
//! kernels ([`crate::kernel`]) are both built from the same [`Arch`].
//!
//! The canonical form is JSON, a list of layers `[Name, positional args...,
//! {options}]` with neural-tangents' names (see [`parse`] for the grammar and
//! the short form); it is what `report.json` and parameter files store.

mod dense;
pub mod parse;
mod program;

pub use dense::{Dense, LayerScale, Role};
pub use program::{KernelOp, KernelProgram};

use crate::activation::Activation;
use crate::error::{Error, Result};

/// How a Dense layer scales its weights and learning rates.
///
/// `Ntk` and `Standard` are neural-tangents' `parameterization` of `stax.Dense`
/// and can be set per layer. `Mup` (Tensor Programs V, Table 3) and
/// `MeanField` (Mei, Montanari and Nguyen 2018) apply to a whole network,
/// layer by layer according to its [`Role`]; they have no infinite-width
/// kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// `W_std / sqrt(fan_in) * W x + b_std * b` with standard normal `W`, `b`.
    Ntk,
    /// `W x + b` with `W ~ N(0, W_std^2 / fan_in)`, `b ~ N(0, b_std^2)`.
    Standard,
    /// Maximal update parameterization relative to a base width.
    Mup,
    /// Output scaled by `1 / width`, learning rates by the width.
    MeanField,
}

impl Parameterization {
    /// Parses `ntk`, `standard` (`sp`), `mup` (`mu-p`, `muP`) or `mean-field`
    /// (`mf`), in any case.
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

    /// Whether a Dense layer can carry it on its own (and the kernels exist).
    pub fn is_per_layer(&self) -> bool {
        matches!(self, Parameterization::Ntk | Parameterization::Standard)
    }
}

impl std::fmt::Display for Parameterization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One layer of an architecture.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A fully connected layer (`stax.Dense`).
    Dense(Dense),
    /// An elementwise nonlinearity (`stax.Relu`, `stax.Erf`, ...).
    Activation(Activation),
    /// `x + block(x)`: `stax.serial(FanOut(2), parallel(Identity(), serial(block)), FanInSum())`.
    Residual(Vec<Layer>),
    /// Normalization over the features, `(x - mean) / sqrt(eps + var)` (`stax.LayerNorm`).
    LayerNorm {
        /// Added to the variance (neural-tangents' default 1e-12).
        eps: f64,
    },
}

/// neural-tangents' default `eps` of `stax.LayerNorm`.
pub const LAYER_NORM_EPS: f64 = 1e-12;

/// A network: layers applied in order (`stax.serial`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    /// The layers, first applied first.
    pub layers: Vec<Layer>,
}

/// The shorthand of the command line's architecture flags: `depth` times
/// (Dense(`width`) then the activation), then Dense(`d_out`), every Dense
/// with the same `W_std`, `b_std` and parameterization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mlp {
    /// Hidden layers.
    pub depth: usize,
    /// Hidden width.
    pub width: usize,
    /// The nonlinearity after each hidden Dense layer.
    pub activation: Activation,
    /// Weight scale of every Dense layer.
    pub w_std: f64,
    /// Bias scale of every Dense layer (`None`: no biases).
    pub b_std: Option<f64>,
    /// `Ntk` or `Standard` for every Dense layer.
    pub parameterization: Parameterization,
    /// Outputs.
    pub d_out: usize,
}

impl Default for Mlp {
    fn default() -> Self {
        Mlp {
            depth: 3,
            width: 512,
            activation: Activation::RELU,
            w_std: 1.0,
            b_std: Some(0.0),
            parameterization: Parameterization::Ntk,
            d_out: 1,
        }
    }
}

/// Where a Dense layer sits, as [`Arch::dense_layers`] lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseSite<'a> {
    /// Its number among the Dense layers (depth first), as in parameter names.
    pub index: usize,
    /// Width of its input.
    pub fan_in: usize,
    /// The layer.
    pub dense: &'a Dense,
    /// Input, hidden or readout.
    pub role: Role,
}

impl Arch {
    /// The architecture of the command line's shorthand flags.
    pub fn mlp(m: &Mlp) -> Arch {
        let dense = |out| {
            Layer::Dense(Dense {
                out,
                w_std: m.w_std,
                b_std: m.b_std,
                parameterization: m.parameterization,
            })
        };
        let mut layers = Vec::with_capacity(2 * m.depth + 1);
        for _ in 0..m.depth {
            layers.push(dense(m.width));
            layers.push(Layer::Activation(m.activation));
        }
        layers.push(dense(m.d_out));
        Arch { layers }
    }

    /// Parses the JSON form (see [`parse`]).
    pub fn from_json(text: &str) -> Result<Arch> {
        parse::from_json(text)
    }

    /// Parses the JSON form or, if `text` does not start with `[`, the short form.
    pub fn parse(text: &str) -> Result<Arch> {
        if text.trim_start().starts_with(['[', '{']) {
            parse::from_json(text)
        } else {
            parse::from_short(text)
        }
    }

    /// The canonical JSON value (a list of layers).
    pub fn to_json(&self) -> serde_json::Value {
        parse::to_json(&self.layers)
    }

    /// The width of every layer's output, checking the composition for an
    /// input of `d_in` features: widths at least 1, residual blocks that end
    /// in Dense and keep the width, LayerNorm over more than one feature.
    /// Errors name the layer's position (1-based, through blocks).
    pub fn output_width(&self, d_in: usize) -> Result<usize> {
        if d_in == 0 {
            return Err(Error::invalid("inputs must have at least one feature"));
        }
        if self.layers.is_empty() {
            return Err(Error::invalid("the architecture has no layer"));
        }
        check_block(&self.layers, d_in, "")
    }

    /// Every Dense layer, depth first (the order of parameter names), with
    /// its fan-in and role (the first is the input layer, the last the
    /// readout, the others hidden, inside residual blocks too).
    pub fn dense_layers(&self, d_in: usize) -> Vec<DenseSite<'_>> {
        let mut out = Vec::new();
        collect_dense(&self.layers, d_in, &mut out);
        let n = out.len();
        for (i, s) in out.iter_mut().enumerate() {
            s.index = i;
            s.role = if n == 1 {
                Role::Only
            } else if i == 0 {
                Role::Input
            } else if i == n - 1 {
                Role::Readout
            } else {
                Role::Hidden
            };
        }
        out
    }

    /// The same architecture with every hidden Dense layer (all but the
    /// last Dense layer) `width` wide: how a width sweep scales a network.
    pub fn with_width(&self, width: usize) -> Arch {
        fn walk(layers: &[Layer], width: usize, left: &mut usize) -> Vec<Layer> {
            layers
                .iter()
                .map(|l| match l {
                    Layer::Dense(d) => {
                        *left -= 1;
                        let out = if *left == 0 { d.out } else { width };
                        Layer::Dense(Dense { out, ..*d })
                    }
                    Layer::Residual(b) => Layer::Residual(walk(b, width, left)),
                    other => other.clone(),
                })
                .collect()
        }
        let mut left = self.dense_layers(1).len();
        Arch {
            layers: walk(&self.layers, width, &mut left),
        }
    }

    /// Whether any layer is of the kind `pred` picks (through blocks).
    pub fn any(&self, pred: &dyn Fn(&Layer) -> bool) -> bool {
        fn walk(layers: &[Layer], pred: &dyn Fn(&Layer) -> bool) -> bool {
            layers
                .iter()
                .any(|l| pred(l) || matches!(l, Layer::Residual(b) if walk(b, pred)))
        }
        walk(&self.layers, pred)
    }

    /// Checks the composition for `d_in` features and compiles the
    /// infinite-width recursion of its output kernels.
    pub fn kernel_program(&self, d_in: usize) -> Result<KernelProgram> {
        self.output_width(d_in)?;
        KernelProgram::compile(self, d_in)
    }
}

impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&parse::to_short(&self.layers))
    }
}

/// 1-based position of layer `i` below `prefix`, for messages.
pub(crate) fn position(prefix: &str, i: usize) -> String {
    if prefix.is_empty() {
        format!("layer {}", i + 1)
    } else {
        format!("{prefix} > {}", i + 1)
    }
}

fn check_block(layers: &[Layer], mut width: usize, prefix: &str) -> Result<usize> {
    for (i, layer) in layers.iter().enumerate() {
        let at = position(prefix, i);
        let name = parse::layer_name(layer);
        match layer {
            Layer::Dense(d) => {
                if let Some(m) = d.problem() {
                    return Err(Error::invalid(format!("{at} ({name}): {m}")));
                }
                width = d.out;
            }
            Layer::Activation(_) => {}
            Layer::LayerNorm { eps } => {
                if width < 2 {
                    return Err(Error::invalid(format!(
                        "{at} (LayerNorm): normalizes over a layer of width {width}; it needs at least 2 features"
                    )));
                }
                if !(eps.is_finite() && *eps >= 0.0) {
                    return Err(Error::invalid(format!(
                        "{at} (LayerNorm): eps must be finite and non-negative, got {eps}"
                    )));
                }
            }
            Layer::Residual(block) => {
                if block.is_empty() {
                    return Err(Error::invalid(format!(
                        "{at} (Residual): the block has no layer"
                    )));
                }
                if !ends_independent(block) {
                    return Err(Error::invalid(format!(
                        "{at} (Residual): the block must end with a Dense layer (x + block(x) needs a block output independent of x)"
                    )));
                }
                let out = check_block(block, width, &at)?;
                if out != width {
                    return Err(Error::invalid(format!(
                        "{at} (Residual): the block outputs width {out} but its input has width {width}"
                    )));
                }
            }
        }
    }
    Ok(width)
}

/// Whether a block's output is independent of its input at infinite width:
/// it ends with a Dense layer (fresh weights), or with a residual block
/// whose input and block both do.
fn ends_independent(layers: &[Layer]) -> bool {
    match layers.split_last() {
        Some((Layer::Dense(_), _)) => true,
        Some((Layer::Residual(b), before)) => ends_independent(before) && ends_independent(b),
        _ => false,
    }
}

fn collect_dense<'a>(layers: &'a [Layer], mut width: usize, out: &mut Vec<DenseSite<'a>>) -> usize {
    for layer in layers {
        match layer {
            Layer::Dense(d) => {
                out.push(DenseSite {
                    index: 0,
                    fan_in: width,
                    dense: d,
                    role: Role::Hidden,
                });
                width = d.out;
            }
            Layer::Residual(block) => {
                collect_dense(block, width, out);
            }
            Layer::Activation(_) | Layer::LayerNorm { .. } => {}
        }
    }
    width
}
