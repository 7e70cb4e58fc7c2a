//! Weights in safetensors, laid out like PyTorch's `nn.Sequential(Linear, act, ..., Linear)`:
//! dense layer l (1-based) is `{2(l-1)}.weight` with shape (out, in) and `{2(l-1)}.bias` with
//! shape (out), so `model.load_state_dict(safetensors.torch.load_file(path))` works unchanged.
//! The metadata holds the architecture and the PyTorch lines that rebuild the model. Reading
//! these files back is [`crate::weights`].

use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::{Dtype, View};

use crate::config::{Precision, RunConfig};
use crate::error::{Error, Result};
use crate::nn::torch::{classes_for, torch_model};
use crate::nn::{is_output, Params};
pub use crate::weights::{load_params, LinearKeys, WeightsFile};

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

/// A few lines of PyTorch that rebuild the model this file belongs to.
pub fn torch_snippet(cfg: &RunConfig) -> String {
    let dtype = match cfg.precision {
        Precision::F32 => "torch.float32",
        Precision::F64 => "torch.float64",
    };
    if let Some(net) = &cfg.net {
        let (classes, model) = torch_model(
            net,
            cfg.arch[0],
            *cfg.arch.last().expect("validated arch"),
            cfg.bias,
        );
        return format!(
            "import torch, torch.nn as nn\nfrom safetensors.torch import load_file\n{classes}model = {model}.to({dtype})\nmodel.load_state_dict(load_file(\"weights.safetensors\"))"
        );
    }
    let mut mods = Vec::new();
    let layers = cfg.num_layers();
    for l in 1..=layers {
        mods.push(format!(
            "nn.Linear({}, {}, bias={})",
            cfg.arch[l - 1],
            cfg.arch[l],
            if cfg.bias { "True" } else { "False" }
        ));
        if !is_output(l - 1, layers) {
            mods.push(cfg.act.torch_module());
        }
    }
    let dtype = match cfg.precision {
        Precision::F32 => "torch.float32",
        Precision::F64 => "torch.float64",
    };
    let model = mods.join(", ");
    format!(
        "import torch, torch.nn as nn\nfrom safetensors.torch import load_file\n{}model = nn.Sequential({model}).to({dtype})\nmodel.load_state_dict(load_file(\"weights.safetensors\"))",
        classes_for(&model)
    )
}

/// Serialises parameters in the run's precision with architecture metadata.
pub fn to_bytes(params: &Params, cfg: &RunConfig) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Tensor)> = params
        .named()
        .map(|(id, values)| (id.name, tensor(values, id.dims, cfg.precision)))
        .collect();
    // Buffers as torch keeps them: running statistics in the run's precision, the batch count
    // an int64 scalar.
    tensors.extend(params.buffers().iter().map(|b| {
        let t = if b.key.ends_with("num_batches_tracked") {
            Tensor {
                dtype: Dtype::I64,
                shape: b.dims.clone(),
                data: b
                    .values
                    .iter()
                    .flat_map(|&v| (v as i64).to_le_bytes())
                    .collect(),
            }
        } else {
            tensor(&b.values, b.dims.clone(), cfg.precision)
        };
        (b.key.clone(), t)
    }));
    let arch = cfg.arch_text();
    let mut metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("initscope_arch".to_string(), arch),
        ("initscope_bias".to_string(), cfg.bias.to_string()),
        ("pytorch".to_string(), torch_snippet(cfg)),
    ]);
    match &cfg.net {
        // The spec says the activations; the linear widths alone do not describe the network.
        Some(net) => metadata.insert("initscope_net".to_string(), net.canonical()),
        None => metadata.insert("initscope_activation".to_string(), cfg.act.spec()),
    };
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
