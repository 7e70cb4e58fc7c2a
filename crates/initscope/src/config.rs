//! Run configuration: a raw form (command line or TOML, every field optional, values as written
//! on the command line) checked once into a validated [`RunConfig`] the training loop trusts.
//!
//! TOML keys are the long flag names of `initscope train` with underscores:
//! ```toml
//! data = "moons:n=512,noise=0.2"
//! hidden = "16,16"          # or arch = "2-16-16-2"
//! act = "tanh"
//! init = "normal:std=0.5"
//! bias_init = "zeros"
//! layer_init = ["2=zeros"]
//! optim = "adam"
//! lr = 0.01
//! batch = "full"            # or 64
//! epochs = 100
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::activation::Activation;
use crate::data::{DataOptions, DataSpec, Dataset, Features, Task, TaskKind};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::loss::Loss;
use crate::memory::{self, MemoryEstimate, MemoryLimit};
use crate::nn::build::{build_net, shape, BuildOptions, NetShape, Preset};
use crate::nn::spec::{ModuleSpec, NetSpec};
use crate::nn::{LayerInits, Net, Params};
use crate::optim::{OptimConfig, OptimKind, Schedule};
use crate::scalar::Float;
use crate::weights::WeightsFile;

/// A batch size as written: a number or "full" (`--batch` on the command line is always a name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchArg {
    Size(i64),
    Name(String),
}

/// The run flags of `initscope train` (and explain, gradcheck), as written, before validation:
/// the one list of them. `None` means "the default"; a switch (`--no-bias`) is `Some(true)` when
/// given. The same struct is the command line (with the `clap` feature: the field docs are the
/// flags' `--help`), a `--config` TOML file and a sweep grid's keys (field names: the flags'
/// names with underscores), and the input of [`validate`]. A new flag is one field here, read
/// in [`validate_cached`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Dataset spec: xor, moons, circles, spirals, blobs, teacher, mnist1d, fashion-mnist, mnist,
    /// with options, e.g. `moons:n=512,noise=0.2,seed=1`, or a file: PATH.npz, PATH.csv,
    /// idx:IMAGES,LABELS, npy:X,Y, csv:PATH [default: moons].
    #[cfg_attr(feature = "clap", arg(long))]
    pub data: Option<String>,
    /// Full architecture, input to output, e.g. 2-16-16-2 (must match the data).
    #[cfg_attr(feature = "clap", arg(long))]
    pub arch: Option<String>,
    /// Hidden widths, e.g. 16,16; "" or none for no hidden layer [default: 16,16].
    #[cfg_attr(feature = "clap", arg(long))]
    pub hidden: Option<String>,
    /// The network as a sequence of modules instead of --arch/--hidden/--act/--dropout, e.g.
    /// 'linear(64) relu res(layernorm linear(64) relu linear(64) gate(0))*2 linear' (the final
    /// bare linear maps to the data's outputs); modules: linear(N, init=SPEC, bias=SPEC|none),
    /// the --act names, dropout(p), layernorm, rmsnorm, batchnorm, res(MODULES)*K, gate(v),
    /// shift(v). See the README's "Network specs".
    #[cfg_attr(feature = "clap", arg(long, value_name = "SPEC"))]
    pub net: Option<String>,
    /// Initialization preset for --net networks with residual blocks: fixup (branch ends and
    /// output at 0, branches He-initialised and scaled by L^(-1/(2m-2)), biases 0, gates 1) or
    /// zero_init_residual (the norm ending each branch starts with gain 0).
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub preset: Option<String>,
    /// Hidden activation: identity, tanh, sigmoid, relu, leaky_relu[:slope], elu[:alpha], selu,
    /// gelu, softplus, silu, softsign [default: tanh].
    #[allow(rustdoc::broken_intra_doc_links)] // `[:slope]` is --help text, not a link
    #[cfg_attr(feature = "clap", arg(long))]
    pub act: Option<String>,
    /// Weight initializer spec, e.g. zeros, constant:0.1, uniform:-0.1,0.1, normal:std=0.02,
    /// pytorch [default: pytorch].
    #[cfg_attr(feature = "clap", arg(long))]
    pub init: Option<String>,
    /// Bias initializer spec [default: pytorch with --init pytorch, else zeros].
    #[cfg_attr(feature = "clap", arg(long))]
    pub bias_init: Option<String>,
    /// Per-layer weight initializer, LAYER=SPEC (layers 1..L, L the output); repeatable.
    #[cfg_attr(feature = "clap", arg(long, value_name = "L=SPEC"))]
    pub layer_init: Option<Vec<String>>,
    /// Per-layer bias initializer, LAYER=SPEC; repeatable.
    #[cfg_attr(feature = "clap", arg(long, value_name = "L=SPEC"))]
    pub layer_bias_init: Option<Vec<String>>,
    /// No biases anywhere.
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 0, default_missing_value = "true")
    )]
    pub no_bias: Option<bool>,
    /// Loss: cross_entropy, mse, bce [default: cross_entropy for classes, mse for regression].
    #[cfg_attr(feature = "clap", arg(long))]
    pub loss: Option<String>,
    /// Optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop [default: sgd].
    #[cfg_attr(feature = "clap", arg(long))]
    pub optim: Option<String>,
    /// Learning rate [default: 0.1; adam/adamw 1e-3; rmsprop 1e-2].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub lr: Option<f64>,
    /// Momentum for momentum/nesterov [default: 0.9].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub momentum: Option<f64>,
    /// Adam beta1 [default: 0.9].
    #[cfg_attr(feature = "clap", arg(long))]
    pub beta1: Option<f64>,
    /// Adam beta2 [default: 0.999].
    #[cfg_attr(feature = "clap", arg(long))]
    pub beta2: Option<f64>,
    /// Adam/RMSprop epsilon [default: 1e-8].
    #[cfg_attr(feature = "clap", arg(long))]
    pub eps: Option<f64>,
    /// RMSprop smoothing constant [default: 0.99].
    #[cfg_attr(feature = "clap", arg(long))]
    pub alpha: Option<f64>,
    /// Weight decay (coupled; decoupled for adamw) [default: 0; adamw 0.01].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub weight_decay: Option<f64>,
    /// Parameter classes weight decay leaves alone, comma-separated: norms (norm gains and
    /// biases), gates, biases (linear biases and shifts) [default: none, as torch.optim].
    #[cfg_attr(feature = "clap", arg(long, value_name = "CLASSES"))]
    pub no_decay: Option<String>,
    /// Learning-rate schedule: constant, step:every=N,gamma=G, cosine[:min=M].
    #[cfg_attr(feature = "clap", arg(long))]
    pub schedule: Option<String>,
    /// Linear warmup over this many updates.
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub warmup: Option<i64>,
    /// Clip the global gradient norm to this value.
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub clip_grad_norm: Option<f64>,
    /// Minibatch size or "full" [default: 64].
    #[cfg_attr(feature = "clap", arg(long, value_parser = batch_text()))]
    pub batch: Option<BatchArg>,
    /// Number of updates [default: 1000].
    #[cfg_attr(
        feature = "clap",
        arg(long, allow_negative_numbers = true, conflicts_with = "epochs")
    )]
    pub steps: Option<i64>,
    /// Number of epochs (passes over the training split).
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub epochs: Option<i64>,
    /// Dropout probability on hidden layers (inverted dropout) [default: 0].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub dropout: Option<f64>,
    /// Run seed: initial weights, shuffling, dropout [default: 0].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub seed: Option<i64>,
    /// f32 or f64 [default: f32].
    #[cfg_attr(feature = "clap", arg(long))]
    pub precision: Option<String>,
    /// Evaluate every N updates [default: every epoch with --epochs, else steps/20].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub eval_every: Option<i64>,
    /// Start from these weights: a safetensors file initscope wrote (its metadata gives the
    /// architecture and activation) or a PyTorch state_dict (the Linear layers' `P.weight` and
    /// `P.bias`, in key order). Flags that contradict the file are refused.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE.safetensors", value_parser = path_text()))]
    pub init_from: Option<String>,
    /// Add N(0, STD²) noise to every gradient entry (breaks symmetry) [default: 0].
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "STD", allow_negative_numbers = true)
    )]
    pub grad_noise: Option<f64>,
    /// Record gradient-flow, activation and spectral statistics: on or off [default: on].
    #[cfg_attr(feature = "clap", arg(long, value_name = "on|off"))]
    pub diagnostics: Option<String>,
    /// Also record the input-output Jacobian spectrum at the end (it is always recorded at init).
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 0, default_missing_value = "true")
    )]
    pub jacobian_end: Option<bool>,
    /// Relative tolerance of the symmetry partition [default: 1e-6 in f64, 1e-4 in f32].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub sym_tol: Option<f64>,
    /// Directory searched first for fashion-mnist/mnist IDX files (then $INITSCOPE_DATA, then
    /// /usr/share/datasets).
    #[cfg_attr(feature = "clap", arg(long, value_name = "DIR", value_parser = path_text()))]
    pub data_dir: Option<String>,
    /// CSV label column: 0-based index or header name [default: the last column].
    #[cfg_attr(feature = "clap", arg(long))]
    pub label_column: Option<String>,
    /// classification or regression for CSV/NumPy targets [default: classification when all
    /// labels are non-negative integers].
    #[cfg_attr(feature = "clap", arg(long))]
    pub task: Option<String>,
    /// Fraction held out as the test split for sources without one [default: 0.2].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub test_fraction: Option<f64>,
    /// Fraction of the training rows held out for validation [default: 0].
    #[cfg_attr(feature = "clap", arg(long, allow_negative_numbers = true))]
    pub val_fraction: Option<f64>,
    /// Standardize features with the training split's per-feature mean and std.
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 0, default_missing_value = "true")
    )]
    pub standardize: Option<bool>,
    /// Memory the run may take, e.g. 4G or 512M [default: the smaller of the cgroup's limit
    /// and MemAvailable]. Data, parameters, optimizer state, workspace and diagnostics are
    /// estimated before anything is allocated; a run above the limit is refused.
    // Not part of the run's identity: RunConfig has no such field.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SIZE"))]
    pub max_memory: Option<String>,
}

