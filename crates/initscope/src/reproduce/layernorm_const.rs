//! Constant initialization into a layernorm: what exact arithmetic gives and what rounding does
//! (DESIGN.md, "Beyond plain stacks"; no paper: the facts follow from the layernorm's formulas).
//!
//! The network, on moons, with the first layer's n units copies of each other:
//!
//! ```text
//! linear(n, init=constant:0.5, bias=zeros) layernorm tanh linear(n, init=constant:0.5) tanh linear
//! ```
//! Exact arithmetic. Every unit of z = x W_1^T is the same number, so the layernorm sees
//! x_j - mean = 0, var = 0 and outputs x̂ = 0, y = β for every input: the network's output does
//! not depend on the input and the best it can do is the constant predictor. Its backward map
//!
//! ```text
//! dz = (γ / sqrt(var + eps)) (g - mean_j g - x̂ mean_j (g ⊙ x̂)),   g = dy,  var = 0, x̂ = 0
//! ```
//! sends back 0, because g is equal across the units (the next layer's columns are equal):
//! dW_1 = dz^T x = 0 at every step, the first layer never moves, and its units stay copies.
//!
//! Floating point. The forward mean is taken as x_0 + mean_j (x_j - x_0) and is exact for equal
//! units, so the output stays β; but mean_j g of n equal numbers is a sum in lanes (32 lanes, the
//! entries past the last full group of 32 in one sequential sum) divided by n, which rounds
//! unless every partial sum is exact: n = 64 (two entries per lane, then pairwise doublings) is
//! exact, n = 7, 8 and 100 (sequential sums of 3 or more equal numbers) may leave a residue
//! g - mean g of a few ulps, amplified by 1/sqrt(eps) = 316 (eps = 1e-5). The residue is equal
//! on every unit (the same numbers go through the same operations), so dW_1's rows are equal and
//! the units stay copies: rounding can move the layer, not split it.
//!
//! Measured, at widths n = 7, 8, 64, 100 in f32 and f64 (SGD lr 0.1, batch 64, 300 steps):
//! |dW_1| at step 0 and its ratio to the largest step-0 gradient norm (any linear layer's weight
//! or bias), the first step dW_1 was nonzero, whether the `rounding` symmetry breaker appears
//! (a residue that grew into a clear gradient), the final training loss against the constant
//! predictor's, and the first layer's exact width at the end.
//!
//! Criterion (fixed before measuring): in every case the first layer ends with exact width 1
//! (copies stay copies); its step-0 gradient is at most 100 u / sqrt(eps) of the largest step-0
//! gradient norm (u the unit roundoff, 2^-24 in f32 and 2^-53 in f64: 100 times a one-ulp residue
//! through the 1/sqrt(eps) gain), and the final loss is within 1% of the constant predictor's;
//! where the run is exact (dW_1 never nonzero) the first layer's weights are unchanged and the
//! loss is not below the constant predictor's.
//!
//! Deviations: none (a derivation checked by measurement; moons stands for any data).

use serde_json::json;

use super::{new, row, run_toml, Reproduction};
use crate::error::Result;

/// The layernorm's eps (PyTorch's default, the spec's).
const LN_EPS: f64 = 1e-5;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "layernorm_const",
        "DESIGN.md's layernorm facts: constant init into a layernorm, exact arithmetic against \
         f32 and f64",
        "every case ends with exact width 1 in the first layer (copies stay copies); its step-0 \
         gradient is at most 100 u / sqrt(eps) of the largest step-0 gradient norm (u = 2^-24 in \
         f32, 2^-53 in f64); the final loss is within 1% of the constant predictor's; where the \
         run is exact (dW_1 never nonzero) the first layer never moved and the loss is not below \
         the constant predictor's",
        "none: a derivation checked by measurement (moons, SGD lr 0.1, batch 64, 300 steps)",
    );
    let mut measured = Vec::new();
    for precision in ["f32", "f64"] {
        let u = if precision == "f32" {
            2f64.powi(-24)
        } else {
            2f64.powi(-53)
        };
        let bound = 100.0 * u / LN_EPS.sqrt();
        for width in [7usize, 8, 64, 100] {
            let (out, _) = run_toml(&format!(
                "data = \"moons\"\nnet = \"linear({width}, init=[constant:0.5], bias=zeros) \
                 layernorm tanh linear({width}, init=[constant:0.5]) tanh linear\"\n\
                 precision = \"{precision}\"\noptim = \"sgd\"\nlr = 0.1\nbatch = 64\n\
                 steps = 300\nseed = 0\n"
            ))?;
            let s = &out.summary;
            let v = &s.verdict;
            let first = &v.layers[0];
            let largest = v
                .layers
                .iter()
                .flat_map(|l| [l.grad_w_norm_step0, l.grad_b_norm_step0])
                .fold(0.0, f64::max);
            let residue = first.grad_w_norm_step0;
            let relative = residue / largest;
            let wake = v
                .tensors
                .iter()
                .find(|t| t.name == "0.weight")
                .and_then(|t| t.wake_measured);
            let breaker = v
                .symmetry_breakers
                .iter()
                .find(|b| b.starts_with("rounding"));
            let width_end = first.width_end;
            let baseline = v.loss_constant_baseline;
            let gap = s.train_loss - baseline;
            let exact = wake.is_none();
            let ok = width_end == Some(1)
                && relative <= bound
                && gap.abs() <= 0.01 * baseline
                && (!exact || (first.weights_unchanged && gap >= 0.0));
            let step0 = if residue == 0.0 {
                "0 (exact)".to_string()
            } else {
                format!("{residue:.2e} ({relative:.1e} of the largest)")
            };
            r.rows.push(row(
                format!("{precision}, width {width}"),
                format!(
                    "|dW_1| at step 0 {step0}; first nonzero {}; rounding breaker {}; loss - \
                     constant {gap:+.1e}; exact width {}/{width}",
                    wake.map_or("never".to_string(), |w| format!("step {w}")),
                    if breaker.is_some() { "yes" } else { "no" },
                    width_end.map_or("?".to_string(), |w| w.to_string()),
                ),
                &format!("0 or <= {bound:.1e} of the largest; width 1; loss = constant's"),
                ok,
            ));
            measured.push(json!({
                "precision": precision, "width": width, "grad_w1_step0": residue,
                "grad_w1_step0_relative": relative, "bound": bound,
                "first_nonzero_step": wake, "rounding_breaker": breaker,
                "train_loss": s.train_loss, "constant_predictor_loss": baseline,
                "width_end_exact": width_end, "weights_unchanged": first.weights_unchanged,
            }));
        }
    }
    r.measured = json!(measured);
    Ok(r)
}
