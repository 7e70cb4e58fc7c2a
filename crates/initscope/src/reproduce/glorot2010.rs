//! Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward networks",
//! sec. 4.2.1 and figs. 6-7.
//!
//! Measured: one forward/backward pass (cross-entropy) at initialization of a tanh net with five
//! hidden layers of 1000 units, under the paper's standard init U[-1/sqrt(n), 1/sqrt(n)] (written
//! `kaiming_uniform:gain=1/sqrt(3)`) and its normalized init (`xavier_uniform`). Per hidden layer:
//! the activation variance Var(a_l), the back-propagated gradient variance Var(dL/da_l), the
//! weight-gradient variance Var(dW_l), and the mean singular value of the layer Jacobian
//! J_l = diag(f'(z_l)) W_l.
//!
//! Criterion: standard init: the activation variance shrinks with depth (last/first < 0.1), the
//! back-propagated gradient variance shrinks toward the input (first/last < 0.1), the
//! weight-gradient variance is roughly depth-independent (max/min < 4); normalized init: both
//! variances within a factor 2 across layers; mean Jacobian singular value 0.8 +- 0.1
//! (normalized) and 0.5 +- 0.1 (standard).
//!
//! Deviations: mnist1d inputs (40 features, 256 rows) instead of Shapeset-3x2; loss at init
//! only; Jacobians of hidden-to-hidden layers averaged over 2 inputs.

use serde_json::{json, Value};

use super::{inits, mnist1d_batch, new, row, Reproduction};
use crate::activation::Activation;
use crate::diagnostics::spectrum::singular_values;
use crate::error::Result;
use crate::loss::{Loss, Targets};
use crate::matrix::{variance, Matrix};
use crate::nn::{init_params, Net, Params, Pass, Workspace};

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "glorot2010",
        "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward networks, \
         sec. 4.2.1 and figs. 6-7",
        "standard init: activation variance shrinks with depth (last/first < 0.1), back-propagated \
         gradient variance shrinks toward the input (first/last < 0.1), weight-gradient variance \
         roughly depth-independent (max/min < 4); normalized init: both variances within a factor 2 \
         across layers; mean Jacobian singular value 0.8 +- 0.1 (normalized) and 0.5 +- 0.1 (standard)",
        "mnist1d inputs (40 features, 256 rows) instead of Shapeset-3x2; loss at init only; \
         Jacobians of hidden-to-hidden layers averaged over 2 inputs",
    );
    let (x, y) = mnist1d_batch(256)?;
    let dims = [40, 1000, 1000, 1000, 1000, 1000, 10];
    let mut measured = serde_json::Map::new();
    for (label, spec) in [
        ("standard", "kaiming_uniform:gain=0.5773502691896258"),
        ("normalized", "xavier_uniform"),
    ] {
        let p = init_params(
            &dims,
            &inits(spec, dims.len() - 1)?,
            true,
            0,
            Activation::Tanh,
        );
        let s = layer_stats(&p, Activation::Tanh, &x, &y, 2);
        let ratio = |v: &[f64], a: usize, b: usize| v[a] / v[b];
        let h = s.act_var.len();
        let act_ratio = ratio(&s.act_var, h - 1, 0);
        let back_ratio = ratio(&s.backprop_var, 0, h - 1);
        let spread = |v: &[f64]| {
            v.iter().cloned().fold(0.0, f64::max) / v.iter().cloned().fold(f64::MAX, f64::min)
        };
        let wg_spread = spread(&s.weight_grad_var[1..h]);
        let sv = s.jacobian_mean_sv.iter().sum::<f64>() / s.jacobian_mean_sv.len() as f64;
        if label == "standard" {
            r.rows.push(row(
                "standard: Var(a_5)/Var(a_1)",
                format!("{act_ratio:.3}"),
                "decreasing (1/3 per layer: 0.012)",
                act_ratio < 0.1,
            ));
            r.rows.push(row(
                "standard: Var(dL/da_1)/Var(dL/da_5)",
                format!("{back_ratio:.3}"),
                "decreasing toward the input",
                back_ratio < 0.1,
            ));
            r.rows.push(row(
                "standard: Var(dW) max/min, layers 2-5",
                format!("{wg_spread:.2}"),
                "about constant (sec. 4.2.1)",
                wg_spread < 4.0,
            ));
            r.rows.push(row(
                "standard: mean singular value of J",
                format!("{sv:.3}"),
                "0.5",
                (sv - 0.5).abs() <= 0.1,
            ));
        } else {
            let (sa, sb) = (spread(&s.act_var), spread(&s.backprop_var));
            r.rows.push(row(
                "normalized: Var(a_l) max/min",
                format!("{sa:.2}"),
                "about constant",
                sa < 2.0,
            ));
            r.rows.push(row(
                "normalized: Var(dL/da_l) max/min",
                format!("{sb:.2}"),
                "about constant",
                sb < 2.0,
            ));
            r.rows.push(row(
                "normalized: mean singular value of J",
                format!("{sv:.3}"),
                "0.8",
                (sv - 0.8).abs() <= 0.1,
            ));
        }
        measured.insert(
            label.into(),
            json!({
                "activation_variance": s.act_var, "backprop_gradient_variance": s.backprop_var,
                "weight_gradient_variance": s.weight_grad_var,
                "jacobian_mean_singular_value": s.jacobian_mean_sv,
            }),
        );
        r.rows.push(row(
            format!("{label}: Var(a_l), l = 1..5"),
            fmt_list(&s.act_var),
            "(table)",
            true,
        ));
    }
    r.measured = Value::Object(measured);
    Ok(r)
}