impl RawConfig {
    /// Reads a TOML file (keys as above; unknown keys are refused).
    pub fn from_toml_file(path: &Path) -> Result<RawConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::file(path, one_line(&e.to_string())))
    }

    /// `self` with every field that `over` sets replaced (command line over file): the two as
    /// TOML tables of the keys they set, the second laid over the first.
    pub fn merged_with(self, over: RawConfig) -> RawConfig {
        let mut table = self.to_table();
        table.extend(over.to_table());
        table
            .try_into()
            .expect("keys and values taken from two RawConfigs make a RawConfig")
    }

    /// The keys this configuration sets, with their values, as in a TOML file.
    fn to_table(&self) -> toml::Table {
        toml::Table::try_from(self).expect("every field of a RawConfig is a TOML value")
    }
}

/// The value parser of `--init-from` and `--data-dir`: a path (an empty value is refused, as for
/// every path flag) kept as text.
#[cfg(feature = "clap")]
fn path_text() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PathBufValueParser::new().map(|p| p.display().to_string())
}

/// The value parser of `--batch`: the text, checked by [`validate`] like a TOML `batch`.
#[cfg(feature = "clap")]
fn batch_text() -> impl clap::builder::TypedValueParser<Value = BatchArg> {
    use clap::builder::TypedValueParser as _;
    clap::builder::StringValueParser::new().map(BatchArg::Name)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// f32 or f64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn parse(text: &str) -> Result<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" | "single" => Ok(Precision::F32),
            "f64" | "float64" | "double" => Ok(Precision::F64),
            _ => Err(Error::spec("--precision", text, "must be f32 or f64")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Minibatch size or the whole training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batch {
    Full,
    Size(usize),
}

/// The widest layer (and input) of a network that trains in lockstep ([`RunConfig::lockstep`]):
/// beyond it one run's products are worth a GEMM of their own.
pub const LOCKSTEP_MAX_WIDTH: usize = 32;

// A run trains to the same bits in a pack as alone only where the engine sums its products in
// the packs' order.
const _: () = assert!(LOCKSTEP_MAX_WIDTH <= crate::small::SMALL);

/// The largest minibatch of a run that trains in lockstep ([`RunConfig::lockstep`]): a pack
/// holds every lane's rows and activations.
pub const LOCKSTEP_MAX_BATCH: usize = 4096;

/// A validated run configuration. It is written into every run's `config.json` (see
/// [`RunConfig::to_config_json`]), and its canonical JSON hashes to the run id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub data: DataSpec,
    /// How the source becomes a dataset (label column, hold-outs, standardization).
    pub data_options: DataOptions,
    /// Layer widths, input first and output last (so L = arch.len() - 1 dense layers). With
    /// `net`, the linear layers' widths in forward order (every other module keeps the width).
    pub arch: Vec<usize>,
    /// The network as a sequence of modules (`--net`); `None` for a plain MLP (`arch` and
    /// `act`), left out of the canonical JSON then so plain run ids are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetSpec>,
    /// `--preset` (with `net`); left out of the canonical JSON when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    pub act: Activation,
    pub init: Init,
    pub bias_init: Init,
    /// Per-layer weight initializer overrides, layer numbers from 1.
    pub layer_init: BTreeMap<usize, Init>,
    pub layer_bias_init: BTreeMap<usize, Init>,
    pub bias: bool,
    pub loss: Loss,
    pub optim: OptimConfig,
    pub schedule: Schedule,
    pub warmup: usize,
    pub clip_grad_norm: Option<f64>,
    pub batch: Batch,
    /// Total number of updates.
    pub steps: usize,
    /// When the run was given in epochs.
    pub epochs: Option<usize>,
    pub dropout: f64,
    pub seed: u64,
    pub precision: Precision,
    /// Evaluate (full train and test loss/accuracy) every this many updates, and at the end.
    pub eval_every: usize,
    pub init_from: Option<PathBuf>,
    /// SHA-256 of the `init_from` file's bytes (hex), so the run id follows the file's contents,
    /// not its name. Absent (and left out of the canonical JSON) without `init_from`, so other
    /// run ids are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from_sha256: Option<String>,
    /// Std of the Gaussian noise added to every gradient entry (a symmetry breaker), 0 for none.
    pub grad_noise: f64,
    /// Record gradient-flow, activation and spectral statistics (`--diagnostics on|off`).
    pub diagnostics: bool,
    /// Also record the input-output Jacobian spectrum at the end.
    pub jacobian_end: bool,
    /// Relative tolerance of the equitable partition (None: 1e-6 in f64, 1e-4 in f32).
    pub sym_tol: Option<f64>,
}

impl RunConfig {
    /// The tolerance of the equitable partition for this run's precision.
    pub fn symmetry_tolerance(&self) -> f64 {
        self.sym_tol.unwrap_or(match self.precision {
            Precision::F32 => 1e-4,
            Precision::F64 => 1e-6,
        })
    }

    /// Number of dense layers L.
    pub fn num_layers(&self) -> usize {
        self.arch.len() - 1
    }

    /// The network this config trains, in precision `T`, starting from `params` (drawn by
    /// [`crate::train::initial_params`] or a previous run): a plain MLP, or the `--net` spec
    /// built and set to `params`.
    pub fn network<T: Float>(&self, params: &Params) -> Net<T> {
        match &self.net {
            None => Net::plain(params, self.act, self.dropout),
            Some(spec) => {
                let mut net = build_net::<T>(spec, &self.build_options()).expect("validated net");
                net.set_values(params);
                net
            }
        }
    }

    /// What a `--net` spec leaves to this config: the data's widths, the initializers, seed.
    pub fn build_options(&self) -> BuildOptions {
        BuildOptions {
            inputs: self.arch[0],
            outputs: *self.arch.last().expect("validated arch"),
            init: self.init.clone(),
            bias_init: self.bias.then(|| self.bias_init.clone()),
            layer_init: self.layer_init.clone(),
            layer_bias_init: self.layer_bias_init.clone(),
            seed: self.seed,
            preset: self.preset,
        }
    }

    /// The initializers of each linear layer, overrides applied (with `--net`, a linear's own
    /// `init=` first).
    pub fn layer_inits(&self) -> Vec<LayerInits> {
        let own = self.net_shape().map(|s| s.inits).unwrap_or_default();
        (1..=self.num_layers())
            .map(|l| LayerInits {
                weight: own
                    .get(l - 1)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| self.layer_init.get(&l).unwrap_or(&self.init).clone()),
                bias: self
                    .layer_bias_init
                    .get(&l)
                    .unwrap_or(&self.bias_init)
                    .clone(),
            })
            .collect()
    }

    /// How the starting weights are chosen, in one word for tables and legends:
    /// `from W.safetensors` with `init_from`, else the weight initializer's spec.
    pub fn init_label(&self) -> String {
        match (&self.init_from, self.preset) {
            (Some(path), _) => format!("from {}", path.display()),
            (None, Some(p)) => format!("{} (preset; else {})", p.name(), self.init.spec()),
            (None, None) => self.init.spec(),
        }
    }

    /// How the starting biases are chosen, in one word: `from W.safetensors` with `init_from`,
    /// `none` without biases, else the bias initializer's spec.
    pub fn bias_init_label(&self) -> String {
        match &self.init_from {
            Some(_) => self.init_label(),
            None if !self.bias => "none".into(),
            None => self.bias_init.spec(),
        }
    }

    /// How the starting weights and biases are chosen, for headers: `from W.safetensors` with
    /// `init_from`, else `INIT / bias BIAS_INIT`.
    pub fn init_text(&self) -> String {
        match &self.init_from {
            Some(_) => self.init_label(),
            None => format!("{} / bias {}", self.init, self.bias_init),
        }
    }

    /// The run in one line for headers: `DATA | arch 2-16-16-2 | act tanh | init INIT | sgd lr
    /// 0.1` (commands append what they add, such as the precision and the steps).
    pub fn headline(&self) -> String {
        let model = match &self.net {
            Some(net) => format!("net {net}"),
            None => format!("arch {} | act {}", self.arch_text(), self.act),
        };
        format!(
            "{} | {model} | init {} | {} lr {}",
            self.data,
            self.init_text(),
            self.optim.kind,
            self.optim.lr
        )
    }

    /// The hidden activation as tables show it: `-` for a `--net` network (its spec says its
    /// activations).
    pub fn act_label(&self) -> String {
        match self.net {
            Some(_) => "-".into(),
            None => self.act.spec(),
        }
    }

    /// The shape of the `--net` network, when there is one (checked by [`validate`]).
    pub fn net_shape(&self) -> Option<NetShape> {
        let net = self.net.as_ref()?;
        let (i, o) = (self.arch[0], *self.arch.last().expect("validated arch"));
        Some(shape(net, i, o).expect("validated net"))
    }

    /// `2-16-16-2`.
    pub fn arch_text(&self) -> String {
        crate::nn::arch_text(&self.arch)
    }

    /// Number of trainable parameters, sum over layers of fan_in fan_out (+ fan_out with
    /// biases); saturating, so an absurd architecture cannot wrap. With `--net`, a bound: every
    /// linear layer with its bias, and 4 entries per unit of every other module (a norm's gain
    /// and bias, batchnorm's running statistics).
    pub fn num_params(&self) -> u64 {
        let linear = self.arch.windows(2).fold(0u64, |acc, w| {
            let (i, o) = (w[0] as u64, w[1] as u64);
            acc.saturating_add(i.saturating_mul(o)).saturating_add(
                if self.bias || self.net.is_some() {
                    o
                } else {
                    0
                },
            )
        });
        match self.net_shape() {
            Some(s) => linear.saturating_add(s.widths.saturating_mul(4)),
            None => linear,
        }
    }

    /// What training this config on `data` takes (see [`crate::memory`] for the parts): the data
    /// set as loaded, parameters, gradients, optimizer state, the training copy of the data and
    /// one batch's activations, and the diagnostics' work on the largest weight matrix. A sweep
    /// shares its data sets between runs (the "data" part counts once).
    pub fn memory_estimate(&self, data: &Dataset) -> MemoryEstimate {
        let s = match self.precision {
            Precision::F32 => 4,
            Precision::F64 => 8,
        };
        let p = self.num_params();
        let state = match self.optim.kind {
            OptimKind::Sgd => 0,
            OptimKind::Momentum | OptimKind::Nesterov | OptimKind::Rmsprop => 1,
            OptimKind::Adam | OptimKind::Adamw => 2,
        };
        let rows = data.train.len() + data.test.len() + data.val.as_ref().map_or(0, |v| v.len());
        let (input, output) = (self.arch[0] as u64, *self.arch.last().unwrap() as u64);
        let capacity = self.batch_size(data.train.len()).max(1024.min(rows)) as u64;
        // One row of activations: every layer's width, or with --net every module's (a module
        // keeps a few matrices of its width: the factor 4 below covers them).
        let widths = match self.net_shape() {
            Some(s) => s.widths.saturating_add(input),
            None => self
                .arch
                .iter()
                .fold(0u64, |acc, &w| acc.saturating_add(w as u64)),
        };
        // Features stored in the run's precision are borrowed for training; others are copied.
        let stored = match data.train.x {
            Features::F32(_) => 4,
            Features::F64(_) => 8,
        };
        let copied = if stored == s { 0 } else { input };
        let mut e = MemoryEstimate::default();
        e.add("data", data.bytes());
        // The parameters, their starting copy (for the verdict), their gradients and the copy
        // that measures the last updates (the gradient state).
        e.add("parameters", memory::bytes(p, 4 * s));
        e.add("optimizer state", memory::bytes(p, state * s));
        e.add(
            "workspace",
            memory::bytes(rows as u64, copied.saturating_add(output).saturating_mul(s))
                .saturating_add(memory::bytes(capacity, widths.saturating_mul(4 * s))),
        );
        // The metric records and the files made from them: about 8 figures per evaluation, and
        // (diagnostics on) about 12 per layer at each recorded step (every step up to 100, then
        // log-spaced: about 10 per factor of 10 in steps); a record, its CSV line and its event
        // together take about RECORD_BYTES.
        const RECORD_BYTES: u64 = 256;
        let evals = (self.steps / self.eval_every.max(1)) as u64 + 2;
        let mut records = evals.saturating_mul(8);
        if self.diagnostics {
            let largest = self.arch.windows(2).map(memory::product).max().unwrap_or(0);
            e.add("diagnostics", memory::bytes(largest, 3 * 8));
            let recorded = 100 + 10 * (self.steps.max(1) as f64).log10().ceil() as u64;
            let layers = (self.arch.len() - 1) as u64;
            records = records.saturating_add(recorded.saturating_mul(12 * layers));
        }
        e.add("records", memory::bytes(records, RECORD_BYTES));
        e
    }

    /// Whether this config's runs train in lockstep ([`crate::train::lanes`]), alone or beside
    /// other runs of the same network and data (`sweep`): a plain MLP without dropout, or a
    /// `--net` of linear layers, activations, residual blocks, gates and shifts (no norm, no
    /// dropout), whose widths are all at most [`LOCKSTEP_MAX_WIDTH`], plain SGD (no weight
    /// decay), no gradient noise or clipping, minibatches of at most [`LOCKSTEP_MAX_BATCH`] of the
    /// `train_rows` training rows. Anything else trains through the single-run engine alone.
    /// With diagnostics on, the steps that record gradient flow go through each run's engine.
    pub fn lockstep(&self, train_rows: usize) -> bool {
        self.net
            .as_ref()
            .is_none_or(|n| n.modules.iter().all(runs_in_a_pack))
            && self.dropout == 0.0
            && self.optim.is_plain_sgd()
            && self.grad_noise == 0.0
            && self.clip_grad_norm.is_none()
            && self.arch.iter().all(|&w| w <= LOCKSTEP_MAX_WIDTH)
            && self.batch_size(train_rows) <= LOCKSTEP_MAX_BATCH
    }

    /// Minibatch size for a training set of `n` rows.
    pub fn batch_size(&self, n: usize) -> usize {
        match self.batch {
            Batch::Full => n,
            Batch::Size(b) => b.min(n),
        }
    }

    /// The `config.json` of a run directory: the canonical fields, pretty-printed, except that a
    /// run started from a file shows `"init": "from W.safetensors"` (and the same for
    /// `bias_init`) instead of the unused default initializers, so nobody reads "pytorch" there.
    /// [`RunConfig::from_config_json`] reads it back to the same config (and so the same run id).
    pub fn to_config_json(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("RunConfig serialises");
        if self.init_from.is_some() {
            let label = serde_json::Value::String(self.init_label());
            value["init"] = label.clone();
            value["bias_init"] = label;
        }
        serde_json::to_vec_pretty(&value).expect("RunConfig serialises")
    }

    /// Reads a run directory's `config.json` (see [`RunConfig::to_config_json`]).
    pub fn from_config_json(bytes: &[u8]) -> std::result::Result<RunConfig, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !value["init_from"].is_null() {
            // The initializers a config with `init_from` holds (it refuses any other).
            let default = Init::Pytorch.spec();
            for key in ["init", "bias_init"] {
                if value[key].as_str().is_some_and(|s| s.starts_with("from ")) {
                    value[key] = serde_json::Value::String(default.clone());
                }
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The canonical JSON (field order fixed by this struct, maps sorted).
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("RunConfig serialises")
    }

    /// The stable run id: the first 16 hex digits of SHA-256 of the canonical JSON.
    pub fn run_id(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Names the data decides: (input dim, output dim, default loss).
fn data_shape(data: &Dataset, loss: Option<Loss>) -> Result<(usize, usize, Loss)> {
    let input = data.input_dim();
    match data.task {
        Task::Classification { classes } => {
            let loss = loss.unwrap_or(Loss::CrossEntropy);
            let out = if loss == Loss::BceWithLogits && classes == 2 {
                1
            } else {
                classes
            };
            Ok((input, out, loss))
        }
        Task::Regression { outputs } => {
            let loss = loss.unwrap_or(Loss::Mse);
            if loss != Loss::Mse {
                return Err(Error::config(
                    "--loss",
                    format!(
                        "{loss} needs class labels, but '{}' is a regression set (use mse)",
                        data.name
                    ),
                ));
            }
            Ok((input, outputs, loss))
        }
    }
}

fn positive(field: &str, v: i64) -> Result<usize> {
    if v >= 1 {
        Ok(v as usize)
    } else {
        Err(Error::config(field, format!("must be at least 1, got {v}")))
    }
}

fn finite(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::config(
            field,
            format!("must be a finite number, got {v}"),
        ))
    }
}

/// Splits `list` (the widths of `text`) at any of `seps`, naming the token as written in errors:
/// a '-' or '+' that starts a token is its sign, so `-3` is refused as `'-3'`, not as an empty
/// width.
fn parse_widths(field: &str, text: &str, list: &str, seps: &[char]) -> Result<Vec<usize>> {
    let mut widths = Vec::new();
    let mut rest = list.trim();
    loop {
        let sign = usize::from(rest.starts_with(['-', '+']));
        let end = rest[sign..].find(seps).map_or(rest.len(), |i| i + sign);
        let token = rest[..end].trim();
        match token.parse::<usize>() {
            Ok(n) if n > 0 => widths.push(n),
            _ if token.is_empty() => {
                return Err(Error::spec(
                    field,
                    text,
                    "empty width (a separator at either end, or two in a row)",
                ))
            }
            _ => {
                return Err(Error::spec(
                    field,
                    text,
                    format!("'{token}' is not a positive width"),
                ))
            }
        }
        if end == rest.len() {
            return Ok(widths);
        }
        rest = rest[end + 1..].trim_start();
    }
}

/// Parses `--hidden 16,16` (empty or "none" for no hidden layer).
fn parse_hidden(text: &str) -> Result<Vec<usize>> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") || t == "[]" {
        return Ok(Vec::new());
    }
    let list = t.trim_start_matches('[').trim_end_matches(']');
    parse_widths("--hidden", text, list, &[',', 'x', '-'])
}

