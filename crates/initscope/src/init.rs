//! Initializers: one enum, one [`Init::fill`]; every variant documents its formula and source.
//!
//! Values are drawn in f64 from the layer's own stream ([`crate::rng::stream`] with
//! `Stream::Weight(l)` or `Stream::Bias(l)`) and cast to the training precision afterwards, so the
//! starting point never depends on the precision, the optimizer or another layer's initializer.
//!
//! Names mean what they mean in their home framework (DESIGN.md, Conventions):
//! - PyTorch names (`xavier_*`, `kaiming_*`, `trunc_normal`, `orthogonal`, `eye`, `sparse`)
//!   behave like `torch.nn.init`: normal kinds are untruncated.
//! - Keras/JAX names (`glorot_*`, `he_*`, `lecun_*`, `variance_scaling`) behave like Keras: normal
//!   kinds are truncated at ±2 std and divided by 0.87962566103423978 so that the variance after
//!   truncation is exactly `scale / fan`. Uniform kinds agree across frameworks.
//! - Fans always come from the layer (`fan_in` = inputs, `fan_out` = outputs), for biases too.
//! - Default gains follow PyTorch; `gain=auto` uses the activation that follows the layer (the
//!   network's activation for hidden layers, the identity for the output layer).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use crate::spec::{fmt_f64, parse_f64, Spec};

/// `1 / std` of a standard normal truncated to [-2, 2]: the Keras/JAX variance correction.
pub const TRUNC_NORMAL_STD_CORRECTION: f64 = 0.879_625_661_034_239_8;

/// The fans of the layer a tensor belongs to: weights are `(fan_out, fan_in)`, the bias has
/// `fan_out` entries, and both see the layer's fans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    pub fan_in: usize,
    pub fan_out: usize,
}

/// Which tensor of the layer is being filled (presets treat weight and bias differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Weight,
    Bias,
}

/// Everything an initializer may look at besides its own arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillContext {
    pub fans: Fans,
    /// The activation applied to this layer's output (identity for the output layer).
    pub act: Activation,
    pub role: Role,
}

/// Which fan a variance-scaling initializer divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
    /// (fan_in + fan_out) / 2.
    FanAvg,
}

impl FanMode {
    pub fn fan(self, fans: Fans) -> f64 {
        match self {
            FanMode::FanIn => fans.fan_in as f64,
            FanMode::FanOut => fans.fan_out as f64,
            FanMode::FanAvg => (fans.fan_in + fans.fan_out) as f64 / 2.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
            FanMode::FanAvg => "fan_avg",
        }
    }

    fn parse(spec: &Spec, v: &Option<String>, default: FanMode) -> Result<FanMode> {
        match v.as_deref() {
            None => Ok(default),
            Some("fan_in") => Ok(FanMode::FanIn),
            Some("fan_out") => Ok(FanMode::FanOut),
            Some("fan_avg") => Ok(FanMode::FanAvg),
            Some(o) => Err(spec.error(format!("mode '{o}' (known: fan_in, fan_out, fan_avg)"))),
        }
    }
}

/// The distribution of a variance-scaling initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// U(-b, b), b = sqrt(3 s / fan).
    Uniform,
    /// N(0, s / fan), untruncated.
    Normal,
    /// N(0, σ²) truncated to ±2σ with σ = sqrt(s / fan) / 0.8796..., variance s / fan after truncation.
    TruncatedNormal,
}

impl Distribution {
    fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::TruncatedNormal => "truncated_normal",
        }
    }
}

/// A gain: a number, a nonlinearity's gain from PyTorch's `calculate_gain` table, or `auto`.
#[derive(Clone, Debug, PartialEq)]
pub enum Gain {
    Value(f64),
    /// `calculate_gain(name, param)`.
    Nonlinearity {
        name: String,
        param: f64,
    },
    /// The gain of the activation that follows the layer.
    Auto,
}

impl Gain {
    /// The numeric gain for a layer followed by `act`.
    pub fn resolve(&self, act: Activation) -> f64 {
        match self {
            Gain::Value(g) => *g,
            Gain::Nonlinearity { name, param } => {
                calculate_gain(name, Some(*param)).expect("validated when parsed")
            }
            Gain::Auto => act.gain(),
        }
    }

    fn spec(&self) -> String {
        match self {
            Gain::Value(g) => fmt_f64(*g),
            Gain::Nonlinearity { name, .. } => name.clone(),
            Gain::Auto => "auto".into(),
        }
    }

    /// Parses `gain=` values: a number, `auto`, or a nonlinearity name.
    fn parse(spec: &Spec, v: &Option<String>) -> Result<Gain> {
        match v.as_deref() {
            None => Ok(Gain::Value(1.0)),
            Some("auto") => Ok(Gain::Auto),
            Some(s) => match parse_f64(s) {
                Some(g) if g >= 0.0 => Ok(Gain::Value(g)),
                Some(g) => Err(spec.error(format!("gain must be >= 0, got {g}"))),
                None => {
                    calculate_gain(s, None).map_err(|e| spec.error(e))?;
                    let param = if s == "leaky_relu" { 0.01 } else { 0.0 };
                    Ok(Gain::Nonlinearity {
                        name: s.to_string(),
                        param,
                    })
                }
            },
        }
    }
}

/// PyTorch's `torch.nn.init.calculate_gain`: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
/// leaky_relu sqrt(2 / (1 + a^2)) (a defaults to 0.01), selu 3/4. For the activations PyTorch
/// has no entry for (elu, gelu, softplus, silu, softsign) it is initscope's second-moment gain,
/// see [`Activation::gain`].
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> std::result::Result<f64, String> {
    match nonlinearity {
        "linear" | "identity" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d"
        | "conv_transpose2d" | "conv_transpose3d" | "sigmoid" => Ok(1.0),
        "tanh" => Ok(5.0 / 3.0),
        "relu" => Ok(std::f64::consts::SQRT_2),
        "leaky_relu" => {
            let a = param.unwrap_or(0.01);
            Ok((2.0 / (1.0 + a * a)).sqrt())
        }
        "selu" => Ok(0.75),
        other => match Activation::parse("nonlinearity", other) {
            Ok(act) => Ok(act.gain()),
            Err(_) => Err(format!(
                "unknown nonlinearity '{other}' (known: linear, sigmoid, tanh, relu, leaky_relu, selu, elu, gelu, softplus, silu, softsign)"
            )),
        },
    }
}

