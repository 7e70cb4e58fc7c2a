//! The verdict on a run: did gradients die, did the network only fail to break symmetry, or did
//! it use its width? And, beside it, did it learn? Computed by the same code for `train`
//! (summary.json) and `explain`.
//!
//! The symmetry verdict, checked in this order:
//! 1. `dead`: no weight of any layer changed (compared in the run's precision: the starting
//!    weights are the f64 draws rounded to it);
//! 2. `deadlock`: some hidden layer never woke (its weight gradient was exactly 0 at every step)
//!    while a later layer did;
//! 3. `symmetric`: every hidden layer ends with tolerance width 1;
//! 4. `partial`: some hidden layer ends with fewer classes than units;
//! 5. `full`: every hidden layer ends at full width.
//!
//! The learning judgement ([`Learning::judge`]): `diverged` when the loss became NaN or
//! infinite; `stalled` when the final training loss L is not below the best constant predictor's
//! loss C by more than [`STALL_MARGIN`] (L >= (1 - 0.01) C); `learned` otherwise.
//!
//! The gradient state of each layer ([`GradState`]): `zero` when its weight gradient had no
//! nonzero entry at any step (checked at every step); `vanishing` when, at each of the last
//! [`VANISH_WINDOW`] steps, every entry's update was below the rounding unit of
//! max(|W_ij|, [`weight_floor`]) in the run's precision ([`negligible_update`]); `alive`
//! otherwise. A net is never called healthy because its units are distinct.

use crate::activation::Activation;
use crate::diagnostics::symmetry::{StreamWidth, UnitGraph};
use crate::matrix::Matrix;
use crate::nn::Net;
use crate::nn::Params;
use crate::scalar::Float;

pub use crate::records::verdict::{
    GradState, LayerVerdict, Learning, StreamVerdict, TensorWake, Verdict, VerdictKind,
    STALL_MARGIN, VERDICT_VERSION,
};

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

    /// Looks at the backprop gradients of `step` (before any added noise): `grads` is the
    /// workspace's, one per tensor of `net`.
    pub fn observe<T: Float>(&mut self, step: usize, net: &Net<T>, grads: &[Matrix<T>]) {
        for (i, w) in self.wake.iter_mut().enumerate() {
            let (dw, _) = net.layer_grads(grads, i);
            if w.is_none() && dw.as_slice().iter().any(|&x| x != T::ZERO) {
                *w = Some(step);
            }
        }
    }
}

/// The last steps over which a layer's updates are compared with its weights' rounding unit. Ten
/// steps: long enough that one small minibatch gradient does not make a layer look vanished, short
/// enough to describe the end of the run (and cheap: these steps keep their gradients).
pub const VANISH_WINDOW: usize = 10;

/// The weight scale used in place of |W_ij| when the weight is smaller (W = 0 in particular, where
/// any nonzero update changes the weight): 1/sqrt(fan_in), the bound of PyTorch's default init for
/// the layer, the smallest scale at which a weight matters for unit-scale inputs. An update below
/// u / sqrt(fan_in) could not change a weight of that scale.
pub fn weight_floor(fan_in: usize) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// Whether an update of `update` to a weight `w` is below the rounding unit `unit`
/// ([`crate::scalar::Float::UNIT_ROUNDOFF`]: 2^-24 in f32, 2^-53 in f64) of max(|w|, `floor`):
/// |update| < unit * max(|w|, floor). For w a power of two (and floor <= |w|) this is exactly
/// "w + update rounds back to w"; elsewhere it is that within a factor 2.
pub fn negligible_update(update: f64, w: f64, floor: f64, unit: f64) -> bool {
    update.abs() < unit * w.abs().max(floor)
}

/// Measures the updates of the last [`VANISH_WINDOW`] steps: the weights before the step are
/// copied (buffers allocated once, up front) and compared with the weights after it. The update
/// is what the optimizer applied (lr * g for plain SGD; Adam's normalised step; weight decay and
/// gradient noise included), divided by the schedule's factor lr_t / lr so that a decaying
/// schedule does not make gradients look vanished; steps with lr_t = 0 are not counted.
#[derive(Clone, Debug)]
pub struct UpdateTracker<T> {
    before: Vec<Matrix<T>>,
    floors: Vec<f64>,
    /// Steps measured so far.
    pub measured: usize,
    /// Per layer: every measured update was negligible.
    negligible: Vec<bool>,
    /// Per layer: ||dW|| at the last measured step.
    pub grad_norm_end: Vec<f64>,
    /// The same measurement for every parameter tensor (networks of modules), when asked.
    tensors: Option<TensorWindow<T>>,
}

