//! The verdict on a run: did gradients die, did the network only fail to break symmetry, or did
//! it use its width? Computed by the same code for `train` (summary.json) and `explain`.
//!
//! The rule, checked in this order:
//! 1. `dead`: no weight of any layer ever changed;
//! 2. `deadlock`: some hidden layer never woke (its weight gradient was exactly 0 at every step)
//!    while a later layer did;
//! 3. `symmetric`: every hidden layer ends with tolerance width 1;
//! 4. `partial`: some hidden layer ends with fewer classes than units;
//! 5. `full`: every hidden layer ends at full width.

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::diagnostics::symmetry::{equitable_partition, exact_partition};
use crate::layer::DenseGrads;
use crate::network::Params;
use crate::output::json::f64_or_null;
use crate::scalar::Float;

/// Remembers the first step at which each layer's weight gradient had a nonzero entry.
#[derive(Clone, Debug, PartialEq)]
pub struct WakeTracker {
    pub wake: Vec<Option<usize>>,
}

impl WakeTracker {
    /// Whether every layer has had a nonzero weight gradient (later gradients change nothing).
    pub fn all_awake(&self) -> bool {
        self.wake.iter().all(Option::is_some)
    }

    pub fn new(layers: usize) -> Self {
        WakeTracker {
            wake: vec![None; layers],
        }
    }

    /// Looks at the backprop gradients of `step` (before any added noise).
    pub fn observe<T: Float>(&mut self, step: usize, grads: &[DenseGrads<T>]) {
        for (w, g) in self.wake.iter_mut().zip(grads) {
            if w.is_none() && g.d_weight.as_slice().iter().any(|&x| x != T::ZERO) {
                *w = Some(step);
            }
        }
    }
}

/// What happened to one layer (1-based; L is the output layer, whose units are fixed singletons,
/// so its widths are its fan_out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerVerdict {
    pub layer: usize,
    pub fan_in: usize,
    pub fan_out: usize,
    pub activation: String,
    #[serde(deserialize_with = "f64_or_null")]
    pub grad_w_norm_step0: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub grad_b_norm_step0: f64,
    /// First step with a nonzero weight gradient (0 is the gradient at the initialization).
    pub wake_step: Option<usize>,
    pub weights_unchanged: bool,
    pub width_init: usize,
    pub width_end: usize,
    pub width_init_tol: usize,
    pub width_end_tol: usize,
}

/// The five outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    Dead,
    Deadlock,
    Symmetric,
    Partial,
    Full,
}

impl VerdictKind {
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Dead => "dead",
            VerdictKind::Deadlock => "deadlock",
            VerdictKind::Symmetric => "symmetric",
            VerdictKind::Partial => "partial",
            VerdictKind::Full => "full",
        }
    }
}

/// The verdict with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub layers: Vec<LayerVerdict>,
    /// Loss of the best constant predictor on the training split.
    #[serde(deserialize_with = "f64_or_null")]
    pub loss_constant_baseline: f64,
    /// What in the setup can split units (dropout, gradient noise).
    pub symmetry_breakers: Vec<String>,
    /// Whether some hidden layer ended with more tolerance classes than it started with.
    pub symmetry_broken: bool,
    pub verdict: VerdictKind,
    /// The plain-language conclusion.
    pub summary: String,
}

/// Everything the verdict is computed from.
pub struct VerdictInputs<'a> {
    pub initial: &'a Params,
    pub last: &'a Params,
    pub act: Activation,
    pub wake: &'a [Option<usize>],
    /// (||dW_l||, ||db_l||) at step 0, per layer.
    pub grad_norms_step0: &'a [(f64, f64)],
    pub steps: usize,
    pub loss_start: f64,
    pub loss_end: f64,
    pub loss_constant_baseline: f64,
    /// Relative tolerance of the equitable partition.
    pub tol: f64,
    pub symmetry_breakers: Vec<String>,
}

