//! An ensemble's parameters on the host: seeded initialization and the
//! safetensors file format (`layers.{l}.weight` `[E, fan_out, fan_in]`,
//! `layers.{l}.bias` `[E, fan_out]` for the Dense layers numbered depth first,
//! float32; a layer without bias has no bias tensor; the network as JSON in
//! the metadata under `widenet.spec`).

use super::{MlpSpec, NetSpec};
use crate::error::{Error, Result};
use crate::rng::Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Parameters of every Dense layer (in order), members one after another.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The network.
    pub spec: NetSpec,
    /// `[E, fan_out, fan_in]` per Dense layer.
    pub weights: Vec<Vec<f32>>,
    /// `[E, fan_out]` per Dense layer that has a bias.
    pub biases: Vec<Option<Vec<f32>>>,
}

const SPEC_KEY: &str = "widenet.spec";

impl Params {
    /// Seeded initialization: member `e`, layer `l` draws its weights from
    /// stream `(e, 2l)` and its biases from stream `(e, 2l + 1)` of `seed`, so
    /// the same seed gives the same numbers on every machine and backend, and a
    /// member does not depend on the ensemble's size.
    pub fn init(spec: &NetSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for layer in spec.dense_layers() {
            let (l, fan_in, fan_out) = (layer.index, layer.fan_in, layer.fan_out);
            let s = spec.scale(&layer, false);
            let mut w = Vec::with_capacity(spec.ensemble * fan_in * fan_out);
            let mut b = Vec::with_capacity(spec.ensemble * fan_out);
            for e in 0..spec.ensemble {
                let mut rw = Rng::stream(seed, ((e as u64) << 24) | (2 * l as u64));
                w.extend((0..fan_in * fan_out).map(|_| (s.init_w * rw.normal()) as f32));
                let mut rb = Rng::stream(seed, ((e as u64) << 24) | (2 * l as u64 + 1));
                b.extend((0..fan_out).map(|_| (s.init_b * rb.normal()) as f32));
            }
            weights.push(w);
            biases.push(layer.dense.has_bias().then_some(b));
        }
        Ok(Params {
            spec: spec.clone(),
            weights,
            biases,
        })
    }

    /// Checks that the tensors have the sizes the spec implies.
    pub fn check(&self) -> Result<()> {
        self.spec.validate()?;
        let layers = self.spec.dense_layers();
        if self.weights.len() != layers.len() || self.biases.len() != layers.len() {
            return Err(Error::invalid(format!(
                "{} weight and {} bias tensors for {} Dense layers",
                self.weights.len(),
                self.biases.len(),
                layers.len()
            )));
        }
        let e = self.spec.ensemble;
        for layer in &layers {
            let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
            let bias_ok = match &self.biases[l] {
                Some(b) => layer.dense.has_bias() && b.len() == e * fo,
                None => !layer.dense.has_bias(),
            };
            if self.weights[l].len() != e * fo * fi || !bias_ok {
                return Err(Error::invalid(format!(
                    "Dense layer {l}: tensors do not match [E={e}, {fo}, {fi}] and [E, {fo}]"
                )));
            }
        }
        Ok(())
    }

    /// The ensemble made of member `e` alone.
    pub fn member(&self, e: usize) -> Result<Params> {
        if e >= self.spec.ensemble {
            return Err(Error::invalid(format!(
                "member {e} of an ensemble of {}",
                self.spec.ensemble
            )));
        }
        let spec = self.spec.with_ensemble(1);
        let pick = |v: &Vec<f32>, per: usize| v[e * per..(e + 1) * per].to_vec();
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for layer in self.spec.dense_layers() {
            let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
            weights.push(pick(&self.weights[l], fi * fo));
            biases.push(self.biases[l].as_ref().map(|b| pick(b, fo)));
        }
        Ok(Params {
            spec,
            weights,
            biases,
        })
    }