fn hidden_text(arch: &[usize]) -> String {
    let h = &arch[1..arch.len() - 1];
    if h.is_empty() {
        "none".into()
    } else {
        h.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What `--init-from` read, as one line for the user (the CLI prints it as a note): where the
/// architecture, activation and biases came from and, for a file without initscope's metadata,
/// which keys were used. None without `--init-from`.
pub fn init_from_note(raw: &RawConfig, cfg: &RunConfig) -> Result<Option<String>> {
    let Some(path) = &cfg.init_from else {
        return Ok(None);
    };
    if cfg.net.is_some() {
        return Ok(Some(format!(
            "--init-from {}: every parameter and buffer of the --net network read by name",
            path.display()
        )));
    }
    let file = WeightsFile::read(path)?;
    let biases = if cfg.bias { "biases" } else { "no biases" };
    let arch = cfg.arch_text();
    Ok(Some(match file.act {
        Some(act) => format!(
            "--init-from {}: architecture {arch}, activation {} and {biases} read from the file's initscope metadata",
            path.display(),
            act.spec()
        ),
        None => {
            let act = match &raw.act {
                Some(_) => format!("the activation is not in the file: {} from --act", cfg.act.spec()),
                None => format!(
                    "the activation is not in the file: {} (the default; give --act if the model used another)",
                    cfg.act.spec()
                ),
            };
            format!(
                "--init-from {}: no initscope metadata; {} Linear layer(s) mapped in key order ({}), architecture {arch} with {biases}; {act}",
                path.display(),
                file.layers.len(),
                file.keys_text()
            )
        }
    }))
}

/// Whether a lockstep pack runs module `m` ([`crate::lockstep::LanePack::for_net`]).
fn runs_in_a_pack(m: &ModuleSpec) -> bool {
    match m {
        ModuleSpec::Linear(_) | ModuleSpec::Act(_) | ModuleSpec::Gate(_) | ModuleSpec::Shift(_) => {
            true
        }
        ModuleSpec::Res(r) => r.body.iter().all(runs_in_a_pack),
        ModuleSpec::Dropout(_)
        | ModuleSpec::LayerNorm(_)
        | ModuleSpec::RmsNorm(_)
        | ModuleSpec::BatchNorm(_) => false,
    }
}

/// Parses `--arch 2-16-16-2` (input, hidden..., output).
fn parse_arch(text: &str) -> Result<Vec<usize>> {
    let dims = parse_widths("--arch", text, text, &['-', ','])?;
    if dims.len() < 2 {
        return Err(Error::spec(
            "--arch",
            text,
            "needs at least an input and an output width, e.g. 2-16-2",
        ));
    }
    Ok(dims)
}

/// Parses per-layer overrides `L=SPEC`.
/// Parses `--layer-init`-style `LAYER=SPEC` items: LAYER is a linear layer's number (1..=L),
/// `out` (layer L), or with `--net` the linear layer's `state_dict` path (`2.body.1`, with or
/// without `.weight`), from `paths` (each linear layer's, in order).
fn parse_layer_map(
    field: &str,
    items: &[String],
    layers: usize,
    paths: &[String],
) -> Result<BTreeMap<usize, Init>> {
    let mut map = BTreeMap::new();
    for item in items {
        let (l, spec) = item
            .split_once('=')
            .ok_or_else(|| Error::spec(field, item, "expected LAYER=SPEC, e.g. 2=zeros"))?;
        let key = l.trim();
        // A tensor path names the weight (--layer-init) or the bias (--layer-bias-init); the
        // other tensor's name is refused rather than read as its layer.
        let (own, other) = if field == "--layer-bias-init" {
            (".bias", ".weight")
        } else {
            (".weight", ".bias")
        };
        if key.ends_with(other) {
            return Err(Error::spec(
                field,
                item,
                format!("'{key}' is not a {} tensor", &own[1..]),
            ));
        }
        let path = key.strip_suffix(own).unwrap_or(key);
        let l: usize = match (key.parse::<usize>(), key) {
            // A bare number is a layer number (a top-level path is written with its suffix,
            // `3.weight`).
            (Ok(n), _) => n,
            (_, "out") => layers,
            _ => match paths.iter().position(|p| p == path) {
                Some(i) => i + 1,
                None if paths.is_empty() => {
                    return Err(Error::spec(
                        field,
                        item,
                        format!("'{key}' is not a layer number (or `out`)"),
                    ))
                }
                None => {
                    return Err(Error::spec(
                        field,
                        item,
                        format!(
                            "'{key}' is not a layer number, `out` or a linear layer's path ({})",
                            paths.join(", ")
                        ),
                    ))
                }
            },
        };
        if l == 0 || l > layers {
            return Err(Error::spec(
                field,
                item,
                format!(
                    "layer {l} does not exist (layers are 1..={layers}, {layers} being the output)"
                ),
            ));
        }
        if map.insert(l, Init::parse(field, spec)?).is_some() {
            return Err(Error::spec(
                field,
                item,
                format!("layer {l} is given twice"),
            ));
        }
    }
    Ok(map)
}

/// Refuses a batchnorm network whose training batches can hold a single row (the batch
/// variance of one row is 0 and torch refuses it: "Expected more than 1 value per channel when
/// training"), naming which batch and suggesting a size.
fn check_batchnorm_batches(spec: &NetSpec, n: usize, batch_size: usize) -> Result<()> {
    let last = n % batch_size;
    let problem = if batch_size == 1 {
        "every training batch has 1 row".to_string()
    } else if last == 1 {
        format!(
            "the last batch of each epoch has 1 row ({n} training rows in batches of {batch_size})"
        )
    } else {
        return Ok(());
    };
    if n < 2 {
        return Err(Error::spec(
            "--net",
            &spec.canonical(),
            format!("batchnorm normalises over the batch, and the training split has {n} row(s): it needs at least 2"),
        ));
    }
    let suggest = (2..=n)
        .filter(|&b| n % b != 1)
        .min_by_key(|&b| b.abs_diff(batch_size))
        .unwrap_or(n);
    Err(Error::spec(
        "--net",
        &spec.canonical(),
        format!(
            "batchnorm normalises over the batch, and {problem}; use --batch {suggest} (or full)"
        ),
    ))
}

/// What to do instead of `flag` with `--net`.
fn net_instead(flag: &str) -> &'static str {
    match flag {
        "--arch" | "--hidden" => {
            "the spec gives the widths (linear(N) modules); drop one of the two"
        }
        "--act" => "write activations as modules in the spec (linear(64) relu ...); drop --act",
        _ => "write dropout(p) modules in the spec; drop --dropout",
    }
}

/// Refuses initializers that need a matrix (orthogonal, identity, sparse, ZerO, LSUV) as biases.
fn bias_only(init: Init, field: &str, text: &str) -> Result<Init> {
    if init.needs_matrix() {
        Err(Error::spec(
            field,
            text,
            "this initializer needs a weight matrix; it cannot initialise a bias vector",
        ))
    } else {
        Ok(init)
    }
}

/// Refuses an `--init-from` that is not a regular file (a device such as /dev/zero, a FIFO, a
/// folder) or that is larger than the memory limit, before it is read.
fn check_weights_file(path: &Path, limit: MemoryLimit) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::file(
            path,
            "is not a regular file (--init-from takes a .safetensors file)",
        ));
    }
    let mut e = MemoryEstimate::default();
    e.add("weights file", meta.len());
    e.check("--init-from", &format!("'{}'", path.display()), limit)
}

