//! Weights in safetensors, laid out like PyTorch's `nn.Sequential(Linear, act, ..., Linear)`:
//! dense layer l (1-based) is `{2(l-1)}.weight` with shape (out, in) and `{2(l-1)}.bias` with
//! shape (out), so `model.load_state_dict(safetensors.torch.load_file(path))` works unchanged.
//! The metadata holds the architecture and the PyTorch lines that rebuild the model.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};

use crate::config::{Precision, RunConfig};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::network::{LayerParams, Params};

/// An owned tensor ready to serialise.
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn tensor(values: &[f64], shape: Vec<usize>, precision: Precision) -> Tensor {
    let (dtype, data) = match precision {
        Precision::F32 => (
            Dtype::F32,
            values
                .iter()
                .flat_map(|&x| (x as f32).to_le_bytes())
                .collect(),
        ),
        Precision::F64 => (
            Dtype::F64,
            values.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        ),
    };
    Tensor { dtype, shape, data }
}

/// The tensor name of layer `l`'s weight or bias (`kind` is "weight" or "bias").
pub fn tensor_name(l: usize, kind: &str) -> String {
    format!("{}.{kind}", 2 * (l - 1))
}

/// A few lines of PyTorch that rebuild the model this file belongs to.
pub fn torch_snippet(cfg: &RunConfig) -> String {
    let mut mods = Vec::new();
    let layers = cfg.num_layers();
    for l in 1..=layers {
        mods.push(format!(
            "nn.Linear({}, {}, bias={})",
            cfg.arch[l - 1],
            cfg.arch[l],
            if cfg.bias { "True" } else { "False" }
        ));
        if l < layers {
            mods.push(cfg.act.torch_module());
        }
    }
    let dtype = match cfg.precision {
        Precision::F32 => "torch.float32",
        Precision::F64 => "torch.float64",
    };
    format!(
        "import torch, torch.nn as nn\nfrom safetensors.torch import load_file\nmodel = nn.Sequential({}).to({dtype})\nmodel.load_state_dict(load_file(\"weights.safetensors\"))",
        mods.join(", ")
    )
}

/// Serialises parameters in the run's precision with architecture metadata.
pub fn to_bytes(params: &Params, cfg: &RunConfig) -> Result<Vec<u8>> {
    let mut tensors = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let l = i + 1;
        let (rows, cols) = p.weight.shape();
        tensors.push((
            tensor_name(l, "weight"),
            tensor(p.weight.as_slice(), vec![rows, cols], cfg.precision),
        ));
        if let Some(b) = &p.bias {
            tensors.push((
                tensor_name(l, "bias"),
                tensor(b, vec![b.len()], cfg.precision),
            ));
        }
    }
    let arch = cfg
        .arch
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("initscope_arch".to_string(), arch),
        ("initscope_activation".to_string(), cfg.act.spec()),
        ("initscope_bias".to_string(), cfg.bias.to_string()),
        ("pytorch".to_string(), torch_snippet(cfg)),
    ]);
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.clone(), t)), Some(metadata))
        .map_err(|e| Error::file("weights.safetensors", e.to_string()))?;
    Ok(canonical_header(bytes))
}

/// Rewrites the JSON header with sorted keys. `safetensors::serialize` writes the metadata from a
/// `HashMap`, whose order changes from process to process; the same weights must give the same
/// bytes. The layout stays valid: 8-byte little-endian header length, the header padded with
/// spaces to a multiple of 8, then the unchanged tensor data (offsets are relative to it).
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte length")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote a JSON header");
    // serde_json's map is ordered by key (no preserve_order feature), so this is canonical.
    let mut text = serde_json::to_vec(&header).expect("JSON value serialises");
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Reads parameters for a network of widths `arch` from `path`, checking every tensor's presence,
/// dtype and shape. F32 and F64 tensors are accepted; values are held in f64.
pub fn load_params(path: &Path, arch: &[usize], bias: bool) -> Result<Params> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    let layers = arch.len() - 1;
    let mut expected = Vec::new();
    let mut params = Vec::with_capacity(layers);
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
        let t = st.tensor(name).map_err(|_| {
            Error::file(
                path,
                format!(
                    "missing tensor '{name}' (expected shape {shape:?} for architecture {})",
                    fmt_arch(arch)
                ),
            )
        })?;
        if t.shape() != shape {
            return Err(Error::file(
                path,
                format!(
                    "tensor '{name}' has shape {:?}, expected {shape:?} (architecture {})",
                    t.shape(),
                    fmt_arch(arch)
                ),
            ));
        }
        let values: Vec<f64> = match t.dtype() {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            Dtype::F64 => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            other => {
                return Err(Error::file(
                    path,
                    format!("tensor '{name}' has dtype {other:?}; only F32 and F64 are supported"),
                ))
            }
        };
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(
                path,
                format!("tensor '{name}' holds a non-finite value at flat index {bad}"),
            ));
        }
        Ok(values)
    };
    for l in 1..=layers {
        let (fan_in, fan_out) = (arch[l - 1], arch[l]);
        let wname = tensor_name(l, "weight");
        let w = read(&wname, &[fan_out, fan_in])?;
        expected.push(wname);
        let b = if bias {
            let bname = tensor_name(l, "bias");
            let b = read(&bname, &[fan_out])?;
            expected.push(bname);
            Some(b)
        } else {
            None
        };
        params.push(LayerParams {
            weight: Matrix::from_vec(fan_out, fan_in, w),
            bias: b,
        });
    }
    let mut extra: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !expected.iter().any(|e| e == n))
        .collect();
    if !extra.is_empty() {
        extra.sort();
        let hint = if !bias && extra.iter().any(|n| n.ends_with(".bias")) {
            " (the network was configured with --no-bias)"
        } else {
            ""
        };
        return Err(Error::file(
            path,
            format!(
                "unexpected tensor(s) {} for architecture {}{hint}",
                extra.join(", "),
                fmt_arch(arch)
            ),
        ));
    }
    Ok(params)
}

fn fmt_arch(arch: &[usize]) -> String {
    arch.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("-")
}