/// [`UpdateTracker`]'s measurement per parameter tensor, in `state_dict` order. The floor of a
/// linear layer's tensors is its layer's ([`weight_floor`]); every other tensor (a norm's gain
/// or bias, a gate, a shift) is a unit-scale parameter: floor 1.
#[derive(Clone, Debug)]
struct TensorWindow<T> {
    before: Vec<Vec<T>>,
    floors: Vec<f64>,
    negligible: Vec<bool>,
}

impl<T: Float> UpdateTracker<T> {
    /// Buffers for the linear layers of `net`, and with `per_tensor` for every tensor.
    pub fn new(net: &Net<T>, per_tensor: bool) -> Self {
        let tensors = per_tensor.then(|| TensorWindow {
            before: net.values().map(|(_, v)| v.to_vec()).collect(),
            floors: net
                .param_infos()
                .iter()
                .map(|p| match p.layer {
                    Some(l) => weight_floor(net.layer(l - 1).fan_in()),
                    None => 1.0,
                })
                .collect(),
            negligible: vec![true; net.param_infos().len()],
        });
        UpdateTracker {
            tensors,
            before: net.layers().map(|l| l.weight.clone()).collect(),
            floors: net.layers().map(|l| weight_floor(l.fan_in())).collect(),
            measured: 0,
            negligible: vec![true; net.num_layers()],
            grad_norm_end: vec![f64::NAN; net.num_layers()],
        }
    }

    /// Before the update: copies the weights and notes the gradient norms (`grads`: the
    /// workspace's, one per tensor of `net`).
    pub fn before_update(&mut self, net: &Net<T>, grads: &[Matrix<T>]) {
        for (i, (b, n)) in self
            .before
            .iter_mut()
            .zip(self.grad_norm_end.iter_mut())
            .enumerate()
        {
            b.as_mut_slice()
                .copy_from_slice(net.layer(i).weight.as_slice());
            *n = net.layer_grads(grads, i).0.norm();
        }
        if let Some(t) = self.tensors.as_mut() {
            for (b, (_, v)) in t.before.iter_mut().zip(net.values()) {
                b.copy_from_slice(v);
            }
        }
    }

    /// After the update at schedule factor `factor` = lr_t / lr.
    pub fn after_update(&mut self, net: &Net<T>, factor: f64) {
        if !(factor > 0.0 && factor.is_finite()) {
            return;
        }
        self.measured += 1;
        for (((b, l), &floor), neg) in self
            .before
            .iter()
            .zip(net.layers())
            .zip(&self.floors)
            .zip(self.negligible.iter_mut())
        {
            if *neg {
                *neg = all_negligible(b.as_slice(), l.weight.as_slice(), floor, factor);
            }
        }
        if let Some(t) = self.tensors.as_mut() {
            for (k, (_, v)) in net.values().enumerate() {
                if t.negligible[k] {
                    t.negligible[k] = all_negligible(&t.before[k], v, t.floors[k], factor);
                }
            }
        }
    }

    /// The state of each tensor (zero | vanishing | alive, the layers' rule) given the first
    /// step each had a nonzero gradient; empty unless asked for at construction.
    pub fn tensor_states(&self, nonzero: &[Option<usize>]) -> Vec<GradState> {
        let Some(t) = &self.tensors else {
            return Vec::new();
        };
        self.states_of(nonzero, &t.negligible)
    }

    /// The state of each layer, given the wake steps.
    pub fn states(&self, wake: &[Option<usize>]) -> Vec<GradState> {
        self.states_of(wake, &self.negligible)
    }

    /// The rule of the module docs: zero without a wake step, vanishing when every measured
    /// update was negligible, alive otherwise.
    fn states_of(&self, wake: &[Option<usize>], negligible: &[bool]) -> Vec<GradState> {
        wake.iter()
            .zip(negligible)
            .map(|(w, &neg)| match w {
                None => GradState::Zero,
                Some(_) if self.measured > 0 && neg => GradState::Vanishing,
                Some(_) => GradState::Alive,
            })
            .collect()
    }
}