/// `text` cut to at most `max` characters around an ellipsis (for one-line messages).
fn short(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    let head: String = chars[..half].iter().collect();
    let tail: String = chars[chars.len() - half..].iter().collect();
    format!("{head}...{tail}")
}

/// The default data when none is given.
pub const DEFAULT_DATA: &str = "moons";

/// Validates a raw configuration and loads its dataset (whose shape decides the input and output
/// widths and the default loss).
pub fn validate(raw: &RawConfig) -> Result<(RunConfig, Dataset<'static>)> {
    let mut cache = DataCache::default();
    let (cfg, data) = validate_cached(raw, &mut cache)?;
    drop(cache);
    let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
    Ok((cfg, data))
}

/// Datasets already loaded, keyed by (spec, options, data dir), so a sweep loads each once; and
/// the machine's memory limit, read once.
#[derive(Default)]
pub struct DataCache<'a> {
    loaded: HashMap<String, Arc<Dataset<'a>>>,
    /// The limit every run is held to: a sweep's `--max-memory`, or the machine's (read once).
    limit: Option<MemoryLimit>,
    /// Bytes of the data sets loaded so far: they stay in memory together.
    loaded_bytes: u64,
}

impl DataCache<'_> {
    /// A cache whose runs are held to `limit` (a sweep's `--max-memory`) unless a run's own
    /// `max_memory` says otherwise.
    pub fn with_limit(limit: MemoryLimit) -> DataCache<'static> {
        DataCache {
            limit: Some(limit),
            ..DataCache::default()
        }
    }

    /// The run's `max_memory` when given, else the cache's limit (the machine's, read on first
    /// use).
    fn limit(&mut self, max_memory: Option<&str>) -> Result<MemoryLimit> {
        match max_memory {
            Some(_) => MemoryLimit::resolve(max_memory),
            None => Ok(*self.limit.get_or_insert_with(MemoryLimit::machine)),
        }
    }
}

