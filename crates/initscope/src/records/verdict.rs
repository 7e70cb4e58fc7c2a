//! The verdict's vocabulary: the symmetry verdict ([`VerdictKind`]), the learning judgement
//! ([`Learning`], with its rule), the per-layer gradient state ([`GradState`]) and the records
//! that carry them ([`LayerVerdict`], [`Verdict`]) in `summary.json`. How they are computed from
//! a run is [`crate::diagnostics::verdict`].

use serde::{Deserialize, Serialize};

use crate::json::f64_or_null;

/// Relative margin of the learning judgement: a run is `stalled` when its final training loss is
/// not more than 1% below the best constant predictor's (L >= 0.99 C). A net stuck at the
/// constant predictor sits within float noise of it (relative gaps of about 1e-6 in the cases of
/// issue 15: symmetric, dead or dropout-split nets at 0.693147 on moons), while a net that learns
/// anything beyond the label marginals gains far more than 1% within the default 200 steps of
/// `explain` (moons, xor, teacher: 10% and more). When C is 0 the constant predictor is perfect
/// and every run counts as stalled.
pub const STALL_MARGIN: f64 = 0.01;

/// Did the run learn? The rule is [`Learning::judge`] (and [`crate::diagnostics::verdict`]'s
/// module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Learning {
    Learned,
    Stalled,
    Diverged,
}

impl Learning {
    pub fn name(self) -> &'static str {
        match self {
            Learning::Learned => "learned",
            Learning::Stalled => "stalled",
            Learning::Diverged => "diverged",
        }
    }

    /// `diverged` when `diverged` or the final loss is not finite; `stalled` when
    /// `loss_end >= (1 - STALL_MARGIN) * baseline` (the best constant predictor's loss);
    /// `learned` otherwise (also when the baseline is unknown, NaN).
    pub fn judge(diverged: bool, loss_end: f64, baseline: f64) -> Learning {
        if diverged || !loss_end.is_finite() {
            Learning::Diverged
        } else if loss_end >= (1.0 - STALL_MARGIN) * baseline {
            Learning::Stalled
        } else {
            Learning::Learned
        }
    }
}

/// The state of a layer's weight gradient over the run (the rule is in
/// [`crate::diagnostics::verdict`]'s module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradState {
    /// No nonzero entry at any step.
    Zero,
    /// Nonzero at some step, but over the last
    /// [`crate::diagnostics::verdict::VANISH_WINDOW`] steps every update was below the rounding
    /// unit of the weight it was added to.
    Vanishing,
    Alive,
}

impl GradState {
    pub fn name(self) -> &'static str {
        match self {
            GradState::Zero => "zero",
            GradState::Vanishing => "vanishing",
            GradState::Alive => "alive",
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
    /// No weight changed (compared by value in the run's precision: -0 equals 0).
    pub weights_unchanged: bool,
    /// Effective widths (symmetry classes of the layer's units on the network's unit graph):
    /// exact and within tolerance, at the start and the end. `None` in summaries written by
    /// versions that did not compute them for networks of modules.
    pub width_init: Option<usize>,
    pub width_end: Option<usize>,
    pub width_init_tol: Option<usize>,
    pub width_end_tol: Option<usize>,
    /// zero, vanishing or alive (None in summaries written before the field existed).
    #[serde(default)]
    pub grad_state: Option<GradState>,
    /// ||dW|| at the last step (None when not measured, or in older summaries).
    #[serde(default)]
    pub grad_w_norm_end: Option<f64>,
}

/// The outcomes. `unassessed` is only read: earlier versions wrote it for networks of modules
/// whose symmetry classes they did not compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    Dead,
    Deadlock,
    Symmetric,
    Partial,
    Full,
    Unassessed,
}

impl VerdictKind {
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Dead => "dead",
            VerdictKind::Deadlock => "deadlock",
            VerdictKind::Symmetric => "symmetric",
            VerdictKind::Partial => "partial",
            VerdictKind::Full => "full",
            VerdictKind::Unassessed => "unassessed",
        }
    }
}

/// One residual stream's effective widths: the stream is a block's input, its output and the
/// outputs of the blocks that follow it directly, which share one partition (the skip
/// connections tie unit i before a block to unit i after it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamVerdict {
    /// The paths of its first and last block (`2`, `5`).
    pub first_block: String,
    pub last_block: String,
    pub blocks: usize,
    pub units: usize,
    /// Exact and tolerance widths at the start and the end (`None` for a stream that ends the
    /// network, whose units are its outputs).
    pub width_init: Option<usize>,
    pub width_end: Option<usize>,
    pub width_init_tol: Option<usize>,
    pub width_end_tol: Option<usize>,
}

impl StreamVerdict {
    /// `stream 2-5` (or `stream 2` for one block).
    pub fn name(&self) -> String {
        if self.first_block == self.last_block {
            format!("stream {}", self.first_block)
        } else {
            format!("stream {}-{}", self.first_block, self.last_block)
        }
    }
}

/// One parameter tensor's wake-up step (the first step its gradient had a nonzero entry),
/// predicted from the zero pattern of the initialization
/// ([`crate::diagnostics::wake::predict`]) and measured, with the reason where they differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorWake {
    /// Its `state_dict` name.
    pub name: String,
    pub wake_predicted: Option<usize>,
    pub wake_measured: Option<usize>,
    /// Why the two differ (None when they agree).
    #[serde(default)]
    pub note: Option<String>,
    /// zero | vanishing | alive, by the layers' rule (its updates over the last steps against
    /// the rounding unit of its values; floor 1 outside linear layers).
    #[serde(default)]
    pub grad_state: Option<GradState>,
}

/// The version of the verdict fields: 1 before the learning judgement and gradient states, 2
/// with them. Sweep tables refuse to mix versions.
pub const VERDICT_VERSION: u32 = 2;

fn version_one() -> u32 {
    1
}

/// The verdict with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub layers: Vec<LayerVerdict>,
    /// The residual streams (none for a network without residual blocks, and in older files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamVerdict>,
    /// Every parameter tensor's wake-up step, predicted and measured (networks given as
    /// `--net` specs; none for plain MLPs, whose layers carry their wake steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<TensorWake>,
    /// Loss of the best constant predictor on the training split.
    #[serde(deserialize_with = "f64_or_null")]
    pub loss_constant_baseline: f64,
    /// What in the setup can split units (dropout, gradient noise).
    pub symmetry_breakers: Vec<String>,
    /// Whether some hidden layer ended with more tolerance classes than it started with.
    pub symmetry_broken: bool,
    pub verdict: VerdictKind,
    /// learned, stalled or diverged (None in summaries written before the field existed).
    #[serde(default)]
    pub learning: Option<Learning>,
    /// [`VERDICT_VERSION`] when written (1 in older files).
    #[serde(default = "version_one")]
    pub verdict_version: u32,
    /// The plain-language conclusion.
    pub summary: String,
}