/// Whether every entry moved from `before` to `after` by a negligible update
/// ([`negligible_update`]) at schedule factor `factor`, against `floor`.
fn all_negligible<T: Float>(before: &[T], after: &[T], floor: f64, factor: f64) -> bool {
    before.iter().zip(after).all(|(&w0, &w1)| {
        let (w0, w1) = (w0.to_f64(), w1.to_f64());
        negligible_update((w1 - w0) / factor, w0, floor, T::UNIT_ROUNDOFF)
    })
}

/// The effective widths of one network (at the start or the end of a run), computed from its
/// unit graph and then kept without it (the graph holds a copy of every weight).
#[derive(Clone, Debug, PartialEq)]
pub struct GraphWidths {
    /// Per linear layer (l at index l - 1): `None` for one whose units are the network's outputs.
    pub linear_exact: Vec<Option<usize>>,
    pub linear_tol: Vec<Option<usize>>,
    pub streams_exact: Vec<StreamWidth>,
    pub streams_tol: Vec<StreamWidth>,
}

impl GraphWidths {
    /// The exact and tolerance (`tol`) widths of `graph`.
    pub fn of(graph: &UnitGraph, tol: f64) -> Self {
        let (exact, within) = (graph.exact_partition(), graph.equitable_partition(tol));
        GraphWidths {
            linear_exact: graph.linear_widths(&exact),
            linear_tol: graph.linear_widths(&within),
            streams_exact: graph.stream_widths(&exact),
            streams_tol: graph.stream_widths(&within),
        }
    }
}

/// Everything the verdict is computed from.
pub struct VerdictInputs<'a> {
    /// The starting parameters as the run held them (rounded to its precision).
    pub initial: &'a Params,
    pub last: &'a Params,
    /// The effective widths of the network at the start and at the end.
    pub initial_widths: &'a GraphWidths,
    pub last_widths: &'a GraphWidths,
    /// Each linear layer's activation (the output layer's is the identity).
    pub activations: Vec<Activation>,
    pub wake: &'a [Option<usize>],
    /// Per layer, zero | vanishing | alive.
    pub grad_states: &'a [GradState],
    /// Per layer, ||dW|| at the last step (NaN when not measured).
    pub grad_norms_end: &'a [f64],
    /// (||dW_l||, ||db_l||) at step 0, per layer.
    pub grad_norms_step0: &'a [(f64, f64)],
    pub steps: usize,
    pub diverged: bool,
    pub loss_start: f64,
    pub loss_end: f64,
    pub loss_constant_baseline: f64,
    /// Relative tolerance of the equitable partition.
    pub tol: f64,
    pub symmetry_breakers: Vec<String>,
    /// Per tensor, the wake-up step predicted and measured (`--net` networks).
    pub tensors: Vec<TensorWake>,
}

fn list(xs: &[usize]) -> String {
    xs.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn layers_word(xs: &[usize]) -> String {
    format!("layer{} {}", if xs.len() == 1 { "" } else { "s" }, list(xs))
}

/// What the gradients did, in words, when some layer's gradient is not alive: "gradients never
/// reach layer 1; they vanish in layer 2 (|dW_2| 1.5e-21 at the last step)".
fn gradient_phrase(layers: &[LayerVerdict]) -> Option<String> {
    let of = |s: GradState| -> Vec<&LayerVerdict> {
        layers.iter().filter(|l| l.grad_state == Some(s)).collect()
    };
    let (zero, vanishing) = (of(GradState::Zero), of(GradState::Vanishing));
    if zero.is_empty() && vanishing.is_empty() {
        return None;
    }
    let nums = |ls: &[&LayerVerdict]| ls.iter().map(|l| l.layer).collect::<Vec<_>>();
    let mut parts = Vec::new();
    if !zero.is_empty() {
        parts.push(format!(
            "gradients never reach {} (exactly zero at every step)",
            layers_word(&nums(&zero))
        ));
    }
    if !vanishing.is_empty() {
        let norms = vanishing
            .iter()
            .map(|l| match l.grad_w_norm_end {
                Some(n) => format!("|dW_{}| {n:.1e}", l.layer),
                None => format!("|dW_{}| ?", l.layer),
            })
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "{} {} (updates below the rounding unit of the weights; {norms} at the last step)",
            if zero.is_empty() {
                "gradients reach every layer but vanish in"
            } else {
                "they vanish in"
            },
            layers_word(&nums(&vanishing))
        ));
    }
    Some(parts.join("; "))
}

