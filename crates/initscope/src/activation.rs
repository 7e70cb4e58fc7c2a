//! Activations: each is its value `f(z)`, its derivative `df` and its initialization gain.
//!
//! `df(z, fz)` receives both the pre-activation `z` and `fz = f(z)`: tanh and sigmoid use the
//! output (`1 - a^2`, `a (1 - a)`), the ReLU family needs the input. Conventions follow PyTorch
//! so results compare one to one: `relu'(0) = 0` (`relu:grad0=1`, also written `relu(grad0=1)`,
//! is the ZerO authors' `relu'(0) = 1`), leaky ReLU slope 0.01 by default and
//! `leaky_relu'(0) = slope`, GELU is the exact erf form, softplus (beta 1) switches to the
//! identity above z = 20 exactly like `torch.nn.functional.softplus`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scalar::Float;
use crate::spec::{fmt_f64, Spec};

/// SELU's constants (Klambauer et al. 2017), as in PyTorch.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// softplus threshold above which PyTorch returns `z` itself.
const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// A pointwise nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Activation {
    /// f(z) = z.
    Identity,
    /// f(z) = tanh z; f' = 1 - f^2.
    Tanh,
    /// f(z) = 1 / (1 + e^{-z}); f' = f (1 - f).
    Sigmoid,
    /// f(z) = max(z, 0); f'(z) = 1 if z > 0 else 0 (so f'(0) = 0, as PyTorch).
    Relu,
    /// `relu:grad0=1` (`relu(grad0=1)` in a net spec): f(z) = max(z, 0); f'(z) = 1 if z >= 0
    /// else 0, so f'(0) = 1 (the convention of the ZerO authors' code, Zhao et al. 2022). The
    /// same function as [`Activation::Relu`] with a different subgradient at the single point
    /// 0, which decides whether a net that starts at exact zeros is dead: with relu'(0) = 0 a
    /// zero pre-activation passes no gradient back, with 1 it does.
    ReluGrad1,
    /// f(z) = z for z > 0, slope z otherwise; f'(z) = 1 for z > 0, slope otherwise.
    LeakyRelu { slope: f64 },
    /// f(z) = z for z > 0, alpha (e^z - 1) otherwise; f' = 1 or alpha e^z.
    Elu { alpha: f64 },
    /// f(z) = scale * elu_alpha(z) with Klambauer et al.'s alpha and scale.
    Selu,
    /// f(z) = z Phi(z) (exact erf form); f' = Phi(z) + z phi(z).
    Gelu,
    /// f(z) = ln(1 + e^z) (z for z > 20); f' = sigmoid(z) (1 for z > 20).
    Softplus,
    /// f(z) = z sigmoid(z) (a.k.a. swish); f' = s (1 + z (1 - s)), s = sigmoid(z).
    Silu,
    /// f(z) = z / (1 + |z|); f' = 1 / (1 + |z|)^2.
    Softsign,
}

/// Names accepted by [`Activation::from_str`], for listings and error messages.
pub const ACTIVATION_NAMES: &[&str] = &[
    "identity",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "silu",
    "softsign",
];

/// `1 / (1 + e^-z)` as `1 / (1 + e)` for `z >= 0` and `e / (1 + e)` below, `e = e^-|z|`, so
/// that the exponential never overflows; one exponential and one division, selected without a
/// branch so that loops over it vectorise.
#[inline(always)]
fn sigmoid<T: Float>(z: T) -> T {
    let e = (-z.abs()).exp_fast();
    let num = if z >= T::ZERO { T::ONE } else { e };
    num / (T::ONE + e)
}

/// `z += bias` row by row (when given), then `a = g(z)`; inlined into each SIMD dispatch.
#[inline(always)]
fn map_rows<T: Float>(bias: Option<&[T]>, z: &mut [T], a: &mut [T], g: impl Fn(T) -> T) {
    match bias {
        Some(b) if !b.is_empty() => {
            for (zr, ar) in z.chunks_exact_mut(b.len()).zip(a.chunks_exact_mut(b.len())) {
                for ((z, a), &b) in zr.iter_mut().zip(ar.iter_mut()).zip(b) {
                    let v = *z + b;
                    *z = v;
                    *a = g(v);
                }
            }
        }
        _ => {
            for (a, &z) in a.iter_mut().zip(z.iter()) {
                *a = g(z);
            }
        }
    }
}