/// A way to fill a weight matrix or bias vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Init {
    /// Every entry 0. `torch.nn.init.zeros_`.
    Zeros,
    /// Every entry 1. `torch.nn.init.ones_`.
    Ones,
    /// Every entry `value`. `torch.nn.init.constant_`.
    Constant { value: f64 },
    /// U(a, b). `torch.nn.init.uniform_`.
    Uniform { a: f64, b: f64 },
    /// N(mean, std²), untruncated. `torch.nn.init.normal_`.
    Normal { mean: f64, std: f64 },
    /// N(mean, std²) restricted to the absolute interval [a, b] (default [-2, 2]), redrawn until
    /// inside. `torch.nn.init.trunc_normal_` (absolute bounds, no variance correction).
    TruncNormal { mean: f64, std: f64, a: f64, b: f64 },
    /// Keras `VarianceScaling(scale, mode, distribution)`: variance `scale / fan` (see
    /// [`Distribution`]). The core every fan-based initializer below reduces to.
    VarianceScaling {
        scale: f64,
        mode: FanMode,
        distribution: Distribution,
    },
    /// U(-b, b), b = gain · sqrt(6 / (fan_in + fan_out)). Glorot & Bengio 2010, eq. 16;
    /// `torch.nn.init.xavier_uniform_`.
    XavierUniform { gain: Gain },
    /// N(0, std²), std = gain · sqrt(2 / (fan_in + fan_out)), untruncated.
    /// `torch.nn.init.xavier_normal_`.
    XavierNormal { gain: Gain },
    /// Keras `GlorotUniform`: variance_scaling(gain², fan_avg, uniform) — same as xavier_uniform.
    GlorotUniform { gain: Gain },
    /// Keras `GlorotNormal`: variance_scaling(gain², fan_avg, truncated_normal).
    GlorotNormal { gain: Gain },
    /// U(-b, b), b = gain · sqrt(3 / fan), fan = fan_in by default, gain from `nonlinearity` and
    /// `a` (default leaky_relu with a = 0, i.e. sqrt(2)). He et al. 2015, "Delving Deep into
    /// Rectifiers"; `torch.nn.init.kaiming_uniform_`.
    KaimingUniform { mode: FanMode, gain: Gain },
    /// N(0, std²), std = gain / sqrt(fan), untruncated. He et al. 2015, eq. 10;
    /// `torch.nn.init.kaiming_normal_`.
    KaimingNormal { mode: FanMode, gain: Gain },
    /// Keras `HeUniform`: variance_scaling(2, fan_in, uniform), b = sqrt(6 / fan_in).
    HeUniform,
    /// Keras `HeNormal`: variance_scaling(2, fan_in, truncated_normal).
    HeNormal,
    /// Keras `LecunUniform`: variance_scaling(1, fan_in, uniform), b = sqrt(3 / fan_in).
    /// LeCun et al. 1998, "Efficient BackProp".
    LecunUniform,
    /// Keras/JAX `lecun_normal`: variance_scaling(1, fan_in, truncated_normal) (Flax's default).
    LecunNormal,
    /// gain · Q, Q from the QR decomposition of a Gaussian matrix with the signs of R's diagonal
    /// folded in, which makes Q Haar-distributed (Mezzadri 2007); rows orthonormal when
    /// fan_out <= fan_in, columns otherwise. Saxe et al. 2014; `torch.nn.init.orthogonal_`.
    Orthogonal { gain: Gain },
    /// gain · I, the partial identity for rectangles (W_ii = gain for i < min(fan_out, fan_in)).
    /// `torch.nn.init.eye_` (with a gain).
    Identity { gain: Gain },
    /// PyTorch's `sparse_`: N(0, std²) entries, then in every column (input) ceil(sparsity ·
    /// fan_out) entries set to 0. Martens 2010, as implemented by PyTorch.
    Sparse { sparsity: f64, std: f64 },
    /// Martens 2010, "Deep learning via Hessian-free optimization": every unit has exactly k
    /// nonzero incoming weights, N(0, std²) (k capped at fan_in).
    SparseK { k: usize, std: f64 },
    /// ZerO (Zhao et al. 2022, "ZerO Initialization"), deterministic: the partial identity when
    /// fan_out <= fan_in; otherwise the top-left (fan_out, fan_in) block of the Sylvester Hadamard
    /// matrix H_m of size 2^m, m = ceil(log2 fan_out), scaled by 2^(-m/2). The paper's Algorithm 1
    /// writes 2^(-(m-1)/2); we use 2^(-m/2) as the authors' released code does, because it makes
    /// the scaled H_m orthogonal: the columns are orthonormal whenever fan_out is a power of two,
    /// so the layer is an isometry on its inputs, which is the point of ZerO.
    ZeroHadamard,
    /// LSUV (Mishkin & Matas 2016, "All you need is a good init"): orthonormal pre-init, then,
    /// layer by layer on a data batch, W_l /= sqrt(Var(z_l)) until |Var(z_l) - 1| < tol or
    /// max_iter rescalings. Needs data: applied by [`crate::train::initial_params`].
    Lsuv { tol: f64, max_iter: usize },
    /// A base initializer plus eps · N(0, 1) on every entry: how much noise breaks symmetry.
    /// The base may itself be perturbed, at most [`MAX_INIT_NESTING`] levels deep.
    Perturbed { eps: f64, base: Box<Init> },
    /// PyTorch's `nn.Linear` default for weight and bias alike: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    /// (For the weight `kaiming_uniform_(a=sqrt(5))`, whose bound simplifies to 1/sqrt(fan_in).)
    Pytorch,
    /// Keras `Dense` default: glorot_uniform weights, zero bias.
    Keras,
    /// Flax `nn.Dense` default: lecun_normal (truncated) weights, zero bias.
    Flax,
    /// candle-nn `Linear` default: weights N(0, 2/fan_in) (its DEFAULT_KAIMING_NORMAL), bias
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (candle-nn/src/linear.rs).
    Candle,
}