fn list(xs: &[usize]) -> String {
    xs.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies the rule (module docs) and writes the conclusion.
pub fn verdict(v: VerdictInputs<'_>) -> Verdict {
    let layers_n = v.initial.len();
    let hidden = layers_n - 1;
    let (exact0, exact1) = (
        exact_partition(v.initial).widths(),
        exact_partition(v.last).widths(),
    );
    let (tol0, tol1) = (
        equitable_partition(v.initial, v.tol).widths(),
        equitable_partition(v.last, v.tol).widths(),
    );
    let layers: Vec<LayerVerdict> = (0..layers_n)
        .map(|i| {
            let (fan_out, fan_in) = v.initial[i].weight.shape();
            let w = |ws: &[usize]| if i < hidden { ws[i] } else { fan_out };
            let (gw, gb) = v
                .grad_norms_step0
                .get(i)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN));
            LayerVerdict {
                layer: i + 1,
                fan_in,
                fan_out,
                activation: if i < hidden {
                    v.act.spec()
                } else {
                    "identity".into()
                },
                grad_w_norm_step0: gw,
                grad_b_norm_step0: gb,
                wake_step: v.wake.get(i).copied().flatten(),
                weights_unchanged: v.initial[i]
                    .weight
                    .as_slice()
                    .iter()
                    .zip(v.last[i].weight.as_slice())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                width_init: w(&exact0),
                width_end: w(&exact1),
                width_init_tol: w(&tol0),
                width_end_tol: w(&tol1),
            }
        })
        .collect();
    let hidden_layers = &layers[..hidden];
    let never: Vec<usize> = hidden_layers
        .iter()
        .filter(|l| l.wake_step.is_none())
        .map(|l| l.layer)
        .collect();
    let deadlocked = never
        .iter()
        .any(|&n| layers.iter().any(|l| l.layer > n && l.wake_step.is_some()));
    let kind = if layers.iter().all(|l| l.weights_unchanged) {
        VerdictKind::Dead
    } else if deadlocked {
        VerdictKind::Deadlock
    } else if hidden > 0 && hidden_layers.iter().all(|l| l.width_end_tol == 1) {
        VerdictKind::Symmetric
    } else if hidden_layers.iter().any(|l| l.width_end_tol < l.fan_out) {
        VerdictKind::Partial
    } else {
        VerdictKind::Full
    };
    let symmetry_broken = hidden_layers
        .iter()
        .any(|l| l.width_end_tol > l.width_init_tol);

    let losses = format!(
        "The training loss went from {:.6} to {:.6}; the best constant predictor scores {:.6}.",
        v.loss_start, v.loss_end, v.loss_constant_baseline
    );
    let woke: Vec<String> = layers
        .iter()
        .filter_map(|l| {
            l.wake_step
                .map(|s| format!("layer {} at step {s}", l.layer))
        })
        .collect();
    let widths = hidden_layers
        .iter()
        .map(|l| format!("{}/{}", l.width_end_tol, l.fan_out))
        .collect::<Vec<_>>()
        .join(", ");
    let body = match kind {
        VerdictKind::Dead => {
            let bias_moved = v.initial.iter().zip(v.last).any(|(a, b)| a.bias != b.bias);
            format!(
                "No weight moved in {} steps: every weight gradient was exactly zero at every step{}. {losses}",
                v.steps,
                if bias_moved { ", and only biases learned" } else { ", and nothing else moved either" }
            )
        }
        VerdictKind::Deadlock => format!(
            "Hidden layer(s) {} never received a nonzero weight gradient, while later layers did ({}): the layers below stay frozen at their initial values. {losses}",
            list(&never),
            woke.join(", ")
        ),
        VerdictKind::Symmetric => format!(
            "Gradients are alive ({}), but every hidden layer ends with a single distinct unit: the network computes no more than a one-unit-per-layer network. The problem is symmetry, not dead gradients. {losses}",
            woke.join(", ")
        ),
        VerdictKind::Partial => format!(
            "Hidden layers end with {widths} distinct units (tolerance classes / units): part of the width is wasted on copies. {losses}"
        ),
        VerdictKind::Full => {
            if hidden == 0 {
                format!("No hidden layer, so no symmetry to break; the weights learned. {losses}")
            } else {
                format!("Every hidden layer ends with all its units distinct ({widths}). {losses}")
            }
        }
    };
    let breakers = if v.symmetry_breakers.is_empty() {
        " Nothing in the setup can break symmetry (no dropout, no gradient noise).".to_string()
    } else {
        format!(
            " Symmetry breakers present: {}; they {} units.",
            v.symmetry_breakers.join(", "),
            if symmetry_broken {
                "split"
            } else {
                "did not split"
            }
        )
    };
    Verdict {
        layers,
        loss_constant_baseline: v.loss_constant_baseline,
        symmetry_breakers: v.symmetry_breakers,
        symmetry_broken,
        verdict: kind,
        summary: format!("{}: {body}{breakers}", kind.name()),
    }
}