    /// Writes the safetensors file (atomically: a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.check().map_err(|err| Error::file(path, err))?;
        let e = self.spec.ensemble;
        let mut views = Vec::new();
        for layer in self.spec.dense_layers() {
            let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
            let w = TensorView::new(
                Dtype::F32,
                vec![e, fo, fi],
                bytemuck::cast_slice(&self.weights[l]),
            )
            .map_err(|err| Error::file(path, err))?;
            views.push((format!("layers.{l}.weight"), w));
            if let Some(bias) = &self.biases[l] {
                let b = TensorView::new(Dtype::F32, vec![e, fo], bytemuck::cast_slice(bias))
                    .map_err(|err| Error::file(path, err))?;
                views.push((format!("layers.{l}.bias"), b));
            }
        }
        let spec_json = serde_json::to_string(&self.spec).map_err(|err| Error::file(path, err))?;
        let meta = HashMap::from([
            (SPEC_KEY.to_string(), spec_json),
            ("format".to_string(), "pt".to_string()),
        ]);
        let bytes = safetensors::tensor::serialize(views, Some(meta))
            .map_err(|err| Error::file(path, err))?;
        crate::atomic::write_atomic(path, &bytes)
    }

    /// Reads and checks a safetensors file written by [`Params::save`] (or by
    /// anyone who follows the same names, shapes and metadata).
    pub fn load(path: &Path) -> Result<Params> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
        Params::from_bytes(&bytes, path)
    }

    /// Parses the bytes of a parameter file (`path` names it in messages).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Params> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::file(path, format!("bad header: {e}")))?;
        let spec_json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(SPEC_KEY))
            .ok_or_else(|| {
                Error::file(
                    path,
                    format!("no '{SPEC_KEY}' entry in the metadata: not a widenet parameter file"),
                )
            })?;
        let spec = parse_spec(spec_json)
            .map_err(|e| Error::file(path, format!("bad '{SPEC_KEY}' metadata: {e}")))?;
        spec.validate().map_err(|e| Error::file(path, e))?;
        let e = spec.ensemble;
        let mut expected: Vec<String> = Vec::new();
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for layer in spec.dense_layers() {
            let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
            let mut tensors = vec![(format!("layers.{l}.weight"), vec![e, fo, fi])];
            if layer.dense.has_bias() {
                tensors.push((format!("layers.{l}.bias"), vec![e, fo]));
            }
            for (k, (name, shape)) in tensors.into_iter().enumerate() {
                let t = st
                    .tensor(&name)
                    .map_err(|_| Error::file(path, format!("missing tensor '{name}'")))?;
                if t.dtype() != Dtype::F32 {
                    return Err(Error::file(
                        path,
                        format!("tensor '{name}' is {:?}, expected F32", t.dtype()),
                    ));
                }
                if t.shape() != shape.as_slice() {
                    return Err(Error::file(
                        path,
                        format!(
                            "tensor '{name}' has shape {:?}, expected {shape:?}",
                            t.shape()
                        ),
                    ));
                }
                let v: Vec<f32> = t
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if let Some(p) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::file(
                        path,
                        format!("tensor '{name}' has a non-finite value at flat index {p}"),
                    ));
                }
                if k == 0 {
                    weights.push(v);
                } else {
                    biases.push(Some(v));
                }
                expected.push(name);
            }
            if !layer.dense.has_bias() {
                biases.push(None);
            }
        }
        let mut extra: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| !expected.iter().any(|x| x == n))
            .collect();
        extra.sort();
        if !extra.is_empty() {
            return Err(Error::file(
                path,
                format!(
                    "unexpected tensor(s) {extra:?} for {} Dense layers",
                    spec.dense_layers().len()
                ),
            ));
        }
        Ok(Params {
            spec,
            weights,
            biases,
        })
    }
}

/// The network of a file's metadata: the current form, or the MLP form
/// written by widenet 0.1 (`{"d_in", "width", "depth", ...}`).
fn parse_spec(json: &str) -> std::result::Result<NetSpec, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if v.get("arch").is_some() {
        serde_json::from_value(v).map_err(|e| e.to_string())
    } else {
        let m: MlpSpec = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Ok(m.net())
    }
}
