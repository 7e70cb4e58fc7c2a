//! Reading weight files: a safetensors file of starting weights (`--init-from`), initscope's own
//! (with its metadata) or a PyTorch `state_dict`, mapped onto dense layers. Writing them is
//! [`crate::output::safetensors`]. Dense layer l (1-based) is `{2(l-1)}.weight` with shape
//! (out, in) and `{2(l-1)}.bias` with shape (out), as in PyTorch's
//! `nn.Sequential(Linear, act, ..., Linear)`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::{LayerParams, Params};

use crate::nn::param_name;

/// One Linear layer of a weights file: its keys and its weight's shape (out, in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearKeys {
    pub weight: String,
    pub bias: Option<String>,
    pub fan_out: usize,
    pub fan_in: usize,
}

/// A safetensors file of starting weights (`--init-from`), read and mapped onto dense layers.
///
/// The Linear layers are the tensors `P.weight` with two dimensions (with their `P.bias`, when
/// present), in the order of their module paths `P` (dot-separated parts compared as numbers when
/// numeric, else as text). That covers initscope's own files (`0.weight`, `2.weight`, ...) and a
/// plain PyTorch `state_dict` of an `nn.Sequential` (`0.weight`, `3.weight` when a Dropout sits
/// between, `model.0.weight` under a prefix). Any other tensor is refused by name. initscope's
/// files also carry metadata (`initscope_arch`, `initscope_activation`, `initscope_bias`); when
/// present it must agree with the tensors and supplies the activation.
#[derive(Clone, Debug)]
pub struct WeightsFile {
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (hex), part of the run id of a run started from it.
    pub sha256: String,
    /// The Linear layers, first to last.
    pub layers: Vec<LinearKeys>,
    /// Widths input to output, from the shapes.
    pub arch: Vec<usize>,
    /// Whether the layers have biases (all of them or none).
    pub bias: bool,
    /// The hidden activation named by initscope's metadata, when present.
    pub act: Option<Activation>,
    /// Whether the file carries initscope's metadata.
    pub initscope_metadata: bool,
    bytes: Vec<u8>,
}

