//! Property-based fuzzing of every parser a user's file reaches: `.npy`,
//! safetensors parameter files and TOML configurations. Seeds come from
//! `tests/corpus/`; each property mutates them (byte flips, truncation,
//! insertion, random bytes) and requires an `Ok` or a clean `Err`, never a
//! panic. Bounded: 256 cases per property.

use proptest::prelude::*;
use std::path::Path;
use widenet::net::params::Params;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .unwrap()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if !bytes.is_empty() {
                    bytes[i % n] ^= x | 1;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, v.iter().cloned());
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn npy_never_panics(seed in 0usize..4, muts in proptest::collection::vec(mutation(), 1..6)) {
        let names = ["f32.npy", "f64_fortran.npy", "i64.npy", "f32_big_endian.npy"];
        let bytes = mutate(corpus(names[seed]), &muts);
        let _ = widenet::npy::parse(&bytes, Path::new("fuzz.npy"));
    }

    #[test]
    fn npy_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend(bytes);
        let _ = widenet::npy::parse(&b, Path::new("fuzz.npy"));
    }

    #[test]
    fn safetensors_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(corpus("params.safetensors"), &muts);
        let _ = Params::from_bytes(&bytes, Path::new("fuzz.safetensors"));
    }

    #[test]
    fn configs_never_panic(which in 0usize..2, muts in proptest::collection::vec(mutation(), 1..4)) {
        let names = ["compare.toml", "train.toml"];
        let bytes = mutate(corpus(names[which]), &muts);
        if let Ok(text) = String::from_utf8(bytes) {
            if let Ok(c) = toml::from_str::<widenet::experiments::compare::CompareConfig>(&text) {
                let _ = c.validate();
            }
            let _ = toml::from_str::<widenet::experiments::deep_linear::DeepLinearConfig>(&text).map(|c| c.validate());
        }
    }
}

#[test]
fn the_corpus_itself_parses() {
    let a = widenet::npy::parse(&corpus("f64_fortran.npy"), Path::new("f")).unwrap();
    assert_eq!(a.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        widenet::npy::parse(&corpus("f32_big_endian.npy"), Path::new("b"))
            .unwrap()
            .data,
        vec![0.0, 1.0, 2.0, 3.0]
    );
    let p = Params::from_bytes(&corpus("params.safetensors"), Path::new("p")).unwrap();
    assert_eq!(p.spec.ensemble, 2);
    let c: widenet::experiments::compare::CompareConfig =
        toml::from_str(&String::from_utf8(corpus("compare.toml")).unwrap()).unwrap();
    c.validate().unwrap();
    assert_eq!(c.widths, vec![32, 64]);
}

/// A tensor to write: name, shape, values, dtype.
type Entry = (String, Vec<usize>, Vec<f32>, safetensors::tensor::Dtype);

#[test]
fn safetensors_with_missing_extra_or_misshapen_tensors_are_refused() {
    use safetensors::tensor::{Dtype, TensorView, serialize};
    let good = Params::from_bytes(&corpus("params.safetensors"), Path::new("p")).unwrap();
    let spec_json = serde_json::to_string(&good.spec).unwrap();
    let meta = || {
        Some(std::collections::HashMap::from([(
            "widenet.spec".to_string(),
            spec_json.clone(),
        )]))
    };
    let build = |edit: &dyn Fn(&mut Vec<Entry>)| -> Vec<u8> {
        let mut tensors = Vec::new();
        for layer in good.spec.dense_layers() {
            let (l, fi, fo) = (layer.index, layer.fan_in, layer.fan_out);
            tensors.push((
                format!("layers.{l}.weight"),
                vec![2, fo, fi],
                good.weights[l].clone(),
                Dtype::F32,
            ));
            tensors.push((
                format!("layers.{l}.bias"),
                vec![2, fo],
                good.biases[l].clone().expect("the corpus file has biases"),
                Dtype::F32,
            ));
        }
        edit(&mut tensors);
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, s, d, t)| {
                let bytes: &[u8] = bytemuck::cast_slice(d);
                let len = if *t == Dtype::F16 {
                    bytes.len() / 2
                } else {
                    bytes.len()
                };
                (
                    n.clone(),
                    TensorView::new(*t, s.clone(), &bytes[..len]).unwrap(),
                )
            })
            .collect();
        serialize(views, meta()).unwrap()
    };
    let check = |bytes: Vec<u8>, needle: &str| {
        let e = Params::from_bytes(&bytes, Path::new("p.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "'{e}' lacks '{needle}'");
    };
    assert!(Params::from_bytes(&build(&|_| {}), Path::new("p")).is_ok());
    check(
        build(&|t| t.retain(|x| x.0 != "layers.1.bias")),
        "missing tensor 'layers.1.bias'",
    );
    check(
        build(&|t| t.push(("layers.9.weight".into(), vec![1], vec![0.0], Dtype::F32))),
        "unexpected tensor",
    );
    check(build(&|t| t[0].1 = vec![2, 1, 12]), "shape");
    check(
        build(&|t| {
            t[2].2 = t[2].2.iter().map(|_| 0.0).collect();
            t[2].3 = Dtype::F16;
            t[2].1 = vec![2, 4, 4];
            t[2].2.truncate(32 / 2 * 2);
        }),
        "F16",
    );
    check(build(&|t| t[1].2[0] = f32::NAN), "non-finite");
    // No widenet metadata.
    let plain = serialize(
        vec![(
            "x".to_string(),
            TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap(),
        )],
        None,
    )
    .unwrap();
    check(plain, "metadata");
}
