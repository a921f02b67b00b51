//! The architecture grammar.
//!
//! **JSON** (canonical): a list of layers, each `[Name, positional args...,
//! {options}]`, names as neural-tangents' `stax` spells them (matched in any
//! case):
//!
//! | layer | positional | options |
//! |---|---|---|
//! | `["Dense", out_dim]` | `out_dim`, then optionally `W_std`, `b_std` | `W_std` (1), `b_std` (none: no bias), `parameterization` (`ntk` or `standard`) |
//! | `["Relu"]`, `["Abs"]`, `["Gelu"]`, `["Sign"]`, `["Identity"]`, `["Tanh"]`, `["Sigmoid"]` | | |
//! | `["LeakyRelu", alpha]` | `alpha` (0.01) | `alpha` |
//! | `["ABRelu", a, b]` | `a`, `b` | `a`, `b` |
//! | `["Erf", a, b, c]` | `a * erf(b x) + c`, defaults 1, 1, 0 | `a`, `b`, `c` |
//! | `["Residual", [layers...]]` | the block (or its layers one by one) | |
//! | `["LayerNorm"]` | | `eps` (1e-12) |
//!
//! **Short form**: the same layers as `Name(args)` separated by commas, with
//! options as `key=value` and `N*(layers)` for repetition:
//! `Dense(512, W_std=1.5, b_std=0.1), Relu, 2*(Residual(Relu, Dense(512))), LayerNorm, Dense(1)`.

use super::{Dense, LAYER_NORM_EPS, Layer, Parameterization, position};
use crate::activation::Activation;
use crate::error::{Error, Result};
use serde_json::{Map, Value, json};

/// Parses the JSON form.
pub fn from_json(text: &str) -> Result<super::Arch> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("architecture: not valid JSON: {e}")))?;
    from_value(&v)
}

/// Parses a JSON value of the canonical form.
pub fn from_value(v: &Value) -> Result<super::Arch> {
    let Value::Array(items) = v else {
        return Err(Error::invalid(
            "architecture: expected a JSON list of layers, like [[\"Dense\", 512], [\"Relu\"], [\"Dense\", 1]]",
        ));
    };
    Ok(super::Arch {
        layers: layers(items, "")?,
    })
}

fn layers(items: &[Value], prefix: &str) -> Result<Vec<Layer>> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| layer(v, &position(prefix, i)))
        .collect()
}

