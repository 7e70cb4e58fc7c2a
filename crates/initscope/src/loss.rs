//! Losses on the output layer's pre-activations `z_L` (logits), with their gradients.
//!
//! Conventions follow PyTorch's defaults (`reduction="mean"`):
//! ```text
//! mse:            L = 1/(B K) Σ_ik (z_ik - y_ik)^2            dL/dz = 2 (z - y) / (B K)
//! cross_entropy:  L = 1/B Σ_i [logsumexp(z_i) - z_i,y_i]       dL/dz = (softmax(z) - onehot(y)) / B
//! bce:            L = 1/(B K) Σ_ik [max(z,0) - z y + ln(1 + e^-|z|)]   dL/dz = (σ(z) - y) / (B K)
//! ```
//! Cross-entropy is fused with the softmax and uses the max-shifted log-sum-exp, so it never
//! overflows. Loss values are accumulated in f64.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::Spec;

/// A training objective on logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Loss {
    /// Mean squared error over batch x outputs (no 1/2), `nn.MSELoss`.
    Mse,
    /// Softmax cross-entropy on class indices, `nn.CrossEntropyLoss`.
    CrossEntropy,
    /// Sigmoid + binary cross-entropy on 0/1 targets, `nn.BCEWithLogitsLoss`.
    BceWithLogits,
}