/// `d *= g(x)` elementwise, `x` being `z` or `f(z)`, whichever the derivative reads (no load
/// of the other); inlined into each SIMD dispatch.
#[inline(always)]
fn map_grad<T: Float>(x: &[T], d: &mut [T], g: impl Fn(T) -> T) {
    for (d, &x) in d.iter_mut().zip(x) {
        *d *= g(x);
    }
}

/// [`Activation::forward_rows`] as a SIMD operation: pulp compiles `with_simd` (and everything
/// `#[inline(always)]` under it) once per instruction set and calls the best one the CPU has.
struct ForwardRows<'a, T> {
    act: Activation,
    bias: Option<&'a [T]>,
    z: &'a mut [T],
    a: &'a mut [T],
    fused: bool,
}

impl<T: Float> pulp::WithSimd for ForwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let ForwardRows {
            act,
            bias,
            z,
            a,
            fused,
        } = self;
        act.forward_rows_inline(bias, z, a, fused);
    }
}

/// [`Activation::backward_in_place`] as a SIMD operation (see [`ForwardRows`]).
struct BackwardInPlace<'a, T> {
    act: Activation,
    z: &'a [T],
    a: &'a [T],
    d: &'a mut [T],
}

impl<T: Float> pulp::WithSimd for BackwardInPlace<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let BackwardInPlace { act, z, a, d } = self;
        act.backward_in_place_inline(z, a, d);
    }
}

impl Activation {
    /// [`Activation::forward_rows`] without its dispatch, for callers already inside a SIMD
    /// dispatch (it is compiled into theirs). `fused`: that dispatch has FMA instructions, and
    /// tanh evaluates its polynomials with them ([`Float::tanh_fast_fused`]).
    #[inline(always)]
    pub(crate) fn forward_rows_inline<T: Float>(
        self,
        bias: Option<&[T]>,
        z: &mut [T],
        a: &mut [T],
        fused: bool,
    ) {
        // The activations that vectorise get an arm of their own, so that the match is outside
        // the loop; each arm's formula is `f`'s.
        match self {
            Activation::Identity => map_rows(bias, z, a, |v| Activation::Identity.f_inline(v)),
            Activation::Tanh if fused => map_rows(bias, z, a, |v| v.tanh_fast_fused()),
            Activation::Tanh => map_rows(bias, z, a, |v| Activation::Tanh.f_inline(v)),
            Activation::Relu | Activation::ReluGrad1 => {
                map_rows(bias, z, a, |v| Activation::Relu.f_inline(v))
            }
            Activation::Sigmoid => map_rows(bias, z, a, |v| Activation::Sigmoid.f_inline(v)),
            Activation::Silu => map_rows(bias, z, a, |v| Activation::Silu.f_inline(v)),
            Activation::Elu { alpha } => {
                map_rows(bias, z, a, |v| Activation::Elu { alpha }.f_inline(v))
            }
            Activation::Selu => map_rows(bias, z, a, |v| Activation::Selu.f_inline(v)),
            Activation::Softplus => map_rows(bias, z, a, |v| Activation::Softplus.f_inline(v)),
            other => map_rows(bias, z, a, |v| other.f(v)),
        }
    }

    /// [`Activation::backward_in_place`] without its dispatch (see
    /// [`Activation::forward_rows_inline`]).
    #[inline(always)]
    pub(crate) fn backward_in_place_inline<T: Float>(self, z: &[T], a: &[T], d: &mut [T]) {
        // As in the forward pass: an arm per activation that vectorises, each with `df`'s
        // formula, reading only the slice that formula reads (tanh' = 1 - f^2, relu' = [z > 0],
        // sigmoid' = f (1 - f); silu, elu, selu and softplus read z).
        match self {
            // f' = 1: multiplying by one changes nothing.
            Activation::Identity => {}
            Activation::Tanh => map_grad(a, d, |a| Activation::Tanh.df_inline(T::ZERO, a)),
            Activation::Relu => map_grad(z, d, |z| Activation::Relu.df_inline(z, T::ZERO)),
            Activation::ReluGrad1 => {
                map_grad(z, d, |z| Activation::ReluGrad1.df_inline(z, T::ZERO))
            }
            Activation::Sigmoid => map_grad(a, d, |a| Activation::Sigmoid.df_inline(T::ZERO, a)),
            Activation::Silu => map_grad(z, d, |z| Activation::Silu.df_inline(z, T::ZERO)),
            Activation::Elu { alpha } => {
                map_grad(z, d, |z| Activation::Elu { alpha }.df_inline(z, T::ZERO))
            }
            Activation::Selu => map_grad(z, d, |z| Activation::Selu.df_inline(z, T::ZERO)),
            Activation::Softplus => map_grad(z, d, |z| Activation::Softplus.df_inline(z, T::ZERO)),
            other => {
                for ((d, &z), &a) in d.iter_mut().zip(z).zip(a) {
                    *d *= other.df(z, a);
                }
            }
        }
    }
}