fn layer(v: &Value, at: &str) -> Result<Layer> {
    let bad = |msg: String| Error::invalid(format!("architecture, {at}: {msg}"));
    let Value::Array(parts) = v else {
        return Err(bad(format!("expected [Name, args...], got {v}")));
    };
    let Some(Value::String(name)) = parts.first() else {
        return Err(bad("expected a layer name first, like [\"Relu\"]".into()));
    };
    let mut args: Vec<&Value> = parts[1..].iter().collect();
    let opts: Map<String, Value> = match args.last() {
        Some(Value::Object(m)) => {
            let m = m.clone();
            args.pop();
            m
        }
        _ => Map::new(),
    };
    let lname = name.to_ascii_lowercase();
    let at_named = format!("{at} ({name})");
    let bad = |msg: String| Error::invalid(format!("architecture, {at_named}: {msg}"));
    let num = |v: &Value, what: &str| -> Result<f64> {
        v.as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(format!("{what} must be a finite number, got {v}")))
    };
    let allow = |keys: &[&str]| -> Result<()> {
        for k in opts.keys() {
            if !keys.iter().any(|a| a.eq_ignore_ascii_case(k)) {
                return Err(bad(format!(
                    "unknown option '{k}'{}",
                    if keys.is_empty() {
                        " (this layer takes none)".to_string()
                    } else {
                        format!(" (expected {})", keys.join(", "))
                    }
                )));
            }
        }
        Ok(())
    };
    let opt = |key: &str| {
        opts.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    };
    let max_args = |n: usize, what: &str| -> Result<()> {
        if args.len() > n {
            Err(bad(format!(
                "takes {} positional argument{}{what}, got {}",
                if n == 0 {
                    "no".to_string()
                } else {
                    format!("at most {n}")
                },
                if n == 1 { "" } else { "s" },
                args.len()
            )))
        } else {
            Ok(())
        }
    };
    // Numbers given positionally or as options, with defaults.
    let params = |names: &[&str], defaults: &[f64]| -> Result<Vec<f64>> {
        allow(names)?;
        max_args(names.len(), &format!(" ({})", names.join(", ")))?;
        names
            .iter()
            .enumerate()
            .map(|(i, n)| match (args.get(i).copied(), opt(n)) {
                (Some(_), Some(_)) => Err(bad(format!("{n} given twice"))),
                (Some(v), None) | (None, Some(v)) => num(v, n),
                (None, None) => Ok(defaults[i]),
            })
            .collect()
    };
    let act = |a: Activation| -> Result<Layer> {
        allow(&[])?;
        max_args(0, "")?;
        Ok(Layer::Activation(a))
    };
    match lname.as_str() {
        "dense" => {
            allow(&["W_std", "b_std", "parameterization"])?;
            max_args(3, " (out_dim, W_std, b_std)")?;
            let out = match args.first() {
                Some(v) => v
                    .as_u64()
                    .filter(|&o| o >= 1)
                    .ok_or_else(|| bad(format!("out_dim must be a positive integer, got {v}")))? as usize,
                None => return Err(bad("needs out_dim, like [\"Dense\", 512]".into())),
            };
            let pick = |i: usize, key: &str| -> Result<Option<f64>> {
                match (args.get(i).copied(), opt(key)) {
                    (Some(_), Some(_)) => Err(bad(format!("{key} given twice"))),
                    (Some(Value::Null), None) | (None, Some(Value::Null)) | (None, None) => Ok(None),
                    (Some(v), None) | (None, Some(v)) => num(v, key).map(Some),
                }
            };
            let w_std = pick(1, "W_std")?.unwrap_or(1.0);
            let b_std = pick(2, "b_std")?;
            let parameterization = match opt("parameterization") {
                None => Parameterization::Ntk,
                Some(Value::String(s)) => Parameterization::parse(s).map_err(|e| bad(e.to_string()))?,
                Some(v) => return Err(bad(format!("parameterization must be \"ntk\" or \"standard\", got {v}"))),
            };
            let d = Dense {
                out,
                w_std,
                b_std,
                parameterization,
            };
            if let Some(m) = d.problem() {
                return Err(bad(m));
            }
            Ok(Layer::Dense(d))
        }
        "relu" => act(Activation::RELU),
        "abs" => act(Activation::AbRelu { a: -1.0, b: 1.0 }),
        "gelu" => act(Activation::Gelu),
        "sign" => act(Activation::Sign),
        "identity" => act(Activation::Identity),
        "tanh" => act(Activation::Tanh),
        "sigmoid" => act(Activation::Sigmoid),
        "leakyrelu" | "leaky_relu" => {
            let v = params(&["alpha"], &[0.01])?;
            Ok(Layer::Activation(Activation::AbRelu { a: v[0], b: 1.0 }))
        }
        "abrelu" => {
            if args.len() + opts.len() < 2 {
                return Err(bad("needs a and b, like [\"ABRelu\", -0.5, 1.5]".into()));
            }
            let v = params(&["a", "b"], &[0.0, 1.0])?;
            Ok(Layer::Activation(Activation::AbRelu { a: v[0], b: v[1] }))
        }
        "erf" => {
            let v = params(&["a", "b", "c"], &[1.0, 1.0, 0.0])?;
            Ok(Layer::Activation(Activation::Erf { a: v[0], b: v[1], c: v[2] }))
        }
        "layernorm" => {
            let v = params(&["eps"], &[LAYER_NORM_EPS])?;
            Ok(Layer::LayerNorm { eps: v[0] })
        }
        "residual" => {
            allow(&[])?;
            let block: Vec<Value> = match args.as_slice() {
                [Value::Array(inner)] if inner.first().is_some_and(Value::is_array) || inner.is_empty() => inner.clone(),
                _ => args.iter().map(|v| (*v).clone()).collect(),
            };
            Ok(Layer::Residual(layers(&block, at)?))
        }
        _ => Err(bad(
            "unknown layer (expected Dense, Relu, LeakyRelu, Abs, ABRelu, Erf, Gelu, Sign, Identity, Tanh, Sigmoid, Residual or LayerNorm)".into(),
        )),
    }
}