/// Compares module paths part by part, numbers as numbers (`model.3` before `model.10`).
fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => p.cmp(q),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl WeightsFile {
    /// Reads `path` and maps its tensors onto Linear layers (see the type's documentation).
    pub fn read(path: &Path) -> Result<WeightsFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let digest = Sha256::digest(&bytes);
        let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let (layers, metadata) = {
            let st = SafeTensors::deserialize(&bytes)
                .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
            let shapes: BTreeMap<String, Vec<usize>> = st
                .tensors()
                .into_iter()
                .map(|(n, t)| (n, t.shape().to_vec()))
                .collect();
            let mut prefixes: Vec<&str> = shapes
                .iter()
                .filter(|(n, s)| n.ends_with(".weight") && s.len() == 2)
                .map(|(n, _)| &n[..n.len() - ".weight".len()])
                .collect();
            prefixes.sort_by(|a, b| path_order(a, b));
            let mut used = Vec::new();
            let mut layers = Vec::new();
            for p in &prefixes {
                let weight = format!("{p}.weight");
                let bias = format!("{p}.bias");
                let s = &shapes[&weight];
                let bias = match shapes.get(&bias) {
                    Some(b) if b == &[s[0]] => Some(bias),
                    Some(b) => {
                        return Err(Error::file(
                            path,
                            format!(
                                "tensor '{bias}' has shape {b:?}, but '{weight}' has {} outputs",
                                s[0]
                            ),
                        ))
                    }
                    None => None,
                };
                used.push(weight.clone());
                used.extend(bias.clone());
                layers.push(LinearKeys {
                    weight,
                    bias,
                    fan_out: s[0],
                    fan_in: s[1],
                });
            }
            let extra: Vec<&str> = shapes
                .keys()
                .filter(|n| !used.contains(n))
                .map(String::as_str)
                .collect();
            if !extra.is_empty() {
                return Err(Error::file(
                    path,
                    format!(
                        "unexpected tensor(s) {}: only Linear layers are read (a 2-D 'P.weight' with an optional 'P.bias')",
                        extra.join(", ")
                    ),
                ));
            }
            let (_, meta) = SafeTensors::read_metadata(&bytes)
                .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
            (layers, meta.metadata().clone().unwrap_or_default())
        };
        if layers.is_empty() {
            return Err(Error::file(
                path,
                "holds no Linear layer (no 2-D tensor named 'P.weight')",
            ));
        }
        for w in layers.windows(2) {
            if w[1].fan_in != w[0].fan_out {
                return Err(Error::file(
                    path,
                    format!(
                        "the Linear layers in key order do not chain: '{}' has {} outputs but the next, '{}', takes {} inputs",
                        w[0].weight, w[0].fan_out, w[1].weight, w[1].fan_in
                    ),
                ));
            }
        }
        let with_bias = layers.iter().filter(|l| l.bias.is_some()).count();
        if with_bias != 0 && with_bias != layers.len() {
            let missing: Vec<String> = layers
                .iter()
                .filter(|l| l.bias.is_none())
                .map(|l| format!("'{}'", l.weight))
                .collect();
            return Err(Error::file(
                path,
                format!(
                    "{} {} no bias but the other layers have one; initscope needs biases on every layer or none",
                    missing.join(", "),
                    if missing.len() == 1 { "has" } else { "have" }
                ),
            ));
        }
        let mut arch = vec![layers[0].fan_in];
        arch.extend(layers.iter().map(|l| l.fan_out));
        let bias = with_bias != 0;
        if let Some(meta_arch) = metadata.get("initscope_arch") {
            if *meta_arch != crate::nn::arch_text(&arch) {
                return Err(Error::file(
                    path,
                    format!(
                        "its metadata says architecture {meta_arch}, but its tensors give {}",
                        crate::nn::arch_text(&arch)
                    ),
                ));
            }
        }
        if let Some(meta_bias) = metadata.get("initscope_bias") {
            if *meta_bias != bias.to_string() {
                return Err(Error::file(
                    path,
                    format!(
                        "its metadata says initscope_bias = {meta_bias}, but its tensors {} biases",
                        if bias { "hold" } else { "hold no" }
                    ),
                ));
            }
        }
        if let Some(net) = metadata.get("initscope_net") {
            return Err(Error::file(
                path,
                format!(
                    "was written by a --net run (network '{net}'): give --net '{net}' to start from it"
                ),
            ));
        }
        let act = metadata
            .get("initscope_activation")
            .map(|a| {
                Activation::parse("initscope_activation", a)
                    .map_err(|e| Error::file(path, format!("metadata: {e}")))
            })
            .transpose()?;
        Ok(WeightsFile {
            path: path.to_path_buf(),
            sha256,
            layers,
            arch,
            bias,
            act,
            initscope_metadata: metadata.keys().any(|k| k.starts_with("initscope_")),
            bytes,
        })
    }

    /// The keys used, one group per layer: `model.0.weight, model.0.bias`.
    pub fn keys_text(&self) -> String {
        self.layers
            .iter()
            .map(|l| match &l.bias {
                Some(b) => format!("{} + {b}", l.weight),
                None => l.weight.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The parameters for a network of widths `arch` (with or without biases), checking every
    /// layer's shape and every value. F32 and F64 tensors are accepted; values are held in f64.
    pub fn params(&self, arch: &[usize], bias: bool) -> Result<Params> {
        let path = &self.path;
        let st = SafeTensors::deserialize(&self.bytes)
            .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
            let t = st
                .tensor(name)
                .map_err(|_| Error::file(path, format!("missing tensor '{name}'")))?;
            if t.shape() != shape {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor '{name}' has shape {:?}, expected {shape:?} (architecture {})",
                        t.shape(),
                        crate::nn::arch_text(arch)
                    ),
                ));
            }
            decode(path, name, &t, false)
        };
        let layers = arch.len() - 1;
        let mut params = Vec::with_capacity(layers);
        for l in 1..=layers {
            let (fan_in, fan_out) = (arch[l - 1], arch[l]);
            let Some(keys) = self.layers.get(l - 1) else {
                return Err(Error::file(
                    path,
                    format!(
                        "missing tensor '{}': the file has {} Linear layer(s) ({}), architecture {} needs {layers}",
                        param_name(l, "weight"),
                        self.layers.len(),
                        self.keys_text(),
                        crate::nn::arch_text(arch)
                    ),
                ));
            };
            let w = read(&keys.weight, &[fan_out, fan_in])?;
            let b = match (&keys.bias, bias) {
                (Some(name), true) => Some(read(name, &[fan_out])?),
                (None, true) => {
                    return Err(Error::file(
                        path,
                        format!(
                            "missing tensor '{}' (layer {l} has no bias; use --no-bias)",
                            keys.weight.replace(".weight", ".bias")
                        ),
                    ))
                }
                (_, false) => None,
            };
            params.push(LayerParams {
                weight: Matrix::from_vec(fan_out, fan_in, w),
                bias: b,
            });
        }
        let mut extra: Vec<&str> = self.layers[layers.min(self.layers.len())..]
            .iter()
            .flat_map(|k| std::iter::once(k.weight.as_str()).chain(k.bias.as_deref()))
            .collect();
        if !bias {
            extra.extend(
                self.layers[..layers.min(self.layers.len())]
                    .iter()
                    .filter_map(|k| k.bias.as_deref()),
            );
        }
        if !extra.is_empty() {
            extra.sort_by(|a, b| path_order(a, b));
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
                    crate::nn::arch_text(arch)
                ),
            ));
        }
        Ok(Params::from(params))
    }
}

