//! Elementwise activations: their values, derivatives, the parameters they
//! carry and (in [`kernel`]) how they transform the infinite-width kernels.
//! This is the CPU twin of `shaders/activation.wgsl` (same codes, same
//! formulas) and the single place where activation names are parsed.

pub mod kernel;

use crate::error::{Error, Result};
use std::fmt;

/// An elementwise nonlinearity, in neural-tangents' conventions.
///
/// ReLU, leaky ReLU and abs are all `ABRelu(a, b) = a * min(x, 0) + b * max(x, 0)`
/// (neural-tangents `stax.ABRelu`); `Erf { a, b, c }` is `a * erf(b * x) + c`
/// (`stax.Erf`); `Gelu` is the exact `x * Phi(x)` (`stax.Gelu(approximate=False)`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    /// `x` (neural-tangents `stax.Identity`).
    Identity,
    /// `a * min(x, 0) + b * max(x, 0)`.
    AbRelu {
        /// Slope for negative inputs.
        a: f64,
        /// Slope for positive inputs.
        b: f64,
    },
    /// `a * erf(b * x) + c`.
    Erf {
        /// Output scale.
        a: f64,
        /// Input scale.
        b: f64,
        /// Shift.
        c: f64,
    },
    /// `tanh(x)` (kernel by Gauss-Hermite quadrature).
    Tanh,
    /// `1 / (1 + exp(-x))` (kernel by Gauss-Hermite quadrature).
    Sigmoid,
    /// `x * Phi(x)`, Phi the standard normal CDF.
    Gelu,
    /// `sign(x)`.
    Sign,
}

/// Shader codes, shared with `shaders/activation.wgsl` (a test reads them there).
pub mod code {
    #![allow(missing_docs)]
    pub const IDENTITY: u32 = 0;
    pub const ABRELU: u32 = 1;
    pub const ERF: u32 = 2;
    pub const TANH: u32 = 3;
    pub const GELU: u32 = 4;
    pub const SIGN: u32 = 5;
    pub const SIGMOID: u32 = 6;
}

impl Activation {
    /// ReLU, `ABRelu(0, 1)`.
    pub const RELU: Activation = Activation::AbRelu { a: 0.0, b: 1.0 };