/// Targets of one batch, in the form the loss needs.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, T> {
    /// Class indices, one per row (cross-entropy).
    Classes(&'a [u32]),
    /// Dense targets of the logits' shape (MSE, BCE; one-hot rows for classes).
    Dense(&'a Matrix<T>),
}

impl Loss {
    /// Whether the loss takes class indices (else dense targets of the output's shape).
    pub fn wants_classes(self) -> bool {
        self == Loss::CrossEntropy
    }

    /// Mean loss over the batch; writes dLoss/dz into `d_logits` when given (same shape).
    pub fn forward_backward<T: Float>(
        self,
        logits: &Matrix<T>,
        targets: Targets<'_, T>,
        d_logits: Option<&mut Matrix<T>>,
    ) -> f64 {
        let batch = logits.rows();
        if batch == 0 {
            return 0.0;
        }
        let mut grad = d_logits;
        if let Some(g) = grad.as_deref_mut() {
            g.set_rows(batch);
        }
        match (self, targets) {
            (Loss::CrossEntropy, Targets::Classes(labels)) => {
                let inv_b = T::from_f64(1.0 / batch as f64);
                let mut total = 0.0;
                for (i, &label) in labels.iter().enumerate().take(batch) {
                    let g = grad.as_deref_mut().map(|g| (g.row_mut(i), inv_b));
                    total += cross_entropy_row(logits.row(i), label as usize, g).to_f64();
                }
                total / batch as f64
            }
            (Loss::Mse, Targets::Dense(y)) => Loss::Mse.elementwise(logits, y, grad),
            (Loss::BceWithLogits, Targets::Dense(y)) => {
                Loss::BceWithLogits.elementwise(logits, y, grad)
            }
            (loss, _) => {
                panic!("{loss}: targets of the wrong kind (a bug: config validation pairs them)")
            }
        }
    }

    /// [`Loss::forward_backward`] of an elementwise loss (MSE, BCE) on `batch > 0` rows: the
    /// mean of [`Loss::term`] and, into `grad`, [`Loss::term_grad`]. Called with a constant
    /// `self`, so the match in each is resolved outside the loop.
    #[inline(always)]
    fn elementwise<T: Float>(
        self,
        logits: &Matrix<T>,
        y: &Matrix<T>,
        mut grad: Option<&mut Matrix<T>>,
    ) -> f64 {
        let n = logits.as_slice().len();
        let scale = self.grad_scale::<T>(n);
        let mut total = 0.0;
        for (idx, (&z, &t)) in logits.as_slice().iter().zip(y.as_slice()).enumerate() {
            total += self.term(z, t).to_f64();
            if let Some(g) = grad.as_deref_mut() {
                g.as_mut_slice()[idx] = self.term_grad(z, t, scale);
            }
        }
        total / n as f64
    }

    /// One output's term of an elementwise loss, `L = 1/n Σ term(z, y)` over the `n = B K`
    /// outputs: MSE `(z - y)^2`, BCE `max(z, 0) - z y + ln(1 + e^{-|z|})` (stable for any z).
    /// The formula of [`Loss::forward_backward`] and of [`crate::lockstep`]; cross-entropy is
    /// not elementwise (see [`cross_entropy_row`]).
    #[inline(always)]
    pub(crate) fn term<T: Float>(self, z: T, y: T) -> T {
        match self {
            Loss::Mse => {
                let r = z - y;
                r * r
            }
            Loss::BceWithLogits => z.max(T::ZERO) - z * y + z.ln_1p_exp_neg_abs_fast(),
            Loss::CrossEntropy => unreachable!("cross-entropy is not elementwise"),
        }
    }

    /// dL/dz of one output of an elementwise loss, `scale (p - y)` with the prediction p = z
    /// (MSE) or sigmoid(z) (BCE) and `scale` = [`Loss::grad_scale`].
    #[inline(always)]
    pub(crate) fn term_grad<T: Float>(self, z: T, y: T, scale: T) -> T {
        match self {
            Loss::Mse => scale * (z - y),
            Loss::BceWithLogits => scale * (Activation::Sigmoid.f(z) - y),
            Loss::CrossEntropy => unreachable!("cross-entropy is not elementwise"),
        }
    }

    /// The factor of [`Loss::term_grad`] for `n = B K` outputs: 2 / n for MSE (d/dz of
    /// (z - y)^2 is 2 (z - y); no 1/2 in the loss), 1 / n for BCE (d term/dz = sigmoid(z) - y).
    #[inline(always)]
    pub(crate) fn grad_scale<T: Float>(self, n: usize) -> T {
        match self {
            Loss::Mse => T::from_f64(2.0 / n as f64),
            Loss::BceWithLogits => T::from_f64(1.0 / n as f64),
            Loss::CrossEntropy => unreachable!("cross-entropy is not elementwise"),
        }
    }

    /// Number of correctly classified rows: argmax of the logits for multi-output layers,
    /// `z > 0` for a single binary output.
    pub fn correct<T: Float>(self, logits: &Matrix<T>, labels: &[u32]) -> usize {
        let (batch, k) = logits.shape();
        (0..batch)
            .filter(|&i| {
                let z = logits.row(i);
                let pred = if k == 1 {
                    u32::from(z[0] > T::ZERO)
                } else {
                    argmax(z) as u32
                };
                pred == labels[i]
            })
            .count()
    }

    /// The loss of the best constant predictor on class labels (`classes[i]` in 0..k): the
    /// entropy of the class frequencies (cross-entropy), the mean per-output binary entropy of
    /// the target mean (BCE; `outputs` 1 means 0/1 labels, else one-hot), or the mean per-output
    /// variance p (1 - p) of the one-hot targets (MSE). k is the larger of `outputs` and the
    /// largest label + 1.
    pub fn constant_baseline_classes(self, classes: &[u32], outputs: usize) -> f64 {
        let entropy = |p: f64| {
            if p <= 0.0 || p >= 1.0 {
                0.0
            } else {
                -(p * p.ln() + (1.0 - p) * (1.0 - p).ln())
            }
        };
        let n = classes.len().max(1) as f64;
        let k = outputs.max(classes.iter().map(|&v| v as usize + 1).max().unwrap_or(1));
        let mut freq = vec![0.0; k];
        for &v in classes {
            freq[v as usize] += 1.0 / n;
        }
        match self {
            Loss::CrossEntropy => freq.iter().filter(|&&p| p > 0.0).map(|p| -p * p.ln()).sum(),
            Loss::BceWithLogits if outputs == 1 => entropy(freq.get(1).copied().unwrap_or(0.0)),
            Loss::BceWithLogits => freq.iter().map(|&p| entropy(p)).sum::<f64>() / k as f64,
            // One-hot targets: per-output variance p (1 - p).
            Loss::Mse => freq.iter().map(|p| p * (1.0 - p)).sum::<f64>() / k as f64,
        }
    }

    /// The loss of the best constant predictor on real-valued targets `values` (n, outputs)
    /// under MSE: the mean per-output variance (1/k) sum_j (1/n) sum_i (y_ij - mean_j)^2.
    pub fn constant_baseline_values(values: &Matrix<f64>) -> f64 {
        let (n, k) = values.shape();
        (0..k)
            .map(|j| {
                let mean = (0..n).map(|i| values.get(i, j)).sum::<f64>() / n as f64;
                (0..n)
                    .map(|i| (values.get(i, j) - mean).powi(2))
                    .sum::<f64>()
                    / n as f64
            })
            .sum::<f64>()
            / k as f64
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross_entropy",
            Loss::BceWithLogits => "bce",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Loss> {
        let spec = Spec::parse(field, text)?;
        spec.bind(&[])?;
        match spec.name.as_str() {
            "mse" | "l2" => Ok(Loss::Mse),
            "cross_entropy" | "ce" | "xent" | "crossentropy" => Ok(Loss::CrossEntropy),
            "bce" | "bce_with_logits" | "binary_cross_entropy" => Ok(Loss::BceWithLogits),
            other => Err(spec.error(format!(
                "unknown loss '{other}' (known: mse, cross_entropy, bce)"
            ))),
        }
    }
}

/// Cross-entropy of one row of logits `z` with class `y`, `logsumexp(z) - z_y` with the
/// maximum shifted out (never overflows); with `grad = Some((g, scale))` also dL/dz into `g`,
/// `(softmax(z) - onehot(y)) scale`, each exponential computed once and kept in `g`. The
/// formula of [`Loss::forward_backward`] (scale 1/B) and of [`crate::lockstep`].
#[inline(always)]
pub(crate) fn cross_entropy_row<T: Float>(z: &[T], y: usize, grad: Option<(&mut [T], T)>) -> T {
    let m = z.iter().copied().fold(z[0], T::max);
    let sum = match grad {
        Some((g, scale)) => {
            let mut sum = T::ZERO;
            for (gj, &zj) in g.iter_mut().zip(z) {
                *gj = (zj - m).exp();
                sum += *gj;
            }
            let inv_sum = T::ONE / sum;
            for gj in g.iter_mut() {
                *gj = *gj * inv_sum * scale;
            }
            g[y] -= scale;
            sum
        }
        None => z.iter().fold(T::ZERO, |s, &zj| s + (zj - m).exp()),
    };
    m + sum.ln() - z[y]
}

/// Index of the first maximum (NaN never wins).
pub fn argmax<T: Float>(xs: &[T]) -> usize {
    let mut best = 0;
    for (j, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = j;
        }
    }
    best
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Loss::parse("loss", s)
    }
}

impl From<Loss> for String {
    fn from(l: Loss) -> String {
        l.name().to_string()
    }
}

impl TryFrom<String> for Loss {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}