/// The flags given that choose initializers (`--init`, `--bias-init`, `--layer-init`,
/// `--layer-bias-init`), which starting weights from elsewhere would leave unused.
fn initializer_flags(raw: &RawConfig) -> Vec<&'static str> {
    let given = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    [
        ("--init", raw.init.is_some()),
        ("--bias-init", raw.bias_init.is_some()),
        ("--layer-init", given(&raw.layer_init)),
        ("--layer-bias-init", given(&raw.layer_bias_init)),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect()
}

/// Refuses options that contradict each other (one of them would be silently ignored) and a
/// `--data-dir` that is not a directory.
fn refuse_contradictions(raw: &RawConfig) -> Result<()> {
    let given = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if let Some(path) = &raw.init_from {
        let ignored = initializer_flags(raw);
        if !ignored.is_empty() {
            return Err(Error::config(
                "--init-from",
                format!(
                    "the weights and biases come from {path}, so {} would be ignored; drop {} or --init-from",
                    ignored.join(" and "),
                    if ignored.len() == 1 { "it" } else { "them" }
                ),
            ));
        }
    }
    if raw.no_bias == Some(true) {
        for (flag, set) in [
            ("--bias-init", raw.bias_init.is_some()),
            ("--layer-bias-init", given(&raw.layer_bias_init)),
        ] {
            if set {
                return Err(Error::config(
                    flag,
                    "there are no biases to initialise with --no-bias; drop one of the two",
                ));
            }
        }
    }
    if let Some(dir) = &raw.data_dir {
        check_data_dir(dir)?;
    }
    Ok(())
}

/// Refuses a `--data-dir` that is missing or not a directory (a typo would otherwise fall back to
/// the default search path without a word).
pub fn check_data_dir(dir: &str) -> Result<()> {
    let path = Path::new(dir);
    if path.is_dir() {
        return Ok(());
    }
    let reason = if path.exists() {
        "is not a directory"
    } else {
        "no such directory"
    };
    Err(Error::spec("--data-dir", dir, reason))
}

/// Options that are valid but do nothing for this configuration (e.g. `--momentum` with adam,
/// `--task` with built-in data), one message each, for the caller to show as warnings. Call it
/// on a configuration that [`validate`] accepted; what does not parse is not reported here.
pub fn warnings(raw: &RawConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(kind) = OptimKind::parse("--optim", raw.optim.as_deref().unwrap_or("sgd")) {
        use OptimKind::*;
        for (flag, set, used_by, users) in [
            (
                "--momentum",
                raw.momentum.is_some(),
                &[Momentum, Nesterov][..],
                "momentum and nesterov",
            ),
            (
                "--beta1",
                raw.beta1.is_some(),
                &[Adam, Adamw],
                "adam and adamw",
            ),
            (
                "--beta2",
                raw.beta2.is_some(),
                &[Adam, Adamw],
                "adam and adamw",
            ),
            (
                "--eps",
                raw.eps.is_some(),
                &[Adam, Adamw, Rmsprop],
                "adam, adamw and rmsprop",
            ),
            ("--alpha", raw.alpha.is_some(), &[Rmsprop], "rmsprop"),
        ] {
            if set && !used_by.contains(&kind) {
                out.push(format!(
                    "{flag} has no effect with --optim {kind} (used by {users} only)"
                ));
            }
        }
    }
    let text = raw.data.as_deref().unwrap_or(DEFAULT_DATA);
    if let Ok(data) = DataSpec::parse("--data", text) {
        let csv = matches!(data, DataSpec::Csv { .. });
        let numpy = matches!(
            data,
            DataSpec::Npy { .. } | DataSpec::Npz { .. } | DataSpec::Arrays { .. }
        );
        let images = matches!(data, DataSpec::Images(_));
        let own_test = images || matches!(data, DataSpec::Synthetic(_) | DataSpec::Mnist1d(_));
        for (flag, set, used, users) in [
            (
                "--task",
                raw.task.is_some(),
                csv || numpy,
                "CSV and NumPy files",
            ),
            (
                "--label-column",
                raw.label_column.is_some(),
                csv,
                "CSV files",
            ),
            (
                "--data-dir",
                raw.data_dir.is_some(),
                images,
                "fashion-mnist and mnist",
            ),
            (
                "--test-fraction",
                raw.test_fraction.is_some(),
                !own_test,
                "files without a test split",
            ),
        ] {
            if set && !used {
                out.push(format!(
                    "{flag} has no effect on the data '{text}' (used by {users} only)"
                ));
            }
        }
    }
    out
}

/// How `raw` says a source becomes a dataset (label column, task, hold-outs, standardization).
fn data_options(raw: &RawConfig) -> Result<DataOptions> {
    let defaults = DataOptions::default();
    Ok(DataOptions {
        label_column: raw.label_column.clone(),
        task: raw
            .task
            .as_deref()
            .map(|t| TaskKind::parse("--task", t))
            .transpose()?,
        test_fraction: finite(
            "--test-fraction",
            raw.test_fraction.unwrap_or(defaults.test_fraction),
        )?,
        val_fraction: finite(
            "--val-fraction",
            raw.val_fraction.unwrap_or(defaults.val_fraction),
        )?,
        standardize: raw.standardize.unwrap_or(defaults.standardize),
    })
}

/// The key of a loaded dataset in a [`DataCache`].
fn cache_key(spec: &DataSpec, options: &DataOptions, raw: &RawConfig) -> String {
    format!(
        "{}|{}|{:?}",
        spec,
        serde_json::to_string(options).expect("options serialise"),
        raw.data_dir
    )
}

/// [`validate`] for data already in memory (initscope's Python package): features `x` in the
/// precision they are to be trained in and targets `y`, made a dataset by
/// [`crate::data::from_arrays`] under `raw`'s data options (`task`, `test_fraction`,
/// `val_fraction`, `standardize`: the rules of an `npy:X,Y` pair); the config's data is their
/// `arrays:DIGEST` spec, so the run id follows the arrays' contents. `raw.data` must be unset.
pub fn validate_arrays<'a>(
    raw: &RawConfig,
    x: Features<'a>,
    y: crate::matrix::Matrix<f64>,
) -> Result<(RunConfig, Dataset<'a>)> {
    if let Some(spec) = &raw.data {
        return Err(Error::spec(
            "--data",
            spec,
            "arrays are given as the data, so this spec would be ignored; give one of the two",
        ));
    }
    refuse_contradictions(raw)?;
    let options = data_options(raw)?;
    let (spec, data) = crate::data::from_arrays(x, y, &options)?;
    let raw = RawConfig {
        data: Some(spec.spec()),
        ..raw.clone()
    };
    let mut cache = DataCache {
        loaded_bytes: data.bytes(),
        ..DataCache::default()
    };
    cache
        .loaded
        .insert(cache_key(&spec, &options, &raw), Arc::new(data));
    let (cfg, data) = validate_cached(&raw, &mut cache)?;
    drop(cache);
    let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
    Ok((cfg, data))
}