/// The name a layer is written with.
pub fn layer_name(l: &Layer) -> &'static str {
    match l {
        Layer::Dense(_) => "Dense",
        Layer::Activation(a) => a.stax_name(),
        Layer::Residual(_) => "Residual",
        Layer::LayerNorm { .. } => "LayerNorm",
    }
}

/// The canonical JSON of a list of layers (defaults left out).
pub fn to_json(layers: &[Layer]) -> Value {
    Value::Array(layers.iter().map(layer_json).collect())
}

fn layer_json(l: &Layer) -> Value {
    let name = layer_name(l);
    match l {
        Layer::Dense(d) => {
            let mut o = Map::new();
            if d.w_std != 1.0 {
                o.insert("W_std".into(), json!(d.w_std));
            }
            if let Some(b) = d.b_std {
                o.insert("b_std".into(), json!(b));
            }
            if d.parameterization != Parameterization::Ntk {
                o.insert("parameterization".into(), json!(d.parameterization.name()));
            }
            if o.is_empty() {
                json!([name, d.out])
            } else {
                json!([name, d.out, o])
            }
        }
        Layer::Activation(a) => match *a {
            Activation::AbRelu { a, .. } if name == "LeakyRelu" => json!([name, a]),
            Activation::AbRelu { a, b } if name == "ABRelu" => json!([name, a, b]),
            Activation::Erf { a, b, c } if (a, b, c) != (1.0, 1.0, 0.0) => json!([name, a, b, c]),
            _ => json!([name]),
        },
        Layer::Residual(block) => json!([name, to_json(block)]),
        Layer::LayerNorm { eps } => {
            if *eps == LAYER_NORM_EPS {
                json!([name])
            } else {
                json!([name, {"eps": eps}])
            }
        }
    }
}

/// The short form of a list of layers.
pub fn to_short(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(layer_short)
        .collect::<Vec<_>>()
        .join(", ")
}

fn layer_short(l: &Layer) -> String {
    let v = layer_json(l);
    let parts = v.as_array().cloned().unwrap_or_default();
    let name = layer_name(l);
    if let Layer::Residual(block) = l {
        return format!("Residual({})", to_short(block));
    }
    let args: Vec<String> = parts[1..]
        .iter()
        .flat_map(|a| match a {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    _ => format!("{k}={v}"),
                })
                .collect::<Vec<_>>(),
            other => vec![other.to_string()],
        })
        .collect();
    if args.is_empty() {
        name.to_string()
    } else {
        format!("{name}({})", args.join(", "))
    }
}

/// Parses the short form.
pub fn from_short(text: &str) -> Result<super::Arch> {
    let mut p = Short {
        s: text.as_bytes(),
        i: 0,
    };
    let items = p.items()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("expected ',' or the end"));
    }
    from_value(&Value::Array(items))
}

struct Short<'a> {
    s: &'a [u8],
    i: usize,
}