/// One row of `initscope init list`.
#[derive(Clone, Copy, Debug)]
pub struct InitInfo {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub args: &'static str,
    pub formula: &'static str,
    pub source: &'static str,
}

/// How many `perturbed` specs may nest (`perturbed:eps=E,base=perturbed:eps=E,base=...`): at most
/// 8. Each level holds its own copy of the rest of the text, so unbounded nesting would cost memory
/// quadratic in the depth; deeper specs are refused before the next level is parsed.
pub const MAX_INIT_NESTING: usize = 8;

/// Every initializer with its aliases, arguments, formula and source.
pub const INITIALIZERS: &[InitInfo] = &[
    InitInfo {
        name: "zeros",
        aliases: &["zero"],
        args: "",
        formula: "0",
        source: "torch.nn.init.zeros_",
    },
    InitInfo {
        name: "ones",
        aliases: &[],
        args: "",
        formula: "1",
        source: "torch.nn.init.ones_",
    },
    InitInfo {
        name: "constant",
        aliases: &["const"],
        args: "value",
        formula: "value",
        source: "torch.nn.init.constant_",
    },
    InitInfo {
        name: "uniform",
        aliases: &[],
        args: "a=0,b=1",
        formula: "U(a, b)",
        source: "torch.nn.init.uniform_",
    },
    InitInfo {
        name: "normal",
        aliases: &[],
        args: "mean=0,std=1",
        formula: "N(mean, std^2)",
        source: "torch.nn.init.normal_",
    },
    InitInfo {
        name: "trunc_normal",
        aliases: &["truncated_normal"],
        args: "mean=0,std=1,a=-2,b=2",
        formula: "N(mean, std^2) restricted to [a, b] (absolute bounds)",
        source: "torch.nn.init.trunc_normal_",
    },
    InitInfo {
        name: "variance_scaling",
        aliases: &[],
        args: "scale=1,mode=fan_in,distribution=truncated_normal",
        formula:
            "Var = scale/fan; uniform b = sqrt(3 scale/fan); truncated at 2 std, std /= 0.8796",
        source: "Keras VarianceScaling; jax.nn.initializers.variance_scaling",
    },
    InitInfo {
        name: "xavier_uniform",
        aliases: &[],
        args: "gain=1",
        formula: "U(-b, b), b = gain sqrt(6/(fan_in+fan_out))",
        source: "Glorot & Bengio 2010 eq. 16; torch.nn.init.xavier_uniform_",
    },
    InitInfo {
        name: "xavier_normal",
        aliases: &[],
        args: "gain=1",
        formula: "N(0, gain^2 2/(fan_in+fan_out)), untruncated",
        source: "torch.nn.init.xavier_normal_",
    },
    InitInfo {
        name: "glorot_uniform",
        aliases: &[],
        args: "gain=1",
        formula: "variance_scaling(gain^2, fan_avg, uniform)",
        source: "Keras GlorotUniform",
    },
    InitInfo {
        name: "glorot_normal",
        aliases: &[],
        args: "gain=1",
        formula: "variance_scaling(gain^2, fan_avg, truncated_normal)",
        source: "Keras GlorotNormal",
    },
    InitInfo {
        name: "kaiming_uniform",
        aliases: &[],
        args: "mode=fan_in,nonlinearity=leaky_relu,a=0 | gain=G|auto",
        formula: "U(-b, b), b = gain sqrt(3/fan)",
        source: "He et al. 2015; torch.nn.init.kaiming_uniform_",
    },
    InitInfo {
        name: "kaiming_normal",
        aliases: &[],
        args: "mode=fan_in,nonlinearity=leaky_relu,a=0 | gain=G|auto",
        formula: "N(0, gain^2/fan), untruncated",
        source: "He et al. 2015 eq. 10; torch.nn.init.kaiming_normal_",
    },
    InitInfo {
        name: "he_uniform",
        aliases: &[],
        args: "",
        formula: "variance_scaling(2, fan_in, uniform)",
        source: "Keras HeUniform",
    },
    InitInfo {
        name: "he_normal",
        aliases: &[],
        args: "",
        formula: "variance_scaling(2, fan_in, truncated_normal)",
        source: "Keras HeNormal",
    },
    InitInfo {
        name: "lecun_uniform",
        aliases: &[],
        args: "",
        formula: "variance_scaling(1, fan_in, uniform)",
        source: "LeCun et al. 1998; Keras LecunUniform",
    },
    InitInfo {
        name: "lecun_normal",
        aliases: &[],
        args: "",
        formula: "variance_scaling(1, fan_in, truncated_normal)",
        source: "Keras LecunNormal; jax.nn.initializers.lecun_normal",
    },
    InitInfo {
        name: "orthogonal",
        aliases: &[],
        args: "gain=1",
        formula: "gain Q, Q Haar-orthogonal (QR of a Gaussian, sign-fixed)",
        source: "Saxe et al. 2014; torch.nn.init.orthogonal_",
    },
    InitInfo {
        name: "identity",
        aliases: &["eye"],
        args: "gain=1",
        formula: "gain I (partial identity for rectangles)",
        source: "torch.nn.init.eye_",
    },
    InitInfo {
        name: "sparse",
        aliases: &[],
        args: "sparsity,std=0.01",
        formula: "N(0, std^2), ceil(sparsity fan_out) zeros per column",
        source: "Martens 2010; torch.nn.init.sparse_",
    },
    InitInfo {
        name: "sparse_k",
        aliases: &["martens"],
        args: "k=15,std=1",
        formula: "k nonzero N(0, std^2) incoming weights per unit",
        source: "Martens 2010, sec. 5",
    },
    InitInfo {
        name: "zero_hadamard",
        aliases: &["zero_init", "zer0"],
        args: "",
        formula:
            "partial identity; expanding layers: Hadamard block / 2^(m/2), m = ceil(log2 fan_out)",
        source: "Zhao et al. 2022 (ZerO)",
    },
    InitInfo {
        name: "lsuv",
        aliases: &[],
        args: "tol=0.1,max_iter=10",
        formula: "orthogonal, then W_l /= sqrt(Var(z_l)) on a data batch until |Var(z_l)-1| < tol",
        source: "Mishkin & Matas 2016",
    },
    InitInfo {
        name: "perturbed",
        aliases: &[],
        args: "eps,base=SPEC",
        formula: "base + eps N(0, 1)",
        source: "initscope",
    },
    InitInfo {
        name: "pytorch",
        aliases: &["torch", "default"],
        args: "",
        formula: "weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
        source: "torch.nn.Linear.reset_parameters",
    },
    InitInfo {
        name: "keras",
        aliases: &[],
        args: "",
        formula: "weight glorot_uniform, bias 0",
        source: "keras.layers.Dense",
    },
    InitInfo {
        name: "flax",
        aliases: &["jax"],
        args: "",
        formula: "weight lecun_normal (truncated), bias 0",
        source: "flax.linen.Dense",
    },
    InitInfo {
        name: "candle",
        aliases: &[],
        args: "",
        formula: "weight N(0, 2/fan_in), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
        source: "candle-nn Linear",
    },
];