/// Reads parameters for a network of widths `arch` from `path` (see [`WeightsFile`]), checking
/// every tensor's presence, dtype and shape. F32 and F64 tensors are accepted; values are held
/// in f64.
pub fn load_params(path: &Path, arch: &[usize], bias: bool) -> Result<Params> {
    WeightsFile::read(path)?.params(arch, bias)
}

/// The values of tensor `name` in f64: F32 and F64 (and I64, for counters, when `int`), every
/// value finite.
fn decode(
    path: &Path,
    name: &str,
    t: &safetensors::tensor::TensorView<'_>,
    int: bool,
) -> Result<Vec<f64>> {
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
        Dtype::I64 if int => t
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        other => {
            let supported = if int {
                "F32, F64 and I64 are"
            } else {
                "F32 and F64 are"
            };
            return Err(Error::file(
                path,
                format!("tensor '{name}' has dtype {other:?}; only {supported} supported"),
            ));
        }
    };
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::file(
            path,
            format!("tensor '{name}' holds a non-finite value at flat index {bad}"),
        ));
    }
    Ok(values)
}

/// A weights file read as named tensors (any names), for a network built from a `--net` spec:
/// its tensors must be the network's, by `state_dict` name and shape.
#[derive(Clone, Debug)]
pub struct NamedTensors {
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (hex).
    pub sha256: String,
    /// name -> (shape, values in f64). F32, F64 and (for counters such as batchnorm's
    /// `num_batches_tracked`) I64 tensors are read.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
}