/// A validated config whose starting weights are `given` (tensors in memory, such as a PyTorch
/// module's, [`NamedTensors::in_memory`]) instead of its initializers. `raw` is what `cfg` was
/// validated from: flags that choose initializers (`--init`, `--bias-init`, `--layer-init`,
/// `--layer-bias-init`, `--preset`) or another source (`--init-from`) would be ignored, so they
/// are refused, as `--init-from FILE` refuses them. The config then names the tensors' label in
/// `init_from` and their SHA-256 in `init_from_sha256`, so the run id follows the weights. That
/// they fit the network is checked when they are loaded
/// ([`crate::train::params_from`]).
///
/// [`NamedTensors::in_memory`]: crate::weights::NamedTensors::in_memory
pub fn with_weights(
    raw: &RawConfig,
    cfg: RunConfig,
    given: &crate::weights::NamedTensors,
) -> Result<RunConfig> {
    let mut ignored = initializer_flags(raw);
    for (flag, set) in [
        ("--preset", raw.preset.is_some()),
        ("--init-from", raw.init_from.is_some()),
    ] {
        if set {
            ignored.push(flag);
        }
    }
    if let Some(first) = ignored.first() {
        return Err(Error::config(
            first,
            format!(
                "the starting weights are {}'s, so {} would be ignored; drop {}",
                given.path.display(),
                ignored.join(" and "),
                if ignored.len() == 1 { "it" } else { "them" }
            ),
        ));
    }
    Ok(RunConfig {
        init_from: Some(given.path.clone()),
        init_from_sha256: Some(given.sha256.clone()),
        ..cfg
    })
}