/// Fills `out` with a variance-scaling draw of variance `var` (see [`Distribution`]).
fn fill_scaled(out: &mut [f64], var: f64, dist: Distribution, rng: &mut Rng) {
    let std = var.sqrt();
    match dist {
        Distribution::Uniform => {
            let b = (3.0 * var).sqrt();
            out.iter_mut().for_each(|x| *x = rng::uniform(rng, -b, b));
        }
        Distribution::Normal => out.iter_mut().for_each(|x| *x = std * rng::normal(rng)),
        Distribution::TruncatedNormal => {
            let s = std / TRUNC_NORMAL_STD_CORRECTION;
            out.iter_mut()
                .for_each(|x| *x = s * truncated_standard_normal(rng, -2.0, 2.0));
        }
    }
}

/// Standard normal restricted to [lo, hi]: rejection from N(0, 1) when the interval holds at
/// least 5% of the mass, else inversion of the CDF (Newton on erf) so far tails never loop.
fn truncated_standard_normal(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    let mass = normal_cdf(hi) - normal_cdf(lo);
    if mass >= 0.05 {
        loop {
            let z = rng::normal(rng);
            if (lo..=hi).contains(&z) {
                return z;
            }
        }
    }
    let u = normal_cdf(lo) + mass * rng::uniform01(rng);
    inverse_normal_cdf(u).clamp(lo, hi)
}

/// Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// φ(z).
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ^{-1}(u) by Newton's method from a logistic starting point (converges in a few steps).
fn inverse_normal_cdf(u: f64) -> f64 {
    let u = u.clamp(1e-300, 1.0 - 1e-16);
    let mut z = (u / (1.0 - u)).ln() / 1.702;
    for _ in 0..100 {
        let step = (normal_cdf(z) - u) / normal_pdf(z).max(1e-300);
        z -= step.clamp(-1.0, 1.0);
        if step.abs() < 1e-14 {
            break;
        }
    }
    z
}

/// Sylvester's Hadamard matrix of size 2^m (entries ±1), row-major.
pub fn hadamard(m: u32) -> Vec<f64> {
    let mut h = vec![1.0];
    let mut n = 1;
    for _ in 0..m {
        let mut next = vec![0.0; 4 * n * n];
        for i in 0..n {
            for j in 0..n {
                let v = h[i * n + j];
                next[i * 2 * n + j] = v;
                next[i * 2 * n + j + n] = v;
                next[(i + n) * 2 * n + j] = v;
                next[(i + n) * 2 * n + j + n] = -v;
            }
        }
        h = next;
        n *= 2;
    }
    h
}

/// Haar-distributed orthogonal (rows, cols) matrix times `gain`: QR of a Gaussian (max, min)
/// matrix, Q's columns multiplied by sign(diag R), transposed when rows < cols.
fn orthogonal(out: &mut [f64], rows: usize, cols: usize, gain: f64, rng: &mut Rng) {
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let a = faer::Mat::<f64>::from_fn(tall, short, |_, _| rng::normal(rng));
    let qr = a.qr();
    let q = qr.compute_thin_Q();
    let r = qr.thin_R();
    for j in 0..short {
        let sign = if r[(j, j)] < 0.0 { -1.0 } else { 1.0 };
        for i in 0..tall {
            let v = gain * sign * q[(i, j)];
            if rows >= cols {
                out[i * cols + j] = v;
            } else {
                out[j * cols + i] = v;
            }
        }
    }
}