/// Applies the rule (module docs) and writes the conclusion.
pub fn verdict(v: VerdictInputs<'_>) -> Verdict {
    let layers_n = v.initial.len();
    let (w0, w1) = (v.initial_widths, v.last_widths);
    // Per linear layer: Some(width) for a layer whose units are partitioned, None for one
    // whose units are the network's outputs (fixed singletons: its widths are its fan_out).
    let (le0, le1, lt0, lt1) = (
        &w0.linear_exact,
        &w1.linear_exact,
        &w0.linear_tol,
        &w1.linear_tol,
    );
    let layers: Vec<LayerVerdict> = (0..layers_n)
        .map(|i| {
            let (fan_out, fan_in) = v.initial[i].weight.shape();
            let w = |ws: &[Option<usize>]| Some(ws.get(i).copied().flatten().unwrap_or(fan_out));
            let (gw, gb) = v
                .grad_norms_step0
                .get(i)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN));
            LayerVerdict {
                layer: i + 1,
                fan_in,
                fan_out,
                activation: v.activations[i].spec(),
                grad_w_norm_step0: gw,
                grad_b_norm_step0: gb,
                wake_step: v.wake.get(i).copied().flatten(),
                weights_unchanged: v.initial[i].weight.as_slice() == v.last[i].weight.as_slice(),
                width_init: w(le0),
                width_end: w(le1),
                width_init_tol: w(lt0),
                width_end_tol: w(lt1),
                grad_state: v.grad_states.get(i).copied(),
                grad_w_norm_end: v.grad_norms_end.get(i).copied().filter(|n| n.is_finite()),
            }
        })
        .collect();
    let streams: Vec<StreamVerdict> = {
        let (se0, se1, st0, st1) = (
            &w0.streams_exact,
            &w1.streams_exact,
            &w0.streams_tol,
            &w1.streams_tol,
        );
        (0..st0.len())
            .map(|k| StreamVerdict {
                first_block: st0[k].first.clone(),
                last_block: st0[k].last.clone(),
                blocks: st0[k].blocks,
                units: st0[k].units,
                width_init: se0[k].width,
                width_end: se1[k].width,
                width_init_tol: st0[k].width,
                width_end_tol: st1[k].width,
            })
            .collect()
    };
    // The hidden layers are the linears with partitioned units (every linear but the output
    // layer of a network that ends with one).
    let hidden_layers: Vec<&LayerVerdict> = layers
        .iter()
        .zip(lt0)
        .filter(|(_, w)| w.is_some())
        .map(|(l, _)| l)
        .collect();
    // Everything whose units are partitioned and reported: hidden layers and streams, as
    // (label, units, width at the start, width at the end) within tolerance.
    let assessed: Vec<(String, usize, Option<usize>, Option<usize>)> = hidden_layers
        .iter()
        .map(|l| {
            (
                format!("layer {}", l.layer),
                l.fan_out,
                l.width_init_tol,
                l.width_end_tol,
            )
        })
        .chain(
            streams
                .iter()
                .filter(|s| s.width_end_tol.is_some())
                .map(|s| (s.name(), s.units, s.width_init_tol, s.width_end_tol)),
        )
        .collect();
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
    } else if !assessed.is_empty() && assessed.iter().all(|a| a.3 == Some(1)) {
        VerdictKind::Symmetric
    } else if assessed.iter().any(|a| a.3.is_some_and(|w| w < a.1)) {
        VerdictKind::Partial
    } else {
        VerdictKind::Full
    };
    let learning = Learning::judge(v.diverged, v.loss_end, v.loss_constant_baseline);
    let symmetry_broken = assessed.iter().any(|a| a.3 > a.2);
    let width_text = |w: Option<usize>| w.map_or("?".to_string(), |w| w.to_string());

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
    let widths = if streams.is_empty() {
        hidden_layers
            .iter()
            .map(|l| format!("{}/{}", width_text(l.width_end_tol), l.fan_out))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        assessed
            .iter()
            .map(|(name, units, _, w)| format!("{name} {}/{units}", width_text(*w)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let every = if streams.is_empty() {
        "every hidden layer"
    } else {
        "every hidden layer and residual stream"
    };
    let grads = gradient_phrase(&layers);
    let mut grads_said = false;
    let body = match kind {
        VerdictKind::Dead => {
            let bias_moved = v.initial.iter().zip(v.last).any(|(a, b)| a.bias != b.bias);
            grads_said = true;
            format!(
                "no weight moved in {} steps: every weight gradient was exactly zero at every step{}",
                v.steps,
                if bias_moved {
                    ", and only biases learned"
                } else {
                    ", and no bias moved either"
                }
            )
        }
        VerdictKind::Deadlock => {
            grads_said = true;
            format!(
                "hidden {} never received a nonzero weight gradient, while later layers did ({}): the layers below stay frozen at their initial values",
                layers_word(&never),
                woke.join(", ")
            )
        }
        VerdictKind::Symmetric => {
            let g = match &grads {
                None => format!(
                    "gradients are alive in every layer ({}), so the problem is symmetry, not dead gradients",
                    woke.join(", ")
                ),
                Some(g) => g.clone(),
            };
            grads_said = true;
            format!(
                "{every} ends with a single distinct unit, so the network computes no more than a one-unit-per-layer network; {g}"
            )
        }
        VerdictKind::Partial if streams.is_empty() => format!(
            "hidden layers end with {widths} distinct units (tolerance classes / units): part of the width is wasted on copies"
        ),
        VerdictKind::Partial => format!(
            "hidden layers and residual streams end with distinct units {widths} (tolerance classes / units): part of the width is wasted on copies"
        ),
        VerdictKind::Full => {
            if assessed.is_empty() {
                "no hidden layer, so no symmetry to break".to_string()
            } else {
                format!("{every} ends with all its units distinct ({widths})")
            }
        }
        // Written by earlier versions for networks of modules; never computed now.
        VerdictKind::Unassessed => "the effective widths were not assessed".to_string(),
    };
    let grads_clause = match (&grads, grads_said) {
        (Some(g), false) => format!("; {g}"),
        _ => String::new(),
    };
    let learned = match learning {
        Learning::Stalled => format!(
            "it does no better than the constant predictor (its final training loss is not {}% below the constant predictor's)",
            STALL_MARGIN * 100.0
        ),
        Learning::Learned => "the loss fell below the constant predictor's".to_string(),
        Learning::Diverged => "the loss diverged (NaN or infinite)".to_string(),
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
    let distinct_but = if learning == Learning::Stalled
        && matches!(kind, VerdictKind::Full | VerdictKind::Partial)
        && !assessed.is_empty()
    {
        ", but nothing was learned"
    } else {
        ""
    };
    Verdict {
        layers,
        loss_constant_baseline: v.loss_constant_baseline,
        symmetry_breakers: v.symmetry_breakers,
        symmetry_broken,
        streams,
        tensors: v.tensors,
        verdict: kind,
        learning: Some(learning),
        verdict_version: VERDICT_VERSION,
        summary: format!(
            "{} and {}: {body}{distinct_but}{grads_clause}; {learned}. {losses}{breakers}",
            kind.name(),
            learning.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 ± 2^-10: just inside and just outside a threshold, far above the rounding of either type.
    const IN: f64 = 1.0 - 1.0 / 1024.0;
    const OUT: f64 = 1.0 + 1.0 / 1024.0;

    fn rounding_unit_edges<T: Float>() {
        let u = T::UNIT_ROUNDOFF;
        let one = T::ONE;
        // w = 1 (a power of two): below u the sum rounds back to w, above it it does not.
        assert!(negligible_update(IN * u, 1.0, 0.5, u));
        assert_eq!(one + T::from_f64(IN * u), one, "{}", T::NAME);
        assert!(!negligible_update(OUT * u, 1.0, 0.5, u));
        assert_ne!(one + T::from_f64(OUT * u), one, "{}", T::NAME);
        // Exactly u is not negligible (the threshold is strict), and signs do not matter.
        assert!(!negligible_update(u, 1.0, 0.5, u));
        assert!(negligible_update(-IN * u, -1.0, 0.5, u));
        // w = 0: the floor takes its place.
        let floor = weight_floor(4);
        assert_eq!(floor, 0.5);
        assert!(negligible_update(IN * u * floor, 0.0, floor, u));
        assert!(!negligible_update(OUT * u * floor, 0.0, floor, u));
        // A weight above the floor uses its own scale.
        assert!(negligible_update(IN * u * 8.0, 8.0, floor, u));
        assert!(!negligible_update(OUT * u * 8.0, 8.0, floor, u));
    }

    #[test]
    fn updates_are_negligible_exactly_below_the_rounding_unit_in_f32_and_f64() {
        assert_eq!(f32::UNIT_ROUNDOFF, 2f64.powi(-24));
        assert_eq!(f64::UNIT_ROUNDOFF, 2f64.powi(-53));
        rounding_unit_edges::<f32>();
        rounding_unit_edges::<f64>();
    }

    /// One layer 4 -> 2 whose weights are 0 except W[0][0] = 1; floor 1/sqrt(4) = 0.5.
    fn layer<T: Float>() -> Net<T> {
        let mut w = vec![0.0; 8];
        w[0] = 1.0;
        Net::from_params(
            &[crate::nn::LayerParams {
                weight: Matrix::from_vec(2, 4, w),
                bias: Some(vec![0.0; 2]),
            }],
            Activation::Identity,
        )
    }

    /// The state after steps that add `delta` to W[1][1] (a zero weight) at schedule `factor`.
    fn state_after<T: Float>(deltas: &[f64], factor: f64, wake: Option<usize>) -> GradState {
        let mut net = layer::<T>();
        let grads = crate::nn::Workspace::new(&net, 1).grads;
        let mut t = UpdateTracker::new(&net, false);
        for &d in deltas {
            t.before_update(&net, &grads);
            let w = net.layer(0).weight.get(1, 1);
            net.layer_mut(0).weight.set(1, 1, w + T::from_f64(d));
            t.after_update(&net, factor);
        }
        t.states(&[wake])[0]
    }

    fn tracker_edges<T: Float>() {
        let edge = T::UNIT_ROUNDOFF * 0.5;
        let name = T::NAME;
        assert_eq!(
            state_after::<T>(&[IN * edge; 3], 1.0, Some(0)),
            GradState::Vanishing,
            "{name}"
        );
        assert_eq!(
            state_after::<T>(&[OUT * edge; 3], 1.0, Some(0)),
            GradState::Alive,
            "{name}"
        );
        // One step above the edge in the window is enough to be alive.
        assert_eq!(
            state_after::<T>(&[IN * edge, OUT * edge, IN * edge], 1.0, Some(0)),
            GradState::Alive,
            "{name}"
        );
        // The schedule's factor is divided out: half the lr, half the update, same state.
        assert_eq!(
            state_after::<T>(&[0.5 * OUT * edge], 0.5, Some(0)),
            GradState::Alive,
            "{name}"
        );
        assert_eq!(
            state_after::<T>(&[0.5 * IN * edge], 0.5, Some(0)),
            GradState::Vanishing,
            "{name}"
        );
        // Steps at lr 0 are not evidence; no evidence is not vanishing.
        assert_eq!(
            state_after::<T>(&[0.0], 0.0, Some(0)),
            GradState::Alive,
            "{name}"
        );
        // A layer whose gradient never had a nonzero entry is zero, whatever the window says.
        assert_eq!(
            state_after::<T>(&[IN * edge], 1.0, None),
            GradState::Zero,
            "{name}"
        );
    }

    #[test]
    fn gradient_states_at_their_edges_in_f32_and_f64() {
        tracker_edges::<f32>();
        tracker_edges::<f64>();
    }

    #[test]
    fn learning_is_stalled_within_the_margin_of_the_constant_predictor() {
        let c = std::f64::consts::LN_2; // balanced binary classes
        let edge = (1.0 - STALL_MARGIN) * c;
        assert_eq!(Learning::judge(false, edge, c), Learning::Stalled);
        assert_eq!(Learning::judge(false, edge * IN, c), Learning::Learned);
        assert_eq!(Learning::judge(false, c, c), Learning::Stalled);
        assert_eq!(Learning::judge(false, 2.0 * c, c), Learning::Stalled);
        assert_eq!(Learning::judge(false, 0.1, c), Learning::Learned);
        assert_eq!(Learning::judge(false, f64::NAN, c), Learning::Diverged);
        assert_eq!(Learning::judge(false, f64::INFINITY, c), Learning::Diverged);
        assert_eq!(Learning::judge(true, 0.1, c), Learning::Diverged);
        // A perfect constant predictor: nothing beyond it to learn.
        assert_eq!(Learning::judge(false, 0.0, 0.0), Learning::Stalled);
        assert_eq!(Learning::judge(false, 0.1, f64::NAN), Learning::Learned);
    }
}