impl Activation {
    /// `f(z)`.
    #[inline]
    pub fn f<T: Float>(self, z: T) -> T {
        self.f_inline(z)
    }

    /// `f'(z)`, given `z` and `fz = f(z)`.
    #[inline]
    pub fn df<T: Float>(self, z: T, fz: T) -> T {
        self.df_inline(z, fz)
    }

    /// [`Activation::f`], the one definition of every formula, always inlined: called with a
    /// constant activation (the fast arms of [`Activation::forward_rows_inline`]) it compiles to
    /// that activation's formula alone.
    #[inline(always)]
    fn f_inline<T: Float>(self, z: T) -> T {
        match self {
            Activation::Identity => z,
            Activation::Tanh => z.tanh_fast(),
            Activation::Sigmoid => sigmoid(z),
            // NaN stays NaN, as in torch.relu.
            Activation::Relu | Activation::ReluGrad1 => {
                if z <= T::ZERO {
                    T::ZERO
                } else {
                    z
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > T::ZERO {
                    z
                } else {
                    T::from_f64(slope) * z
                }
            }
            Activation::Elu { alpha } => {
                if z > T::ZERO {
                    z
                } else {
                    T::from_f64(alpha) * (z.exp_fast() - T::ONE)
                }
            }
            Activation::Selu => {
                let scale = T::from_f64(SELU_SCALE);
                if z > T::ZERO {
                    scale * z
                } else {
                    scale * T::from_f64(SELU_ALPHA) * (z.exp_fast() - T::ONE)
                }
            }
            Activation::Gelu => {
                let half = T::from_f64(0.5);
                z * half * (T::ONE + (z * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
            }
            Activation::Softplus => {
                if z.to_f64() > SOFTPLUS_THRESHOLD {
                    z
                } else {
                    // ln(1 + e^z) = max(z, 0) + ln(1 + e^{-|z|}), stable for large |z|.
                    z.max(T::ZERO) + z.ln_1p_exp_neg_abs_fast()
                }
            }
            Activation::Silu => z * sigmoid(z),
            Activation::Softsign => z / (T::ONE + z.abs()),
        }
    }

    /// [`Activation::df`], always inlined (see [`Activation::f_inline`]).
    #[inline(always)]
    fn df_inline<T: Float>(self, z: T, fz: T) -> T {
        match self {
            Activation::Identity => T::ONE,
            Activation::Tanh => T::ONE - fz * fz,
            Activation::Sigmoid => fz * (T::ONE - fz),
            Activation::Relu => {
                if z > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            // NaN gets 0, as with plain relu.
            Activation::ReluGrad1 => {
                if z >= T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu { slope } => {
                if z > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(slope)
                }
            }
            Activation::Elu { alpha } => {
                if z > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(alpha) * z.exp_fast()
                }
            }
            Activation::Selu => {
                let scale = T::from_f64(SELU_SCALE);
                if z > T::ZERO {
                    scale
                } else {
                    scale * T::from_f64(SELU_ALPHA) * z.exp_fast()
                }
            }
            Activation::Gelu => {
                let half = T::from_f64(0.5);
                let cdf =
                    half * (T::ONE + (z * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
                let pdf = (-half * z * z).exp_fast() * T::from_f64(0.398_942_280_401_432_7);
                cdf + z * pdf
            }
            Activation::Softplus => {
                if z.to_f64() > SOFTPLUS_THRESHOLD {
                    T::ONE
                } else {
                    sigmoid(z)
                }
            }
            Activation::Silu => {
                let s = sigmoid(z);
                s * (T::ONE + z * (T::ONE - s))
            }
            Activation::Softsign => {
                let d = T::ONE + z.abs();
                T::ONE / (d * d)
            }
        }
    }

    /// The forward pass over a batch, in place and fused: every row of `z` (row length
    /// `bias.len()`) gets `z += bias` when a bias is given, then `a = f(z)`. Equal elementwise
    /// to [`Activation::f`] (f32 tanh where the CPU has FMA: [`Float::tanh_fast_fused`], as
    /// accurate); the loops are dispatched once to the widest SIMD instruction set the CPU has
    /// (pulp), where the identity, tanh, sigmoid, the ReLUs, SiLU, ELU, SELU and softplus
    /// have arms of their own that vectorise (f32 exponentials by [`Float::exp_fast`]).
    pub fn forward_rows<T: Float>(self, bias: Option<&[T]>, z: &mut [T], a: &mut [T]) {
        assert_eq!(z.len(), a.len(), "forward_rows: z and a differ in length");
        // AVX2 with FMA where the CPU has it (tanh by fused multiply-adds, 15% faster on the
        // tiny-moons sweep), else the widest instruction set pulp finds, FMA on aarch64 only.
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(
                v3,
                ForwardRows {
                    act: self,
                    bias,
                    z,
                    a,
                    fused: true,
                },
            );
        }
        pulp::Arch::new().dispatch(ForwardRows {
            act: self,
            bias,
            z,
            a,
            fused: cfg!(target_arch = "aarch64"),
        })
    }

    /// The backward pass through the nonlinearity, in place: `d ⊙= f'(z)` with `a = f(z)`.
    /// Equal elementwise to multiplying by [`Activation::df`]; dispatched like
    /// [`Activation::forward_rows`].
    pub fn backward_in_place<T: Float>(self, z: &[T], a: &[T], d: &mut [T]) {
        assert!(
            z.len() == d.len() && a.len() == d.len(),
            "backward_in_place: slices differ in length"
        );
        pulp::Arch::new().dispatch(BackwardInPlace { act: self, z, a, d })
    }

    /// Whether `f(0) = 0`: with all-zero weights and biases such a layer outputs exactly zero.
    pub fn zero_at_zero(self) -> bool {
        !matches!(self, Activation::Sigmoid | Activation::Softplus)
    }

    /// Whether f(a z) = a f(z) for every a > 0 (identity, ReLU, leaky ReLU): then a layer's
    /// second moment scales exactly with its input's, E[f(√q z)²] = q E[f(z)²].
    pub fn positively_homogeneous(self) -> bool {
        matches!(
            self,
            Activation::Identity
                | Activation::Relu
                | Activation::ReluGrad1
                | Activation::LeakyRelu { .. }
        )
    }

    /// f'(0) where the activation has a kink at 0 and the value there is a convention: 0 for
    /// `relu` (PyTorch), 1 for `relu:grad0=1`, the slope for leaky ReLU (PyTorch: the negative
    /// side's slope). None for activations differentiable at 0 (their f'(0) is no choice).
    pub fn grad_at_zero(self) -> Option<f64> {
        match self {
            Activation::Relu => Some(0.0),
            Activation::ReluGrad1 => Some(1.0),
            Activation::LeakyRelu { slope } => Some(slope),
            _ => None,
        }
    }

    /// The activation with the same value and derivative everywhere except on a set of
    /// measure zero, in its plainest form: `relu` for `relu:grad0=1`, itself otherwise.
    /// Expectations over continuous distributions (mean field, gains) cannot tell them apart.
    pub fn almost_everywhere(self) -> Activation {
        match self {
            Activation::ReluGrad1 => Activation::Relu,
            other => other,
        }
    }

    /// The gain used by gain-scaled initializers.
    ///
    /// PyTorch's `torch.nn.init.calculate_gain` table where it has an entry: identity and sigmoid
    /// 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4. For activations
    /// PyTorch gives no gain (elu, gelu, softplus, silu, softsign) it is the gain that preserves
    /// the second moment of unit-Gaussian pre-activations, `g = 1 / sqrt(E[f(z)^2])` with
    /// z ~ N(0, 1), computed by quadrature (see [`Activation::second_moment_gain`]); for ReLU
    /// that rule gives sqrt(2), PyTorch's value. The resulting values: elu 1.2452, gelu 1.5335,
    /// softplus 1.0419, silu 1.6765, softsign 2.3375 (for comparison the rule gives tanh 1.5931,
    /// where PyTorch's table says 5/3).
    pub fn gain(self) -> f64 {
        match self {
            Activation::Identity | Activation::Sigmoid => 1.0,
            Activation::Tanh => 5.0 / 3.0,
            Activation::Relu | Activation::ReluGrad1 => std::f64::consts::SQRT_2,
            Activation::LeakyRelu { slope } => (2.0 / (1.0 + slope * slope)).sqrt(),
            Activation::Selu => 0.75,
            Activation::Elu { .. }
            | Activation::Gelu
            | Activation::Softplus
            | Activation::Silu
            | Activation::Softsign => self.second_moment_gain(),
        }
    }

    /// `1 / sqrt(E[f(z)^2])` for z ~ N(0, 1), by composite Simpson's rule on [-12, 12] with
    /// 24 000 intervals (error far below 1e-9 for these smooth, polynomially bounded f).
    pub fn second_moment_gain(self) -> f64 {
        let n = 24_000;
        let (a, b) = (-12.0_f64, 12.0_f64);
        let h = (b - a) / n as f64;
        let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        let g = |z: f64| {
            let f = self.f(z);
            f * f * norm * (-0.5 * z * z).exp()
        };
        let mut s = g(a) + g(b);
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            s += w * g(a + i as f64 * h);
        }
        1.0 / (s * h / 3.0).sqrt()
    }

    /// The canonical spec string, e.g. `tanh` or `leaky_relu:0.2`.
    pub fn spec(self) -> String {
        match self {
            Activation::Identity => "identity".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Relu => "relu".into(),
            Activation::ReluGrad1 => "relu:grad0=1".into(),
            Activation::LeakyRelu { slope } => format!("leaky_relu:{}", fmt_f64(slope)),
            Activation::Elu { alpha } => format!("elu:{}", fmt_f64(alpha)),
            Activation::Selu => "selu".into(),
            Activation::Gelu => "gelu".into(),
            Activation::Softplus => "softplus".into(),
            Activation::Silu => "silu".into(),
            Activation::Softsign => "softsign".into(),
        }
    }

    /// The PyTorch module that computes this activation, for the rebuild snippet.
    pub fn torch_module(self) -> String {
        match self {
            Activation::Identity => "nn.Identity()".into(),
            Activation::Tanh => "nn.Tanh()".into(),
            Activation::Sigmoid => "nn.Sigmoid()".into(),
            Activation::Relu => "nn.ReLU()".into(),
            // Defined in [`crate::nn::torch::RELU_GRAD1_CLASS`].
            Activation::ReluGrad1 => "ReLUGrad1()".into(),
            Activation::LeakyRelu { slope } => format!("nn.LeakyReLU({})", fmt_f64(slope)),
            Activation::Elu { alpha } => format!("nn.ELU({})", fmt_f64(alpha)),
            Activation::Selu => "nn.SELU()".into(),
            Activation::Gelu => "nn.GELU()".into(),
            Activation::Softplus => "nn.Softplus()".into(),
            Activation::Silu => "nn.SiLU()".into(),
            Activation::Softsign => "nn.Softsign()".into(),
        }
    }

    /// Parses a spec, naming `field` in errors: `name` or `name:args`, or `name(args)` as a
    /// net spec writes it (`relu(grad0=1)` = `relu:grad0=1`).
    pub fn parse(field: &str, text: &str) -> Result<Activation> {
        let trimmed = text.trim();
        let colon_form = match trimmed.strip_suffix(')').and_then(|t| t.split_once('(')) {
            Some((name, args)) if !name.contains(':') && !args.contains('(') => {
                if args.trim().is_empty() {
                    name.to_string()
                } else {
                    format!("{name}:{args}")
                }
            }
            _ => trimmed.to_string(),
        };
        let spec = Spec::parse(field, &colon_form)?;
        let act = match spec.name.as_str() {
            "identity" | "linear" | "none" => {
                spec.bind(&[])?;
                Activation::Identity
            }
            "tanh" => {
                spec.bind(&[])?;
                Activation::Tanh
            }
            "sigmoid" => {
                spec.bind(&[])?;
                Activation::Sigmoid
            }
            "relu" => {
                // Keyword only: `relu:1` would not say what the 1 is.
                if !spec.all_keyed() {
                    return Err(spec.error("relu takes only grad0=0|1 (relu'(0))"));
                }
                let v = spec.bind(&["grad0"])?;
                match spec.f64_or("grad0", &v[0], 0.0)? {
                    0.0 => Activation::Relu,
                    1.0 => Activation::ReluGrad1,
                    g => {
                        return Err(spec.error(format!(
                            "grad0={g}: relu'(0) must be 0 (PyTorch) or 1 (ZerO's code)"
                        )))
                    }
                }
            }
            "leaky_relu" | "leakyrelu" => {
                let v = spec.bind(&["slope"])?;
                Activation::LeakyRelu {
                    slope: spec.f64_or("slope", &v[0], 0.01)?,
                }
            }
            "elu" => {
                let v = spec.bind(&["alpha"])?;
                Activation::Elu {
                    alpha: spec.f64_or("alpha", &v[0], 1.0)?,
                }
            }
            "selu" => {
                spec.bind(&[])?;
                Activation::Selu
            }
            "gelu" => {
                spec.bind(&[])?;
                Activation::Gelu
            }
            "softplus" => {
                spec.bind(&[])?;
                Activation::Softplus
            }
            "silu" | "swish" => {
                spec.bind(&[])?;
                Activation::Silu
            }
            "softsign" => {
                spec.bind(&[])?;
                Activation::Softsign
            }
            other => {
                return Err(spec.error(format!(
                    "unknown activation '{other}' (known: {})",
                    ACTIVATION_NAMES.join(", ")
                )))
            }
        };
        Ok(act)
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

impl FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Activation::parse("activation", s)
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.spec()
    }
}

impl TryFrom<String> for Activation {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Every activation with default parameters, for exhaustive tests and listings.
pub fn all_activations() -> Vec<Activation> {
    ACTIVATION_NAMES
        .iter()
        .map(|n| n.parse().expect("built-in activation names parse"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_central_difference_in_f64() {
        let zs = [-25.0, -3.1, -1.0, -0.3, 0.2, 0.7, 1.9, 4.0, 21.5];
        for act in all_activations().into_iter().chain([Activation::ReluGrad1]) {
            for &z in &zs {
                let h = 1e-6;
                let num = (act.f(z + h) - act.f(z - h)) / (2.0 * h);
                let ana = act.df(z, act.f(z));
                let err = (num - ana).abs() / num.abs().max(ana.abs()).max(1e-3);
                assert!(err < 1e-6, "{act} at {z}: numeric {num} vs analytic {ana}");
            }
        }
    }

    /// The row kernels (SIMD dispatches with an arm per activation) give `f` and `f'` bit for
    /// bit, with and without a bias, in f32 and f64, on ordinary and special values (f32 tanh:
    /// `tanh_fast` or, where the CPU has FMA, `tanh_fast_fused`).
    #[test]
    fn row_kernels_equal_the_scalar_formulas_bit_for_bit() {
        fn check<T: Float>() {
            let mut zs: Vec<T> = (-400..=400).map(|i| T::from_f64(i as f64 * 0.07)).collect();
            for v in [
                0.0, -0.0, 1e-30, -1e-30, 80.0, -80.0, 120.0, -120.0, 1e6, -1e6,
            ] {
                zs.push(T::from_f64(v));
            }
            zs.extend([T::from_f64(f64::INFINITY), T::from_f64(f64::NEG_INFINITY)]);
            zs.push(T::from_f64(f64::NAN));
            let same = |a: T, b: T| a == b || (a != a && b != b);
            // f32 tanh's row kernel evaluates its polynomials by FMA where the CPU has it.
            let tanh_fused = |v: T| [v.tanh_fast(), v.tanh_fast_fused()];
            let bias = [T::from_f64(0.25)];
            let acts = all_activations().into_iter().chain([
                Activation::ReluGrad1,
                Activation::Elu { alpha: 0.5 },
                Activation::LeakyRelu { slope: 0.2 },
            ]);
            for act in acts {
                for b in [None, Some(&bias[..])] {
                    let mut z = zs.clone();
                    let mut a = vec![T::ZERO; z.len()];
                    act.forward_rows(b, &mut z, &mut a);
                    let shift = b.map_or(T::ZERO, |b| b[0]);
                    for ((&z0, &z1), &a1) in zs.iter().zip(&z).zip(&a) {
                        let want = z0 + shift;
                        assert!(same(z1, want), "{act} {}: z {z0} -> {z1}", T::NAME);
                        let ok = if act == Activation::Tanh {
                            tanh_fused(want).iter().any(|&f| same(a1, f))
                        } else {
                            same(a1, act.f(want))
                        };
                        assert!(ok, "{act} {}: f({want})", T::NAME);
                    }
                    let mut d = vec![T::from_f64(0.75); z.len()];
                    act.backward_in_place(&z, &a, &mut d);
                    for ((&d1, &z1), &a1) in d.iter().zip(&z).zip(&a) {
                        let want = T::from_f64(0.75) * act.df(z1, a1);
                        assert!(same(d1, want), "{act} {}: df at {z1}", T::NAME);
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// f32 activations that use [`Float::exp_fast`] stay within a few ulp of f64's values.
    #[test]
    fn f32_exponential_activations_are_accurate() {
        let acts = [
            Activation::Sigmoid,
            Activation::Silu,
            Activation::Elu { alpha: 1.0 },
            Activation::Selu,
            Activation::Softplus,
            Activation::Gelu,
        ];
        for act in acts {
            // Errors relative to max(1, |exact|) (f32 rounding alone gives up to 6e-8).
            let (mut worst_f, mut worst_df) = (0.0f64, 0.0f64);
            for i in -30_000..=30_000 {
                let z = i as f32 * 1e-3;
                let exact = act.f(z as f64);
                let got = act.f(z);
                worst_f = worst_f.max((got as f64 - exact).abs() / exact.abs().max(1.0));
                let dexact = act.df(z as f64, exact);
                let dgot = act.df(z, got) as f64;
                worst_df = worst_df.max((dgot - dexact).abs() / dexact.abs().max(1.0));
            }
            // As with libm's expf (measured: the same worst cases to two digits); silu's
            // derivative loses digits in 1 - s for large z whichever exponential it uses.
            assert!(worst_f < 2e-7, "{act}: worst error {worst_f:e}");
            assert!(
                worst_df < 1.5e-6,
                "{act}: worst derivative error {worst_df:e}"
            );
        }
        // The tails: sigmoid never rounds to exactly 0 or 1 where f64's does not.
        assert!(Activation::Sigmoid.f(-80.0f32) > 0.0);
        assert_eq!(Activation::Sigmoid.f(-80.0f32), (-80.0f64).exp() as f32);
        assert_eq!(Activation::Sigmoid.f(0.0f32), 0.5);
        assert!(Activation::Sigmoid.f(f32::NAN).is_nan());
        assert_eq!(Activation::Sigmoid.f(f32::INFINITY), 1.0);
        assert_eq!(Activation::Sigmoid.f(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn pytorch_conventions_at_zero() {
        assert_eq!(Activation::Relu.df(0.0, 0.0), 0.0);
        assert_eq!(Activation::Relu.df(0.0f32, 0.0), 0.0);
        assert_eq!(Activation::Relu.grad_at_zero(), Some(0.0));
        assert_eq!(Activation::Tanh.grad_at_zero(), None);
        let leaky: Activation = "leaky_relu".parse().unwrap();
        assert_eq!(leaky, Activation::LeakyRelu { slope: 0.01 });
        assert_eq!(leaky.df(0.0, 0.0), 0.01);
        assert_eq!(Activation::Sigmoid.f(0.0_f64), 0.5);
        assert_eq!(Activation::Softplus.f(30.0_f64), 30.0);
    }

    #[test]
    fn relu_grad0_one_differs_from_relu_only_at_zero() {
        let one = Activation::ReluGrad1;
        assert_eq!(one.df(0.0, 0.0), 1.0);
        assert_eq!(one.df(0.0f32, 0.0), 1.0);
        assert_eq!(one.df(-0.0, 0.0), 1.0);
        assert_eq!(one.grad_at_zero(), Some(1.0));
        for z in [-3.0, -1e-300, 1e-300, 0.5, 7.0, f64::NAN] {
            let (a, b) = (Activation::Relu, one);
            assert_eq!(a.f(z).to_bits(), b.f(z).to_bits(), "f({z})");
            assert_eq!(
                a.df(z, a.f(z)).to_bits(),
                b.df(z, b.f(z)).to_bits(),
                "f'({z})"
            );
        }
        assert_eq!(one.f(0.0), 0.0);
        assert_eq!(one.gain(), Activation::Relu.gain());
        // The SIMD kernels agree with df, at 0 too, in both precisions.
        let z = vec![-1.0f32, 0.0, 2.0, -0.0, 0.0, 3.0, -2.0, 0.0, 1.0];
        let mut a = vec![0.0f32; z.len()];
        let mut zz = z.clone();
        one.forward_rows(None, &mut zz, &mut a);
        let mut d = vec![1.0f32; z.len()];
        one.backward_in_place(&z, &a, &mut d);
        assert_eq!(d, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        let mut d = vec![1.0f32; z.len()];
        Activation::Relu.backward_in_place(&z, &a, &mut d);
        assert_eq!(d, [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        let z64: Vec<f64> = z.iter().map(|&x| x as f64).collect();
        let mut d = vec![2.0f64; z.len()];
        one.backward_in_place(&z64, &z64, &mut d);
        assert_eq!(d, [0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 2.0, 2.0]);
    }

    #[test]
    fn relu_grad0_specs_parse_in_every_spelling_and_plain_relu_stays_relu() {
        for text in [
            "relu:grad0=1",
            "relu(grad0=1)",
            "RELU:grad0=1",
            " relu( grad0 = 1 ) ",
        ] {
            assert_eq!(
                Activation::parse("--act", text).unwrap(),
                Activation::ReluGrad1,
                "{text}"
            );
        }
        for text in ["relu", "relu:grad0=0", "relu(grad0=0)", "relu()"] {
            assert_eq!(
                Activation::parse("--act", text).unwrap(),
                Activation::Relu,
                "{text}"
            );
        }
        assert_eq!(Activation::Relu.spec(), "relu");
        assert_eq!(Activation::ReluGrad1.spec(), "relu:grad0=1");
        assert_eq!(
            Activation::parse("--act", "leaky_relu(0.2)").unwrap(),
            Activation::LeakyRelu { slope: 0.2 }
        );
        for (text, needle) in [
            ("relu:grad0=0.5", "must be 0 (PyTorch) or 1"),
            ("relu:1", "takes only grad0"),
            ("relu:slope=1", "unknown argument 'slope'"),
        ] {
            let e = Activation::parse("--act", text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let json = serde_json::to_string(&Activation::ReluGrad1).unwrap();
        assert_eq!(json, "\"relu:grad0=1\"");
        assert_eq!(
            serde_json::from_str::<Activation>(&json).unwrap(),
            Activation::ReluGrad1
        );
    }

    #[test]
    fn gains_match_pytorch_table_and_second_moment_rule() {
        assert_eq!(Activation::Tanh.gain(), 5.0 / 3.0);
        assert_eq!(Activation::Relu.gain(), 2f64.sqrt());
        assert_eq!(Activation::Selu.gain(), 0.75);
        assert!(
            (Activation::LeakyRelu { slope: 0.2 }.gain() - (2.0 / 1.04f64).sqrt()).abs() < 1e-15
        );
        // The quadrature reproduces the closed forms it replaces.
        assert!((Activation::Relu.second_moment_gain() - 2f64.sqrt()).abs() < 1e-9);
        assert!((Activation::Identity.second_moment_gain() - 1.0).abs() < 1e-9);
        for act in all_activations() {
            let g = act.gain();
            assert!(g.is_finite() && g > 0.5 && g < 3.0, "{act}: {g}");
        }
    }

    #[test]
    fn specs_round_trip_and_unknown_names_are_refused() {
        for act in all_activations() {
            assert_eq!(act.spec().parse::<Activation>().unwrap(), act);
        }
        let e = Activation::parse("--act", "tanhh").unwrap_err().to_string();
        assert!(e.contains("unknown activation 'tanhh'"), "{e}");
        assert!(Activation::parse("--act", "relu:2").is_err());
    }
}