impl Init {
    /// Fills `out`: row-major `(fan_out, fan_in)` for weights, `fan_out` entries for biases.
    pub fn fill(&self, out: &mut [f64], ctx: &FillContext, rng: &mut Rng) {
        let fans = ctx.fans;
        let (rows, cols) = match ctx.role {
            Role::Weight => (fans.fan_out, fans.fan_in),
            Role::Bias => (fans.fan_out, 1),
        };
        debug_assert_eq!(out.len(), rows * cols);
        let pytorch_bound = 1.0 / (fans.fan_in.max(1) as f64).sqrt();
        if let Some((var, dist)) = self.scaling(ctx) {
            fill_scaled(out, var, dist, rng);
            return;
        }
        match self {
            Init::Zeros => out.fill(0.0),
            Init::Ones => out.fill(1.0),
            Init::Constant { value } => out.fill(*value),
            Init::Uniform { a, b } => out.iter_mut().for_each(|x| *x = rng::uniform(rng, *a, *b)),
            Init::Normal { mean, std } => out
                .iter_mut()
                .for_each(|x| *x = mean + std * rng::normal(rng)),
            Init::TruncNormal { mean, std, a, b } => {
                if *std == 0.0 {
                    out.fill(mean.clamp(*a, *b));
                } else {
                    let (lo, hi) = ((a - mean) / std, (b - mean) / std);
                    out.iter_mut()
                        .for_each(|x| *x = mean + std * truncated_standard_normal(rng, lo, hi));
                }
            }
            Init::Orthogonal { gain } => orthogonal(out, rows, cols, gain.resolve(ctx.act), rng),
            Init::Lsuv { .. } => orthogonal(out, rows, cols, 1.0, rng),
            Init::Identity { gain } => {
                let g = gain.resolve(ctx.act);
                out.fill(0.0);
                for i in 0..rows.min(cols) {
                    out[i * cols + i] = g;
                }
            }
            Init::Sparse { sparsity, std } => {
                out.iter_mut().for_each(|x| *x = std * rng::normal(rng));
                let zeros = (sparsity * rows as f64).ceil() as usize;
                let mut idx: Vec<usize> = (0..rows).collect();
                for j in 0..cols {
                    rng::shuffle(rng, &mut idx);
                    for &i in &idx[..zeros.min(rows)] {
                        out[i * cols + j] = 0.0;
                    }
                }
            }
            Init::SparseK { k, std } => {
                out.fill(0.0);
                let mut idx: Vec<usize> = (0..cols).collect();
                for i in 0..rows {
                    rng::shuffle(rng, &mut idx);
                    for &j in &idx[..(*k).min(cols)] {
                        out[i * cols + j] = std * rng::normal(rng);
                    }
                }
            }
            Init::ZeroHadamard => {
                out.fill(0.0);
                if rows <= cols {
                    for i in 0..rows {
                        out[i * cols + i] = 1.0;
                    }
                } else {
                    let m = rows.next_power_of_two().trailing_zeros();
                    let p = 1usize << m;
                    let h = hadamard(m);
                    let c = 2f64.powf(-(m as f64) / 2.0);
                    for i in 0..rows {
                        for j in 0..cols {
                            out[i * cols + j] = c * h[i * p + j];
                        }
                    }
                }
            }
            Init::Perturbed { eps, base } => {
                base.fill(out, ctx, rng);
                out.iter_mut().for_each(|x| *x += eps * rng::normal(rng));
            }
            Init::Pytorch => out
                .iter_mut()
                .for_each(|x| *x = rng::uniform(rng, -pytorch_bound, pytorch_bound)),
            // Preset biases (their weights are variance-scaling draws, handled above).
            Init::Keras | Init::Flax => out.fill(0.0),
            Init::Candle => out
                .iter_mut()
                .for_each(|x| *x = rng::uniform(rng, -pytorch_bound, pytorch_bound)),
            Init::VarianceScaling { .. }
            | Init::XavierUniform { .. }
            | Init::XavierNormal { .. }
            | Init::GlorotUniform { .. }
            | Init::GlorotNormal { .. }
            | Init::KaimingUniform { .. }
            | Init::KaimingNormal { .. }
            | Init::HeUniform
            | Init::HeNormal
            | Init::LecunUniform
            | Init::LecunNormal => {
                unreachable!("variance-scaling kinds are filled through scaling()")
            }
        }
    }

    /// The variance and distribution of every initializer that is a variance-scaling draw
    /// (Keras' VarianceScaling and everything that reduces to it, presets' weights included);
    /// `fill` and `moments` both go through it, so they cannot disagree.
    pub fn scaling(&self, ctx: &FillContext) -> Option<(f64, Distribution)> {
        let fans = ctx.fans;
        let (fan_in, avg) = (fans.fan_in as f64, FanMode::FanAvg.fan(fans));
        let g2 = |gain: &Gain| gain.resolve(ctx.act).powi(2);
        let weight = ctx.role == Role::Weight;
        Some(match self {
            Init::VarianceScaling {
                scale,
                mode,
                distribution,
            } => (scale / mode.fan(fans), *distribution),
            Init::XavierUniform { gain } | Init::GlorotUniform { gain } => {
                (g2(gain) / avg, Distribution::Uniform)
            }
            Init::XavierNormal { gain } => (g2(gain) / avg, Distribution::Normal),
            Init::GlorotNormal { gain } => (g2(gain) / avg, Distribution::TruncatedNormal),
            Init::KaimingUniform { mode, gain } => {
                (g2(gain) / mode.fan(fans), Distribution::Uniform)
            }
            Init::KaimingNormal { mode, gain } => (g2(gain) / mode.fan(fans), Distribution::Normal),
            Init::HeUniform => (2.0 / fan_in, Distribution::Uniform),
            Init::HeNormal => (2.0 / fan_in, Distribution::TruncatedNormal),
            Init::LecunUniform => (1.0 / fan_in, Distribution::Uniform),
            Init::LecunNormal => (1.0 / fan_in, Distribution::TruncatedNormal),
            Init::Keras if weight => (1.0 / avg, Distribution::Uniform),
            Init::Flax if weight => (1.0 / fan_in, Distribution::TruncatedNormal),
            Init::Candle if weight => (2.0 / fan_in, Distribution::Normal),
            _ => return None,
        })
    }

    /// Whether this is a framework preset (which sets the bias too when `--bias-init` is absent).
    pub fn is_preset(&self) -> bool {
        matches!(
            self,
            Init::Pytorch | Init::Keras | Init::Flax | Init::Candle
        )
    }