impl NamedTensors {
    /// Reads every tensor of the safetensors file `path`, refusing non-finite values.
    pub fn read(path: &Path) -> Result<NamedTensors> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, t) in st.tensors() {
            let values = decode(path, &name, &t, name.ends_with("num_batches_tracked"))?;
            tensors.insert(name, (t.shape().to_vec(), values));
        }
        Ok(NamedTensors {
            path: path.to_path_buf(),
            sha256,
            tensors,
        })
    }

    /// Tensors given in memory rather than read from a file: a PyTorch module's `state_dict`
    /// as the Python package reads it (`initscope.from_torch`), under initscope's names. `label`
    /// stands where a file's path would (`torch:Sequential`, in errors and in `config.json`'s
    /// `init_from`), and `sha256` is SHA-256 of the tensors themselves: for each name in order,
    /// the name, a NUL, the number of dimensions and each dimension (u64 little-endian), then
    /// the values (f64 little-endian). Non-finite values are refused by name and index.
    pub fn in_memory(
        label: &str,
        tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    ) -> Result<NamedTensors> {
        let path = PathBuf::from(label);
        let mut h = Sha256::new();
        h.update(b"initscope tensors 1\0");
        for (name, (shape, values)) in &tensors {
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if count != Some(values.len()) {
                return Err(Error::file(
                    &path,
                    format!(
                        "tensor '{name}' has shape {shape:?} but {} values",
                        values.len()
                    ),
                ));
            }
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::file(
                    &path,
                    format!("tensor '{name}' holds a non-finite value at flat index {bad}"),
                ));
            }
            h.update(name.as_bytes());
            h.update([0u8]);
            h.update((shape.len() as u64).to_le_bytes());
            for &d in shape {
                h.update((d as u64).to_le_bytes());
            }
            let mut buf = Vec::with_capacity(8 * values.len().min(8192));
            for chunk in values.chunks(8192) {
                buf.clear();
                for v in chunk {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                h.update(&buf);
            }
        }
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(NamedTensors {
            path,
            sha256,
            tensors,
        })
    }

    /// Sets every parameter and buffer of `net` from the file, as
    /// `load_state_dict(strict=True)` does: every name must be in the file with the same shape,
    /// and the file must hold nothing else. Errors list what is missing, extra or misshapen.
    pub fn load_into<T: crate::scalar::Float>(&self, net: &mut crate::nn::Net<T>) -> Result<()> {
        let path = &self.path;
        let mut wanted: Vec<(String, Vec<usize>)> = net
            .param_infos()
            .iter()
            .map(|p| (p.name.clone(), p.dims.clone()))
            .collect();
        wanted.extend(net.buffers().into_iter().map(|b| (b.key, b.dims)));
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(n, _)| !self.tensors.contains_key(n))
            .map(|(n, _)| n.as_str())
            .collect();
        let extra: Vec<&str> = self
            .tensors
            .keys()
            .filter(|k| !wanted.iter().any(|(n, _)| n == *k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", missing.join(", ")));
            }
            if !extra.is_empty() {
                parts.push(format!("unexpected {}", extra.join(", ")));
            }
            return Err(Error::file(
                path,
                format!(
                    "its tensors are not the network's ({}); the names are the PyTorch state_dict keys of the --net spec (initscope net show SPEC lists them)",
                    parts.join("; ")
                ),
            ));
        }
        for (name, dims) in &wanted {
            let (shape, _) = &self.tensors[name];
            // torch writes a scalar as shape [] and initscope a 1-entry tensor as [1].
            if shape != dims {
                return Err(Error::file(
                    path,
                    format!("tensor '{name}' has shape {shape:?}, the network's is {dims:?}"),
                ));
            }
        }
        for k in 0..net.param_infos().len() {
            let name = net.param_infos()[k].name.clone();
            let values = &self.tensors[&name].1;
            for (p, &v) in net.param_values_mut(k).iter_mut().zip(values) {
                *p = T::from_f64(v);
            }
        }
        for b in net.buffers() {
            let values = &self.tensors[&b.key].1;
            if !net.set_buffer(&b.key, values) {
                return Err(Error::file(
                    path,
                    format!("buffer '{}' holds values the network refuses (a negative or fractional count?)", b.key),
                ));
            }
        }
        Ok(())
    }
}