    /// Parses `identity|linear`, `relu`, `leaky-relu[:ALPHA]` (default 0.01),
    /// `abs`, `abrelu:A,B`, `erf[:A,B,C]` (default 1,1,0), `tanh`, `sigmoid`,
    /// `gelu`, `sign`, in any case.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, args) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let nums = |n: usize, default: &[f64]| -> Result<Vec<f64>> {
            let Some(a) = args else {
                return Ok(default.to_vec());
            };
            let v: Vec<f64> = a
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    Error::invalid(format!("activation '{s}': parameters must be numbers"))
                })?;
            if v.len() != n || v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "activation '{s}': expected {n} finite parameter(s) after ':'"
                )));
            }
            Ok(v)
        };
        let no_args = |act: Activation| -> Result<Activation> {
            if args.is_some() {
                return Err(Error::invalid(format!(
                    "activation '{name}' takes no parameters"
                )));
            }
            Ok(act)
        };
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "identity" | "linear" => no_args(Activation::Identity),
            "relu" => no_args(Activation::RELU),
            "abs" => no_args(Activation::AbRelu { a: -1.0, b: 1.0 }),
            "leaky-relu" | "leakyrelu" => {
                let v = nums(1, &[0.01])?;
                Ok(Activation::AbRelu { a: v[0], b: 1.0 })
            }
            "abrelu" => {
                let v = nums(2, &[0.0, 1.0])?;
                Ok(Activation::AbRelu { a: v[0], b: v[1] })
            }
            "erf" => {
                let v = nums(3, &[1.0, 1.0, 0.0])?;
                Ok(Activation::Erf {
                    a: v[0],
                    b: v[1],
                    c: v[2],
                })
            }
            "tanh" => no_args(Activation::Tanh),
            "sigmoid" => no_args(Activation::Sigmoid),
            "gelu" => no_args(Activation::Gelu),
            "sign" => no_args(Activation::Sign),
            _ => Err(Error::invalid(format!(
                "unknown activation '{s}' (expected identity, relu, leaky-relu[:ALPHA], abs, abrelu:A,B, erf[:A,B,C], tanh, sigmoid, gelu, sign)"
            ))),
        }
    }

    /// The shader code and its three parameters.
    pub fn shader_code(&self) -> (u32, [f32; 3]) {
        match *self {
            Activation::Identity => (code::IDENTITY, [0.0; 3]),
            Activation::AbRelu { a, b } => (code::ABRELU, [a as f32, b as f32, 0.0]),
            Activation::Erf { a, b, c } => (code::ERF, [a as f32, b as f32, c as f32]),
            Activation::Tanh => (code::TANH, [0.0; 3]),
            Activation::Sigmoid => (code::SIGMOID, [0.0; 3]),
            Activation::Gelu => (code::GELU, [0.0; 3]),
            Activation::Sign => (code::SIGN, [0.0; 3]),
        }
    }

    /// The activation's value at `x`, in f64.
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Activation::Identity => x,
            Activation::AbRelu { a, b } => a * x.min(0.0) + b * x.max(0.0),
            Activation::Erf { a, b, c } => a * libm::erf(b * x) + c,
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Gelu => x * normal_cdf(x),
            Activation::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The derivative at `x`, in f64 (at the kinks of ABRelu: `b` for x > 0, else `a`;
    /// zero for sign, as autodiff frameworks do).
    pub fn derivative(&self, x: f64) -> f64 {
        match *self {
            Activation::Identity => 1.0,
            Activation::AbRelu { a, b } => {
                if x > 0.0 {
                    b
                } else {
                    a
                }
            }
            Activation::Erf { a, b, .. } => {
                a * b * std::f64::consts::FRAC_2_SQRT_PI * (-(b * x) * (b * x)).exp()
            }
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::Gelu => normal_cdf(x) + x * normal_pdf(x),
            Activation::Sign => 0.0,
        }
    }

    /// The second derivative at `x`, in f64 (zero for ABRelu and sign away
    /// from their kinks, and at them, as autodiff frameworks take it): what
    /// the Hessian-vector product of a network needs of its nonlinearities.
    pub fn second_derivative(&self, x: f64) -> f64 {
        match *self {
            Activation::Identity | Activation::AbRelu { .. } | Activation::Sign => 0.0,
            Activation::Erf { b, .. } => -2.0 * b * b * x * self.derivative(x),
            Activation::Tanh => {
                let t = x.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s) * (1.0 - 2.0 * s)
            }
            Activation::Gelu => normal_pdf(x) * (2.0 - x * x),
        }
    }

    /// Whether the infinite-width kernel of this activation has a closed form
    /// (else it is computed by Gauss-Hermite quadrature).
    pub fn has_closed_form(&self) -> bool {
        !matches!(self, Activation::Tanh | Activation::Sigmoid)
    }

    /// neural-tangents' name of the layer (`Relu`, `LeakyRelu`, `Erf`, ...).
    pub fn stax_name(&self) -> &'static str {
        match *self {
            Activation::Identity => "Identity",
            Activation::AbRelu { a, b } if a == 0.0 && b == 1.0 => "Relu",
            Activation::AbRelu { a, b } if a == -1.0 && b == 1.0 => "Abs",
            Activation::AbRelu { b: 1.0, .. } => "LeakyRelu",
            Activation::AbRelu { .. } => "ABRelu",
            Activation::Erf { .. } => "Erf",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::Gelu => "Gelu",
            Activation::Sign => "Sign",
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Activation::Identity => write!(f, "identity"),
            Activation::AbRelu { a, b } if a == 0.0 && b == 1.0 => write!(f, "relu"),
            Activation::AbRelu { a, b } if a == -1.0 && b == 1.0 => write!(f, "abs"),
            Activation::AbRelu { a, b: 1.0 } => write!(f, "leaky-relu:{a}"),
            Activation::AbRelu { a, b } => write!(f, "abrelu:{a},{b}"),
            Activation::Erf { a, b, c } if a == 1.0 && b == 1.0 && c == 0.0 => write!(f, "erf"),
            Activation::Erf { a, b, c } => write!(f, "erf:{a},{b},{c}"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::Sign => write!(f, "sign"),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Activation::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_through_display() {
        for s in [
            "identity",
            "relu",
            "abs",
            "leaky-relu:0.1",
            "abrelu:0.5,2",
            "erf",
            "erf:2,0.5,0.1",
            "tanh",
            "sigmoid",
            "gelu",
            "sign",
        ] {
            let a = Activation::parse(s).unwrap();
            assert_eq!(Activation::parse(&a.to_string()).unwrap(), a, "{s}");
        }
        assert!(Activation::parse("swish").is_err());
        assert!(Activation::parse("relu:1").is_err());
        assert!(Activation::parse("erf:1,2").is_err());
        assert!(Activation::parse("leaky-relu:nan").is_err());
    }

    #[test]
    fn first_and_second_derivatives_match_central_differences() {
        let acts = [
            Activation::Identity,
            Activation::AbRelu { a: 0.2, b: 1.5 },
            Activation::Erf {
                a: 1.3,
                b: 0.7,
                c: 0.2,
            },
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
        ];
        for act in acts {
            for &x in &[-2.1, -0.7, 0.3, 1.9] {
                let h = 1e-6;
                let fd = (act.apply(x + h) - act.apply(x - h)) / (2.0 * h);
                assert!(
                    (fd - act.derivative(x)).abs() < 1e-7,
                    "{act} at {x}: {fd} vs {}",
                    act.derivative(x)
                );
                let fd2 = (act.derivative(x + h) - act.derivative(x - h)) / (2.0 * h);
                assert!(
                    (fd2 - act.second_derivative(x)).abs() < 1e-7,
                    "{act}'' at {x}: {fd2} vs {}",
                    act.second_derivative(x)
                );
            }
        }
    }
}