    /// Whether the initializer needs a matrix (and so cannot initialise a bias vector).
    pub fn needs_matrix(&self) -> bool {
        match self {
            Init::Orthogonal { .. }
            | Init::Identity { .. }
            | Init::Sparse { .. }
            | Init::SparseK { .. }
            | Init::ZeroHadamard
            | Init::Lsuv { .. } => true,
            Init::Perturbed { base, .. } => base.needs_matrix(),
            _ => false,
        }
    }

    /// The resolved distribution for one tensor: (mean, standard deviation, support), the
    /// numbers `initscope init show` prints. `None` for the deterministic structured kinds.
    pub fn moments(&self, ctx: &FillContext) -> Option<Moments> {
        let fans = ctx.fans;
        let scaled = |var: f64, dist: Distribution| {
            let std = var.sqrt();
            let bound = match dist {
                Distribution::Uniform => Some((3.0 * var).sqrt()),
                Distribution::Normal => None,
                Distribution::TruncatedNormal => Some(2.0 * std / TRUNC_NORMAL_STD_CORRECTION),
            };
            Moments {
                mean: 0.0,
                std,
                bounds: bound.map(|b| (-b, b)),
            }
        };
        let pytorch_bound = 1.0 / (fans.fan_in.max(1) as f64).sqrt();
        let uniform = |a: f64, b: f64| Moments {
            mean: (a + b) / 2.0,
            std: (b - a) / 12f64.sqrt(),
            bounds: Some((a, b)),
        };
        let point = |v: f64| Moments {
            mean: v,
            std: 0.0,
            bounds: Some((v, v)),
        };
        if let Some((var, dist)) = self.scaling(ctx) {
            return Some(scaled(var, dist));
        }
        Some(match self {
            Init::Zeros => point(0.0),
            Init::Ones => point(1.0),
            Init::Constant { value } => point(*value),
            Init::Uniform { a, b } => uniform(*a, *b),
            Init::Normal { mean, std } => Moments {
                mean: *mean,
                std: *std,
                bounds: None,
            },
            Init::TruncNormal { mean, std, a, b } => {
                let (m, v) = truncated_normal_moments(*mean, *std, *a, *b);
                Moments {
                    mean: m,
                    std: v.sqrt(),
                    bounds: Some((*a, *b)),
                }
            }
            Init::Sparse { sparsity, std } => {
                let zeros = (sparsity * fans.fan_out as f64)
                    .ceil()
                    .min(fans.fan_out as f64);
                let keep = 1.0 - zeros / fans.fan_out as f64;
                Moments {
                    mean: 0.0,
                    std: std * keep.sqrt(),
                    bounds: None,
                }
            }
            Init::SparseK { k, std } => {
                let keep = (*k).min(fans.fan_in) as f64 / fans.fan_in as f64;
                Moments {
                    mean: 0.0,
                    std: std * keep.sqrt(),
                    bounds: None,
                }
            }
            Init::Perturbed { eps, base } => {
                let b = base.moments(ctx)?;
                Moments {
                    mean: b.mean,
                    std: (b.std * b.std + eps * eps).sqrt(),
                    bounds: None,
                }
            }
            Init::Pytorch => uniform(-pytorch_bound, pytorch_bound),
            // Preset biases (their weights are variance-scaling draws, handled above).
            Init::Keras | Init::Flax => point(0.0),
            Init::Candle => uniform(-pytorch_bound, pytorch_bound),
            Init::VarianceScaling { .. }
            | Init::XavierUniform { .. }
            | Init::XavierNormal { .. }
            | Init::GlorotUniform { .. }
            | Init::GlorotNormal { .. }
            | Init::KaimingUniform { .. }
            | Init::KaimingNormal { .. }
            | Init::HeUniform
            | Init::HeNormal
            | Init::LecunUniform
            | Init::LecunNormal => {
                unreachable!("variance-scaling kinds are described through scaling()")
            }
            Init::Orthogonal { .. }
            | Init::Identity { .. }
            | Init::ZeroHadamard
            | Init::Lsuv { .. } => return None,
        })
    }

    /// The canonical spec string (every argument spelled out where it has one).
    pub fn spec(&self) -> String {
        let f = |x: f64| fmt_f64(x);
        match self {
            Init::Zeros => "zeros".into(),
            Init::Ones => "ones".into(),
            Init::Constant { value } => format!("constant:{}", f(*value)),
            Init::Uniform { a, b } => format!("uniform:{},{}", f(*a), f(*b)),
            Init::Normal { mean, std } => format!("normal:mean={},std={}", f(*mean), f(*std)),
            Init::TruncNormal { mean, std, a, b } => {
                format!(
                    "trunc_normal:mean={},std={},a={},b={}",
                    f(*mean),
                    f(*std),
                    f(*a),
                    f(*b)
                )
            }
            Init::VarianceScaling {
                scale,
                mode,
                distribution,
            } => format!(
                "variance_scaling:scale={},mode={},distribution={}",
                f(*scale),
                mode.name(),
                distribution.name()
            ),
            Init::XavierUniform { gain } => format!("xavier_uniform:gain={}", gain.spec()),
            Init::XavierNormal { gain } => format!("xavier_normal:gain={}", gain.spec()),
            Init::GlorotUniform { gain } => format!("glorot_uniform:gain={}", gain.spec()),
            Init::GlorotNormal { gain } => format!("glorot_normal:gain={}", gain.spec()),
            Init::KaimingUniform { mode, gain } => format!(
                "kaiming_uniform:mode={},{}",
                mode.name(),
                kaiming_gain_spec(gain)
            ),
            Init::KaimingNormal { mode, gain } => format!(
                "kaiming_normal:mode={},{}",
                mode.name(),
                kaiming_gain_spec(gain)
            ),
            Init::HeUniform => "he_uniform".into(),
            Init::HeNormal => "he_normal".into(),
            Init::LecunUniform => "lecun_uniform".into(),
            Init::LecunNormal => "lecun_normal".into(),
            Init::Orthogonal { gain } => format!("orthogonal:gain={}", gain.spec()),
            Init::Identity { gain } => format!("identity:gain={}", gain.spec()),
            Init::Sparse { sparsity, std } => {
                format!("sparse:sparsity={},std={}", f(*sparsity), f(*std))
            }
            Init::SparseK { k, std } => format!("sparse_k:k={k},std={}", f(*std)),
            Init::ZeroHadamard => "zero_hadamard".into(),
            Init::Lsuv { tol, max_iter } => format!("lsuv:tol={},max_iter={max_iter}", f(*tol)),
            Init::Perturbed { eps, base } => {
                format!("perturbed:eps={},base={}", f(*eps), base.spec())
            }
            Init::Pytorch => "pytorch".into(),
            Init::Keras => "keras".into(),
            Init::Flax => "flax".into(),
            Init::Candle => "candle".into(),
        }
    }