/// [`validate`] with a cache of loaded datasets.
pub fn validate_cached<'a>(
    raw: &RawConfig,
    cache: &mut DataCache<'a>,
) -> Result<(RunConfig, Arc<Dataset<'a>>)> {
    refuse_contradictions(raw)?;
    let data_spec = DataSpec::parse("--data", raw.data.as_deref().unwrap_or(DEFAULT_DATA))?;
    let data_options = data_options(raw)?;
    let key = cache_key(&data_spec, &data_options, raw);
    let limit = cache.limit(raw.max_memory.as_deref())?;
    if let Some(path) = &raw.init_from {
        check_weights_file(Path::new(path), limit)?;
    }
    let data = match cache.loaded.get(&key) {
        Some(d) => d.clone(),
        None => {
            let mut e = data_spec.estimate()?;
            e.add("data sets loaded before", cache.loaded_bytes);
            e.check("--data", &format!("'{data_spec}'"), limit)?;
            let d =
                Arc::new(data_spec.load(&data_options, raw.data_dir.as_deref().map(Path::new))?);
            cache.loaded_bytes = cache.loaded_bytes.saturating_add(d.bytes());
            cache.loaded.insert(key, d.clone());
            d
        }
    };
    let loss = raw
        .loss
        .as_deref()
        .map(|s| Loss::parse("--loss", s))
        .transpose()?;
    let (input, output, loss) = data_shape(&data, loss)?;

    // A --net network reads its file by tensor name (checked against the spec when the run
    // starts); a plain MLP's file decides its architecture.
    let (from, net_file_sha) = match (&raw.init_from, &raw.net) {
        (Some(p), Some(_)) => (
            None,
            Some(crate::weights::NamedTensors::read(Path::new(p))?.sha256),
        ),
        (p, _) => (
            p.as_deref()
                .map(|p| WeightsFile::read(Path::new(p)))
                .transpose()?,
            None,
        ),
    };
    let net = match raw.net.as_deref() {
        None => None,
        Some(text) => {
            let given = [
                ("--arch", raw.arch.is_some()),
                ("--hidden", raw.hidden.is_some()),
                ("--act", raw.act.is_some()),
                ("--dropout", raw.dropout.is_some()),
            ];
            if let Some((flag, _)) = given.into_iter().find(|(_, set)| *set) {
                return Err(Error::config(
                    "--net",
                    format!("{flag} cannot be used with --net: {}", net_instead(flag)),
                ));
            }
            let spec = NetSpec::parse(text)?;
            let shape = shape(&spec, input, output)?;
            if shape.dims.len() < 2 {
                return Err(Error::spec(
                    "--net",
                    &spec.canonical(),
                    "the network needs at least one linear layer (end with a bare `linear`)",
                ));
            }
            Some((shape, spec))
        }
    };
    let preset = match (&raw.preset, &net) {
        (None, _) => None,
        (Some(text), None) => {
            return Err(Error::spec(
                "--preset",
                text,
                "presets initialise residual blocks: give the network with --net",
            ))
        }
        (Some(text), Some((_, spec))) => {
            let p = Preset::parse("--preset", text)?;
            p.plan(spec)
                .map_err(|reason| Error::spec("--net", &spec.canonical(), reason))?;
            Some(p)
        }
    };
    let arch = match (&raw.arch, &raw.hidden) {
        _ if net.is_some() => net.as_ref().map(|(s, _)| s.dims.clone()).expect("checked"),
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "--arch",
                "give either --arch or --hidden, not both",
            ))
        }
        (a, h) if from.is_some() => {
            let file = from.as_ref().expect("checked");
            let path = raw.init_from.as_deref().unwrap_or_default();
            let contradiction = |flag: &str, text: &str, read: String| {
                Error::spec(
                    flag,
                    text,
                    format!(
                        "contradicts --init-from {path}, whose tensors give {read}; drop {flag} (the file decides the architecture)"
                    ),
                )
            };
            if let Some(a) = a {
                if parse_arch(a)? != file.arch {
                    return Err(contradiction("--arch", a, crate::nn::arch_text(&file.arch)));
                }
            }
            if let Some(h) = h {
                if parse_hidden(h)? != file.arch[1..file.arch.len() - 1] {
                    return Err(contradiction(
                        "--hidden",
                        h,
                        format!("hidden widths {}", hidden_text(&file.arch)),
                    ));
                }
            }
            if file.arch[0] != input || *file.arch.last().unwrap() != output {
                return Err(Error::config(
                    "--init-from",
                    format!(
                        "{path} holds a {} network, but the data '{data_spec}' with loss {loss} needs input width {input} and output width {output}",
                        crate::nn::arch_text(&file.arch)
                    ),
                ));
            }
            file.arch.clone()
        }
        (Some(a), None) => {
            let dims = parse_arch(a)?;
            if dims[0] != input || *dims.last().unwrap() != output {
                return Err(Error::spec(
                    "--arch",
                    a,
                    format!(
                        "the data '{}' with loss {loss} needs input width {input} and output width {output}",
                        data_spec
                    ),
                ));
            }
            dims
        }
        (None, h) => {
            let hidden = parse_hidden(h.as_deref().unwrap_or("16,16"))?;
            let mut dims = vec![input];
            dims.extend(hidden);
            dims.push(output);
            dims
        }
    };
    let layers = arch.len() - 1;

    let act = match (&from, raw.act.as_deref()) {
        (Some(file), given) if file.act.is_some() => {
            let read = file.act.expect("checked");
            if let Some(text) = given {
                if Activation::parse("--act", text)? != read {
                    return Err(Error::spec(
                        "--act",
                        text,
                        format!(
                            "contradicts --init-from {}, whose metadata says the activation is {}; drop --act (the file decides it)",
                            raw.init_from.as_deref().unwrap_or_default(),
                            read.spec()
                        ),
                    ));
                }
            }
            read
        }
        (_, given) => Activation::parse("--act", given.unwrap_or("tanh"))?,
    };
    let bias = match &from {
        Some(file) => {
            if raw.no_bias == Some(true) && file.bias {
                return Err(Error::config(
                    "--no-bias",
                    format!(
                        "contradicts --init-from {}, which holds biases ({}); drop --no-bias",
                        raw.init_from.as_deref().unwrap_or_default(),
                        file.layers
                            .iter()
                            .filter_map(|l| l.bias.as_deref())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            file.bias
        }
        None => !raw.no_bias.unwrap_or(false),
    };
    let init = Init::parse("--init", raw.init.as_deref().unwrap_or("pytorch"))?;
    // A preset (pytorch, keras, flax, candle) sets the bias too, as its framework does; any other
    // weight initializer leaves biases at zero unless --bias-init says otherwise (the Keras/JAX
    // convention).
    let bias_init = match raw.bias_init.as_deref() {
        Some(s) => bias_only(Init::parse("--bias-init", s)?, "--bias-init", s)?,
        None if init.is_preset() => init.clone(),
        None => Init::Zeros,
    };
    let paths = net
        .as_ref()
        .map(|(s, _)| s.linear_paths.clone())
        .unwrap_or_default();
    let layer_init = parse_layer_map(
        "--layer-init",
        raw.layer_init.as_deref().unwrap_or(&[]),
        layers,
        &paths,
    )?;
    let layer_bias_init = parse_layer_map(
        "--layer-bias-init",
        raw.layer_bias_init.as_deref().unwrap_or(&[]),
        layers,
        &paths,
    )?;
    for (l, i) in &layer_bias_init {
        bias_only(i.clone(), "--layer-bias-init", &format!("{l}={i}"))?;
    }
    if let Some(p) = preset {
        let lsuv = |i: &Init| matches!(i, Init::Lsuv { .. });
        if lsuv(&init) || layer_init.values().any(lsuv) {
            return Err(Error::config(
                "--preset",
                format!(
                    "{} sets the linear layers' scales, and LSUV would rescale them; drop lsuv or the preset",
                    p.name()
                ),
            ));
        }
    }

    let kind = OptimKind::parse("--optim", raw.optim.as_deref().unwrap_or("sgd"))?;
    let mut optim = OptimConfig::new(kind);
    if let Some(lr) = raw.lr {
        optim.lr = lr;
    }
    if let Some(m) = raw.momentum {
        optim.momentum = m;
    }
    if let Some(b) = raw.beta1 {
        optim.beta1 = b;
    }
    if let Some(b) = raw.beta2 {
        optim.beta2 = b;
    }
    if let Some(e) = raw.eps {
        optim.eps = e;
    }
    if let Some(a) = raw.alpha {
        optim.alpha = a;
    }
    if let Some(wd) = raw.weight_decay {
        optim.weight_decay = wd;
    }
    if let Some(list) = &raw.no_decay {
        optim.no_decay = crate::optim::NoDecay::parse_list("--no-decay", list)?;
    }
    optim.validate().map_err(|e| match e {
        Error::Config { field, reason } => Error::Config {
            field: format!("--{}", field.replace('_', "-")),
            reason,
        },
        e => e,
    })?;

    let schedule = Schedule::parse("--schedule", raw.schedule.as_deref().unwrap_or("constant"))?;
    let warmup = match raw.warmup {
        None => 0,
        Some(w) if w >= 0 => w as usize,
        Some(w) => return Err(Error::config("--warmup", format!("must be >= 0, got {w}"))),
    };
    let clip_grad_norm = match raw.clip_grad_norm {
        None => None,
        Some(c) if c.is_finite() && c > 0.0 => Some(c),
        Some(c) => {
            return Err(Error::config(
                "--clip-grad-norm",
                format!("must be > 0, got {c}"),
            ))
        }
    };

    let batch = match &raw.batch {
        None => Batch::Size(64),
        Some(BatchArg::Size(n)) => Batch::Size(positive("--batch", *n)?),
        Some(BatchArg::Name(s)) if s.eq_ignore_ascii_case("full") => Batch::Full,
        Some(BatchArg::Name(s)) => match s.trim().parse::<i64>() {
            Ok(n) => Batch::Size(positive("--batch", n)?),
            Err(_) => {
                return Err(Error::spec(
                    "--batch",
                    s,
                    "must be a positive integer or 'full'",
                ))
            }
        },
    };
    let n = data.train.len();
    let batch_size = match batch {
        Batch::Full => n,
        Batch::Size(b) => b.min(n),
    };
    let steps_per_epoch = n.div_ceil(batch_size);
    let (steps, epochs) = match (raw.steps, raw.epochs) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "--steps",
                "give either --steps or --epochs, not both",
            ))
        }
        (Some(s), None) if s >= 0 => (s as usize, None),
        (Some(s), None) => return Err(Error::config("--steps", format!("must be >= 0, got {s}"))),
        (None, Some(e)) => {
            let e = positive("--epochs", e)?;
            (e * steps_per_epoch, Some(e))
        }
        (None, None) => (1000, None),
    };
    let dropout = finite("--dropout", raw.dropout.unwrap_or(0.0))?;
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::config(
            "--dropout",
            format!("must be in [0, 1), got {dropout}"),
        ));
    }
    let seed = match raw.seed {
        None => 0,
        Some(s) if s >= 0 => s as u64,
        Some(s) => return Err(Error::config("--seed", format!("must be >= 0, got {s}"))),
    };
    let precision = Precision::parse(raw.precision.as_deref().unwrap_or("f32"))?;
    let grad_noise = finite("--grad-noise", raw.grad_noise.unwrap_or(0.0))?;
    if grad_noise < 0.0 {
        return Err(Error::config(
            "--grad-noise",
            format!("must be >= 0, got {grad_noise}"),
        ));
    }
    let diagnostics = match raw
        .diagnostics
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("on") | Some("true") => true,
        Some("off") | Some("false") => false,
        Some(other) => return Err(Error::spec("--diagnostics", other, "must be on or off")),
    };
    let sym_tol = match raw.sym_tol {
        None => None,
        Some(t) if t.is_finite() && t >= 0.0 => Some(t),
        Some(t) => return Err(Error::config("--sym-tol", format!("must be >= 0, got {t}"))),
    };
    let eval_every = match raw.eval_every {
        Some(e) => positive("--eval-every", e)?,
        None => match epochs {
            Some(_) => steps_per_epoch,
            None => (steps / 20).max(1),
        },
    };
    if let Some((shape, spec)) = &net {
        if shape.kinds.contains(&"batchnorm") {
            check_batchnorm_batches(spec, n, batch_size)?;
        }
    }
    let config = RunConfig {
        data: data_spec,
        data_options,
        arch,
        net: net.map(|(_, spec)| spec),
        preset,
        act,
        init,
        bias_init,
        layer_init,
        layer_bias_init,
        bias,
        loss,
        optim,
        schedule,
        warmup,
        clip_grad_norm,
        batch,
        steps,
        epochs,
        dropout,
        seed,
        precision,
        eval_every,
        init_from: raw.init_from.as_ref().map(PathBuf::from),
        init_from_sha256: match (&from, &net_file_sha) {
            (Some(f), _) => Some(f.sha256.clone()),
            (None, sha) => sha.clone(),
        },
        grad_noise,
        diagnostics,
        jacobian_end: raw.jacobian_end.unwrap_or(false),
        sym_tol,
    };
    let mut estimate = config.memory_estimate(&data);
    estimate.add(
        "other data sets",
        cache.loaded_bytes.saturating_sub(data.bytes()),
    );
    estimate.check(
        "memory",
        &format!(
            "the network {} ({}, {} parameters, batch {})",
            short(&config.arch_text(), 60),
            config.precision.name(),
            config.num_params(),
            batch_size
        ),
        limit,
    )?;
    Ok((config, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &str) -> RawConfig {
        toml::from_str(pairs).unwrap()
    }

    #[test]
    fn merging_keeps_the_file_and_replaces_what_the_flags_set() {
        let file =
            raw("lr = 0.5\nno_bias = true\nbatch = 32\nlayer_init = [\"1=zeros\"]\nseed = 3");
        let flags = RawConfig {
            lr: Some(f64::NAN),
            batch: Some(BatchArg::Name("full".into())),
            layer_init: Some(vec![]),
            hidden: Some(String::new()),
            ..Default::default()
        };
        let m = file.clone().merged_with(flags);
        assert!(m.lr.unwrap().is_nan());
        assert_eq!(m.batch, Some(BatchArg::Name("full".into())));
        assert_eq!(m.layer_init, Some(vec![]));
        assert_eq!(m.hidden.as_deref(), Some(""));
        assert_eq!((m.no_bias, m.seed), (Some(true), Some(3)));
        assert_eq!(file.clone().merged_with(RawConfig::default()), file);
        assert_eq!(RawConfig::default().merged_with(file.clone()), file);
    }

    #[test]
    fn defaults_follow_the_conventions() {
        let (c, _) = validate(&RawConfig::default()).unwrap();
        assert_eq!(c.arch, vec![2, 16, 16, 2]);
        assert_eq!(c.loss, Loss::CrossEntropy);
        assert_eq!(c.optim.kind, OptimKind::Sgd);
        assert_eq!(c.optim.lr, 0.1);
        assert_eq!(c.batch, Batch::Size(64));
        assert_eq!(c.init, Init::Pytorch);
        assert_eq!(c.bias_init, Init::Pytorch);
        assert_eq!(c.precision, Precision::F32);
        assert_eq!(c.seed, 0);
        let (c, _) = validate(&raw("optim = \"adam\"\ndata = \"teacher\"")).unwrap();
        assert_eq!(c.optim.lr, 1e-3);
        assert_eq!(c.loss, Loss::Mse);
    }

    #[test]
    fn arch_and_hidden_agree_and_zero_hidden_layers_are_allowed() {
        let (a, _) = validate(&raw("arch = \"2-8-2\"")).unwrap();
        let (h, _) = validate(&raw("hidden = \"8\"")).unwrap();
        assert_eq!(a.arch, h.arch);
        let (z, _) = validate(&raw("hidden = \"\"")).unwrap();
        assert_eq!(z.arch, vec![2, 2]);
        assert!(validate(&raw("arch = \"3-8-2\"")).is_err());
        let (b, _) = validate(&raw("loss = \"bce\"")).unwrap();
        assert_eq!(*b.arch.last().unwrap(), 1);
    }

    #[test]
    fn run_id_is_stable_and_sensitive() {
        let (a, _) = validate(&RawConfig::default()).unwrap();
        let (b, _) = validate(&RawConfig::default()).unwrap();
        assert_eq!(a.run_id(), b.run_id());
        assert_eq!(a.run_id().len(), 16);
        let (c, _) = validate(&raw("seed = 1")).unwrap();
        assert_ne!(a.run_id(), c.run_id());
        let back: RunConfig = serde_json::from_str(&a.canonical_json()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn config_json_round_trips_to_the_same_config_and_id() {
        let (plain, _) = validate(&raw("data = \"xor\"\ninit = \"zeros\"")).unwrap();
        let text = plain.to_config_json();
        assert_eq!(RunConfig::from_config_json(&text).unwrap(), plain);
        let mut from = plain.clone();
        from.init = Init::Pytorch;
        from.bias_init = Init::Pytorch;
        from.init_from = Some(PathBuf::from("w.safetensors"));
        from.init_from_sha256 = Some("ab".repeat(32));
        let text = from.to_config_json();
        let shown: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(shown["init"], "from w.safetensors");
        assert_eq!(shown["bias_init"], "from w.safetensors");
        let back = RunConfig::from_config_json(&text).unwrap();
        assert_eq!(back, from);
        assert_eq!(back.run_id(), from.run_id());
    }

    #[test]
    fn existing_run_ids_do_not_change() {
        // Ids written by initscope before `init_from_sha256` existed (train --steps 0 --json).
        for (toml, id) in [
            ("steps = 0", "766f789449b3440d"),
            ("steps = 0\nseed = 1", "6636e76c15187f77"),
            (
                "steps = 0\ndata = \"xor\"\nhidden = \"8\"\nact = \"relu\"\ninit = \"zeros\"",
                "7bd2ffb0e709f254",
            ),
            (
                "steps = 0\ndata = \"teacher\"\noptim = \"adam\"\nprecision = \"f64\"\nbatch = \"full\"",
                "7b47d79be3d6ca62",
            ),
        ] {
            let (c, _) = validate(&raw(toml)).unwrap();
            assert_eq!(c.run_id(), id, "{toml}");
            assert!(!c.canonical_json().contains("init_from_sha256"));
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for (toml, flag) in [
            ("lr = -1.0", "--lr"),
            ("dropout = 1.0", "--dropout"),
            ("batch = 0", "--batch"),
            ("batch = \"most\"", "--batch"),
            ("hidden = \"4,0\"", "--hidden"),
            ("act = \"relu6\"", "--act"),
            ("optim = \"lbfgs\"", "--optim"),
            ("layer_init = [\"9=zeros\"]", "--layer-init"),
            ("data = \"teacher\"\nloss = \"cross_entropy\"", "--loss"),
            ("steps = 5\nepochs = 2", "--steps"),
        ] {
            let e = validate(&raw(toml)).unwrap_err().to_string();
            assert!(e.starts_with(flag), "{toml}: {e}");
        }
    }

    #[test]
    fn width_errors_name_the_token_as_written() {
        for (text, token) in [
            ("-3", "'-3'"),
            ("16,-3", "'-3'"),
            ("16--3", "'-3'"),
            ("8,0", "'0'"),
            ("8,abc", "'abc'"),
            ("16,,16", "empty width"),
            ("16-", "empty width"),
        ] {
            let e = parse_hidden(text).unwrap_err().to_string();
            assert!(e.starts_with("--hidden"), "{text}: {e}");
            assert!(e.contains(token), "{text}: {e}");
        }
        let e = parse_hidden("-3").unwrap_err().to_string();
        assert_eq!(e, "--hidden '-3': '-3' is not a positive width");
        assert_eq!(parse_hidden("[16, 8x4-2]").unwrap(), vec![16, 8, 4, 2]);
        let e = parse_arch("2--16-2").unwrap_err().to_string();
        assert_eq!(e, "--arch '2--16-2': '-16' is not a positive width");
        let e = parse_arch("-2-16-2").unwrap_err().to_string();
        assert!(e.contains("'-2' is not a positive width"), "{e}");
        assert_eq!(parse_arch("2-16-16-2").unwrap(), vec![2, 16, 16, 2]);
    }

    #[test]
    fn contradicting_options_are_refused_naming_both() {
        for (toml, want) in [
            (
                "init_from = \"w.safetensors\"\ninit = \"zeros\"",
                "--init-from: the weights and biases come from w.safetensors, so --init would be ignored; drop it or --init-from",
            ),
            (
                "init_from = \"w.safetensors\"\nbias_init = \"zeros\"\nlayer_bias_init = [\"1=zeros\"]",
                "--init-from: the weights and biases come from w.safetensors, so --bias-init and --layer-bias-init would be ignored; drop them or --init-from",
            ),
            (
                "init_from = \"w.safetensors\"\nlayer_init = [\"1=lsuv\"]",
                "so --layer-init would be ignored",
            ),
            (
                "no_bias = true\nbias_init = \"zeros\"",
                "--bias-init: there are no biases to initialise with --no-bias; drop one of the two",
            ),
            (
                "no_bias = true\nlayer_bias_init = [\"2=zeros\"]",
                "--layer-bias-init: there are no biases to initialise with --no-bias",
            ),
            (
                "data_dir = \"/nonexistent/initscope-data\"",
                "--data-dir '/nonexistent/initscope-data': no such directory",
            ),
            (
                "data_dir = \"Cargo.toml\"",
                "--data-dir 'Cargo.toml': is not a directory",
            ),
        ] {
            let e = validate(&raw(toml)).unwrap_err().to_string();
            assert!(e.starts_with(want) || e.contains(want), "{toml}: {e}");
        }
        // Alone, or with what they do not contradict, each is accepted.
        for toml in [
            "init_from = \"w.safetensors\"\nno_bias = true\nlayer_init = []",
            "no_bias = true\ninit = \"zeros\"",
            "data_dir = \".\"\nbias_init = \"zeros\"",
        ] {
            refuse_contradictions(&raw(toml)).unwrap();
        }
    }

    #[test]
    fn options_that_do_nothing_are_warned_about() {
        let w = |toml: &str| warnings(&raw(toml));
        assert_eq!(
            w("momentum = 0.5\nbeta1 = 0.8\nbeta2 = 0.9\nalpha = 0.9\neps = 1e-7"),
            [
                "--momentum has no effect with --optim sgd (used by momentum and nesterov only)",
                "--beta1 has no effect with --optim sgd (used by adam and adamw only)",
                "--beta2 has no effect with --optim sgd (used by adam and adamw only)",
                "--eps has no effect with --optim sgd (used by adam, adamw and rmsprop only)",
                "--alpha has no effect with --optim sgd (used by rmsprop only)",
            ]
        );
        assert_eq!(
            w("optim = \"adam\"\nmomentum = 0.5\nbeta1 = 0.8"),
            ["--momentum has no effect with --optim adam (used by momentum and nesterov only)"]
        );
        assert_eq!(
            w("optim = \"rmsprop\"\nmomentum = 0.5\nalpha = 0.9\neps = 1e-6"),
            ["--momentum has no effect with --optim rmsprop (used by momentum and nesterov only)"]
        );
        assert_eq!(
            w("data = \"xor\"\ntask = \"regression\"\nlabel_column = \"0\"\ndata_dir = \".\"\ntest_fraction = 0.5"),
            [
                "--task has no effect on the data 'xor' (used by CSV and NumPy files only)",
                "--label-column has no effect on the data 'xor' (used by CSV files only)",
                "--data-dir has no effect on the data 'xor' (used by fashion-mnist and mnist only)",
                "--test-fraction has no effect on the data 'xor' (used by files without a test split only)",
            ]
        );
        assert_eq!(
            w("data = \"mnist1d\"\ntest_fraction = 0.3"),
            ["--test-fraction has no effect on the data 'mnist1d' (used by files without a test split only)"]
        );
        assert_eq!(
            w("data = \"idx:a,b\"\ntask = \"regression\"\ntest_fraction = 0.3"),
            ["--task has no effect on the data 'idx:a,b' (used by CSV and NumPy files only)"]
        );
        assert_eq!(
            w("data = \"npy:x.npy,y.npy\"\nlabel_column = \"0\""),
            ["--label-column has no effect on the data 'npy:x.npy,y.npy' (used by CSV files only)"]
        );
        // What is used is not warned about.
        for toml in [
            "",
            "optim = \"momentum\"\nmomentum = 0.5",
            "optim = \"nesterov\"\nmomentum = 0.5",
            "optim = \"adamw\"\nbeta1 = 0.8\nbeta2 = 0.9\neps = 1e-6",
            "optim = \"rmsprop\"\nalpha = 0.9\neps = 1e-6",
            "data = \"d.csv\"\ntask = \"regression\"\nlabel_column = \"y\"\ntest_fraction = 0.5",
            "data = \"d.npz\"\ntask = \"classification\"",
            "data = \"mnist\"\ndata_dir = \".\"",
            "data = \"fashion-mnist\"\ndata_dir = \".\"",
        ] {
            assert!(w(toml).is_empty(), "{toml}: {:?}", w(toml));
        }
    }
}