impl Short<'_> {
    fn err(&self, msg: &str) -> Error {
        let text = String::from_utf8_lossy(self.s);
        Error::invalid(format!(
            "architecture: {msg} at character {} of '{text}'",
            self.i + 1
        ))
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_.-+".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn items(&mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let w = self.word();
            if w.is_empty() {
                return Err(self.err("expected a layer name"));
            }
            if let Ok(n) = w.parse::<usize>() {
                if !self.eat(b'*') || !self.eat(b'(') {
                    return Err(self.err("expected N*(layers)"));
                }
                let inner = self.items()?;
                if !self.eat(b')') {
                    return Err(self.err("expected ')'"));
                }
                for _ in 0..n {
                    out.extend(inner.iter().cloned());
                }
            } else {
                out.push(self.item(w)?);
            }
            if !self.eat(b',') {
                return Ok(out);
            }
        }
    }

    fn item(&mut self, name: String) -> Result<Value> {
        let mut parts = vec![Value::String(name.clone())];
        if !self.eat(b'(') {
            return Ok(Value::Array(parts));
        }
        if self.eat(b')') {
            return Ok(Value::Array(parts));
        }
        if name.eq_ignore_ascii_case("residual") {
            let block = self.items()?;
            if !self.eat(b')') {
                return Err(self.err("expected ')' after the residual block"));
            }
            parts.push(Value::Array(block));
            return Ok(Value::Array(parts));
        }
        let mut opts = Map::new();
        loop {
            let w = self.word();
            if w.is_empty() {
                return Err(self.err("expected an argument"));
            }
            if self.eat(b'=') {
                let v = self.word();
                let value = match v.parse::<f64>() {
                    Ok(x) => json!(x),
                    Err(_) if v.eq_ignore_ascii_case("none") => Value::Null,
                    Err(_) => Value::String(v),
                };
                opts.insert(w, value);
            } else if let Ok(x) = w.parse::<f64>() {
                if x.fract() == 0.0 && (0.0..1e15).contains(&x) {
                    parts.push(json!(x as u64));
                } else {
                    parts.push(json!(x));
                }
            } else {
                return Err(self.err(&format!("'{w}' is not a number or key=value")));
            }
            if self.eat(b')') {
                break;
            }
            if !self.eat(b',') {
                return Err(self.err("expected ',' or ')'"));
            }
        }
        if !opts.is_empty() {
            parts.push(Value::Object(opts));
        }
        Ok(Value::Array(parts))
    }
}

#[cfg(test)]
mod tests {

    use crate::arch::Arch;

    #[test]
    fn short_and_json_forms_agree_and_round_trip() {
        let short = "Dense(512, W_std=1.5, b_std=0.1), Relu, 2*(Residual(Relu, Dense(512, W_std=1.2))), LayerNorm, Erf(2, 0.5, 0.1), Dense(1)";
        let a = Arch::parse(short).unwrap();
        assert_eq!(a.layers.len(), 7);
        let json = a.to_json().to_string();
        let b = Arch::parse(&json).unwrap();
        assert_eq!(a, b);
        assert_eq!(Arch::parse(&a.to_string()).unwrap(), a);
        assert_eq!(a.output_width(5).unwrap(), 1);
    }

    #[test]
    fn bad_specs_name_the_layer() {
        for (spec, want) in [
            (
                "[[\"Dense\", 4], [\"Swish\"]]",
                "layer 2 (Swish): unknown layer",
            ),
            (
                "[[\"Dense\", 4, 1, 2, 3]]",
                "layer 1 (Dense): takes at most 3",
            ),
            ("[[\"Dense\"]]", "needs out_dim"),
            (
                "[[\"Dense\", 4], [\"Relu\", 3]]",
                "layer 2 (Relu): takes no positional",
            ),
            ("[[\"Dense\", 4, {\"w_sd\": 1}]]", "unknown option 'w_sd'"),
            (
                "[[\"Dense\", 4], [\"Residual\", [[\"Dense\", 4], [\"Relu\"], [\"Dense\", 4, {\"parameterization\": \"mup\"}]]]]",
                "layer 2 > 3 (Dense)",
            ),
            ("{\"a\": 1}", "expected a JSON list"),
            ("[[\"Dense\", 4", "not valid JSON"),
        ] {
            let e = Arch::parse(spec).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
        for (spec, want) in [
            (
                "[[\"Dense\", 4], [\"Residual\", [[\"Relu\"], [\"Dense\", 3]]], [\"Dense\", 1]]",
                "layer 2 (Residual): the block outputs width 3",
            ),
            (
                "[[\"Dense\", 4], [\"Residual\", [[\"Dense\", 4], [\"Relu\"]]], [\"Dense\", 1]]",
                "must end with a Dense",
            ),
            (
                "[[\"Dense\", 1], [\"LayerNorm\"], [\"Dense\", 1]]",
                "layer 2 (LayerNorm): normalizes over a layer of width 1",
            ),
        ] {
            let e = Arch::parse(spec)
                .unwrap()
                .output_width(3)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }
}