    /// Parses an initializer spec, naming `field` in errors. `perturbed` specs nest at most
    /// [`MAX_INIT_NESTING`] (8) levels deep.
    pub fn parse(field: &str, text: &str) -> Result<Init> {
        Init::parse_nested(field, text, 1)
    }

    /// [`Init::parse`] of a spec that is the `depth`-th level of its nesting (1 at the top);
    /// a `perturbed` deeper than [`MAX_INIT_NESTING`] is refused before its base is parsed.
    fn parse_nested(field: &str, text: &str, depth: usize) -> Result<Init> {
        let spec = Spec::parse(field, text)?;
        let nonneg = |key: &str, v: &Option<String>, default: f64| -> Result<f64> {
            let x = spec.f64_or(key, v, default)?;
            if x < 0.0 {
                Err(spec.error(format!("{key} must be >= 0, got {x}")))
            } else {
                Ok(x)
            }
        };
        let no_args = |init: Init| -> Result<Init> {
            spec.bind(&[])?;
            Ok(init)
        };
        let gain_only = |make: fn(Gain) -> Init| -> Result<Init> {
            let v = spec.bind(&["gain"])?;
            Ok(make(Gain::parse(&spec, &v[0])?))
        };
        let init = match spec.name.as_str() {
            "zeros" | "zero" => no_args(Init::Zeros)?,
            "ones" => no_args(Init::Ones)?,
            "constant" | "const" => {
                let v = spec.bind(&["value"])?;
                if v[0].is_none() {
                    return Err(spec.error("constant needs a value, e.g. constant:0.1"));
                }
                Init::Constant {
                    value: spec.f64_or("value", &v[0], 0.0)?,
                }
            }
            "uniform" => {
                let v = spec.bind(&["a", "b"])?;
                let a = spec.f64_or("a", &v[0], 0.0)?;
                let b = spec.f64_or("b", &v[1], 1.0)?;
                if a > b {
                    return Err(spec.error(format!("uniform needs a <= b, got a={a}, b={b}")));
                }
                Init::Uniform { a, b }
            }
            "normal" => {
                let v = spec.bind(&["mean", "std"])?;
                Init::Normal {
                    mean: spec.f64_or("mean", &v[0], 0.0)?,
                    std: nonneg("std", &v[1], 1.0)?,
                }
            }
            "trunc_normal" | "truncated_normal" => {
                let v = spec.bind(&["mean", "std", "a", "b"])?;
                let (a, b) = (
                    spec.f64_or("a", &v[2], -2.0)?,
                    spec.f64_or("b", &v[3], 2.0)?,
                );
                if a >= b {
                    return Err(spec.error(format!("trunc_normal needs a < b, got a={a}, b={b}")));
                }
                Init::TruncNormal {
                    mean: spec.f64_or("mean", &v[0], 0.0)?,
                    std: nonneg("std", &v[1], 1.0)?,
                    a,
                    b,
                }
            }
            "variance_scaling" => {
                let v = spec.bind(&["scale", "mode", "distribution"])?;
                let scale = spec.f64_or("scale", &v[0], 1.0)?;
                if scale <= 0.0 {
                    return Err(spec.error(format!("scale must be > 0, got {scale}")));
                }
                let distribution = match v[2].as_deref() {
                    None | Some("truncated_normal") => Distribution::TruncatedNormal,
                    Some("normal") | Some("untruncated_normal") => Distribution::Normal,
                    Some("uniform") => Distribution::Uniform,
                    Some(o) => {
                        return Err(spec.error(format!(
                            "distribution '{o}' (known: uniform, normal, truncated_normal)"
                        )))
                    }
                };
                Init::VarianceScaling {
                    scale,
                    mode: FanMode::parse(&spec, &v[1], FanMode::FanIn)?,
                    distribution,
                }
            }
            "xavier_uniform" => gain_only(|gain| Init::XavierUniform { gain })?,
            "xavier_normal" => gain_only(|gain| Init::XavierNormal { gain })?,
            "glorot_uniform" => gain_only(|gain| Init::GlorotUniform { gain })?,
            "glorot_normal" => gain_only(|gain| Init::GlorotNormal { gain })?,
            "kaiming_uniform" | "kaiming_normal" => {
                let v = spec.bind(&["mode", "nonlinearity", "a", "gain"])?;
                let mode = FanMode::parse(&spec, &v[0], FanMode::FanIn)?;
                if mode == FanMode::FanAvg {
                    return Err(spec.error("kaiming takes mode fan_in or fan_out"));
                }
                let gain = match (&v[1], &v[2], &v[3]) {
                    (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                        return Err(spec.error("give gain= or nonlinearity=/a=, not both"))
                    }
                    (_, _, Some(_)) => Gain::parse(&spec, &v[3])?,
                    (nl, a, None) => {
                        let name = nl.clone().unwrap_or_else(|| "leaky_relu".into());
                        let param = spec.f64_or("a", a, 0.0)?;
                        calculate_gain(&name, Some(param)).map_err(|e| spec.error(e))?;
                        Gain::Nonlinearity { name, param }
                    }
                };
                if spec.name == "kaiming_uniform" {
                    Init::KaimingUniform { mode, gain }
                } else {
                    Init::KaimingNormal { mode, gain }
                }
            }
            "he_uniform" => no_args(Init::HeUniform)?,
            "he_normal" => no_args(Init::HeNormal)?,
            "lecun_uniform" => no_args(Init::LecunUniform)?,
            "lecun_normal" => no_args(Init::LecunNormal)?,
            "orthogonal" => gain_only(|gain| Init::Orthogonal { gain })?,
            "identity" | "eye" => gain_only(|gain| Init::Identity { gain })?,
            "sparse" => {
                let v = spec.bind(&["sparsity", "std"])?;
                if v[0].is_none() {
                    return Err(spec.error("sparse needs a sparsity in [0, 1], e.g. sparse:0.9"));
                }
                let sparsity = spec.f64_or("sparsity", &v[0], 0.0)?;
                if !(0.0..=1.0).contains(&sparsity) {
                    return Err(spec.error(format!("sparsity must be in [0, 1], got {sparsity}")));
                }
                Init::Sparse {
                    sparsity,
                    std: nonneg("std", &v[1], 0.01)?,
                }
            }
            "sparse_k" | "martens" => {
                let v = spec.bind(&["k", "std"])?;
                let k = spec.usize_or("k", &v[0], 15)?;
                if k == 0 {
                    return Err(spec.error("k must be at least 1"));
                }
                Init::SparseK {
                    k,
                    std: nonneg("std", &v[1], 1.0)?,
                }
            }
            "zero_hadamard" | "zero_init" | "zer0" => no_args(Init::ZeroHadamard)?,
            "lsuv" => {
                let v = spec.bind(&["tol", "max_iter"])?;
                let tol = spec.f64_or("tol", &v[0], 0.1)?;
                if tol <= 0.0 {
                    return Err(spec.error(format!("tol must be > 0, got {tol}")));
                }
                Init::Lsuv {
                    tol,
                    max_iter: spec.usize_or("max_iter", &v[1], 10)?,
                }
            }
            "perturbed" => {
                if depth > MAX_INIT_NESTING {
                    return Err(Error::config(
                        field,
                        format!(
                            "perturbed specs nest at most {MAX_INIT_NESTING} levels deep \
                             (perturbed:...,base=perturbed:...); this one nests deeper"
                        ),
                    ));
                }
                let v = spec.bind(&["eps", "base"])?;
                let eps = match &v[0] {
                    Some(_) => nonneg("eps", &v[0], 0.0)?,
                    None => {
                        return Err(spec.error(
                            "perturbed needs eps, e.g. perturbed:eps=1e-3,base=constant:0.1",
                        ))
                    }
                };
                let base = match &v[1] {
                    Some(b) => Init::parse_nested(field, b, depth + 1)?,
                    None => return Err(spec.error("perturbed needs base=SPEC (last), e.g. perturbed:eps=1e-3,base=constant:0.1")),
                };
                if matches!(base, Init::Lsuv { .. }) || base.is_preset() {
                    return Err(
                        spec.error("base must be a plain initializer (not lsuv or a preset)")
                    );
                }
                Init::Perturbed {
                    eps,
                    base: Box::new(base),
                }
            }
            "pytorch" | "torch" | "default" => no_args(Init::Pytorch)?,
            "keras" => no_args(Init::Keras)?,
            "flax" | "jax" => no_args(Init::Flax)?,
            "candle" => no_args(Init::Candle)?,
            other => {
                let names: Vec<&str> = INITIALIZERS.iter().map(|i| i.name).collect();
                return Err(spec.error(format!(
                    "unknown initializer '{other}' (known: {}; see `initscope init list`)",
                    names.join(", ")
                )));
            }
        };
        Ok(init)
    }
}