/// Per-layer statistics of one forward/backward pass at the initialization.
struct LayerStats {
    act_var: Vec<f64>,      // Var(a_l), hidden layers
    backprop_var: Vec<f64>, // Var(dLoss/da_l), hidden layers
    weight_grad_var: Vec<f64>,
    /// Mean singular value of J_l = diag(f'(z_l)) W_l, layers 2..L-1, over `samples` inputs.
    jacobian_mean_sv: Vec<f64>,
}

fn layer_stats(
    params: &Params,
    act: Activation,
    x: &Matrix<f64>,
    y: &[u32],
    samples: usize,
) -> LayerStats {
    let net = Net::<f64>::from_params(params, act);
    let mut ws = Workspace::new(&net, x.rows());
    let idx: Vec<usize> = (0..x.rows()).collect();
    ws.load_rows(x, &idx);
    net.forward(&mut ws, Pass::Eval);
    let hidden = params.len() - 1;
    let act_var = (0..hidden)
        .map(|l| variance(&ws.caches[l].act.to_f64().into_vec()))
        .collect();
    // Back-propagated gradients dLoss/da_l: delta_{l+1} W_{l+1}, before the f' of layer l.
    let last = params.len() - 1;
    Loss::CrossEntropy.forward_backward(
        &ws.caches[last].act,
        Targets::Classes(y),
        Some(&mut ws.deltas[last]),
    );
    let mut backprop_var = vec![0.0; hidden];
    for l in (0..params.len()).rev() {
        if l < hidden {
            // ws.deltas[l] holds dLoss/da_l here, before backward multiplies by f'.
            backprop_var[l] = variance(ws.deltas[l].as_slice());
        }
        let (lower, upper) = ws.deltas.split_at_mut(l);
        let (before, rest) = ws.caches.split_at_mut(l);
        let input = if l == 0 {
            &ws.input
        } else {
            before[l - 1].output()
        };
        let d_input = if l == 0 {
            None
        } else {
            Some(&mut lower[l - 1])
        };
        // A plain MLP: linear layer l + 1 is module l.
        net.modules()[l].backward(
            input,
            &mut rest[0],
            &mut upper[0],
            &mut ws.grads[net.tensor_range(l)],
            d_input,
        );
    }
    let weight_grad_var = (0..net.num_layers())
        .map(|i| variance(net.layer_grads(&ws.grads, i).0.as_slice()))
        .collect();
    let jacobian_mean_sv = (1..hidden)
        .map(|l| {
            let w = &params[l].weight;
            let mut total = 0.0;
            for s in 0..samples {
                let mut j = w.clone();
                for i in 0..j.rows() {
                    let d = act.df(ws.caches[l].pre.get(s, i), ws.caches[l].act.get(s, i));
                    for v in j.row_mut(i) {
                        *v *= d;
                    }
                }
                let sv = singular_values(&j);
                total += sv.iter().sum::<f64>() / sv.len() as f64;
            }
            total / samples as f64
        })
        .collect();
    LayerStats {
        act_var,
        backprop_var,
        weight_grad_var,
        jacobian_mean_sv,
    }
}

fn fmt_list(xs: &[f64]) -> String {
    let parts: Vec<String> = xs.iter().map(|x| format!("{x:.3e}")).collect();
    format!("[{}]", parts.join(", "))
}