fn kaiming_gain_spec(gain: &Gain) -> String {
    match gain {
        Gain::Nonlinearity { name, param } => format!("nonlinearity={name},a={}", fmt_f64(*param)),
        g => format!("gain={}", g.spec()),
    }
}

/// Mean and variance of N(mean, std²) truncated to [a, b].
pub fn truncated_normal_moments(mean: f64, std: f64, a: f64, b: f64) -> (f64, f64) {
    if std == 0.0 {
        return (mean.clamp(a, b), 0.0);
    }
    let (al, be) = ((a - mean) / std, (b - mean) / std);
    let z = normal_cdf(be) - normal_cdf(al);
    let (pa, pb) = (normal_pdf(al), normal_pdf(be));
    let m = mean + std * (pa - pb) / z;
    let v = std * std * (1.0 + (al * pa - be * pb) / z - ((pa - pb) / z).powi(2));
    (m, v)
}

/// The resolved distribution of one initialized tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub mean: f64,
    pub std: f64,
    /// Support, when bounded.
    pub bounds: Option<(f64, f64)>,
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Init::parse("init", s)
    }
}

impl From<Init> for String {
    fn from(i: Init) -> String {
        i.spec()
    }
}

impl TryFrom<String> for Init {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        "perturbed:eps=1e-3,base=".repeat(levels) + "constant:0.1"
    }

    #[test]
    fn perturbed_nests_at_most_eight_levels_and_deep_nesting_is_refused_quickly() {
        let mut init = Init::parse("--init", &nested(MAX_INIT_NESTING)).unwrap();
        let mut levels = 0;
        while let Init::Perturbed { base, .. } = init {
            levels += 1;
            init = *base;
        }
        assert_eq!(
            (levels, init),
            (MAX_INIT_NESTING, Init::Constant { value: 0.1 })
        );
        let want = "--init: perturbed specs nest at most 8 levels deep \
                    (perturbed:...,base=perturbed:...); this one nests deeper";
        let e = Init::parse("--init", &nested(MAX_INIT_NESTING + 1)).unwrap_err();
        assert_eq!(e.to_string(), want);
        // 8000 levels cost 2.2 GB and seconds when every level was parsed; now nine are.
        let start = std::time::Instant::now();
        let e = Init::parse("--init", &nested(8000)).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
    }
}
