//! Central finite differences in f64 against backprop, for every parameter of a network.
//!
//! For each parameter θ: numeric = (L(θ + ε) - L(θ - ε)) / 2ε, compared with the backprop
//! gradient g by the relative error |g - numeric| / max(|g|, |numeric|, floor). The floor is
//! `floor_rel` (1e-3) times the largest |g| in the whole network: entries far smaller than the
//! network's gradient scale are dominated by the rounding noise of the loss difference (about
//! 1e-14/ε here) and would give meaningless ratios, while a wrong entry of any size that matters
//! still shows as an error of order 1. Scaling the floor with the network's own gradients keeps
//! the check meaningful for networks whose gradients are all tiny (vanishing gradients).
//! The default ε = 1e-5 balances the two errors of a central difference: truncation O(ε² f''')
//! and rounding, which is not 1e-16/ε but larger (a loss sums many rounded terms; about 1e-14/ε
//! measured here), so ε = 1e-6 already gives relative errors of 1e-5 on small gradients. Measured
//! on 2-16-16-16-2 networks on moons, a correct backward pass stays below 4e-6 for every
//! activation; the default tolerance is 1e-5, and a wrong gradient gives errors of order 1.

use serde::{Deserialize, Serialize};

use crate::batch::{BatchTargets, Prepared};
use crate::data::Split;
use crate::loss::Loss;
use crate::nn::{Net, ParamKind, Pass, Workspace};
use crate::rng::{self, Stream};

/// Knobs of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckOptions {
    pub eps: f64,
    pub tol: f64,
    /// The denominator floor as a fraction of the largest |gradient| in the network.
    pub floor_rel: f64,
    /// Use at most this many rows of the data (the first ones).
    pub max_rows: usize,
    /// Check at most this many entries per tensor (an evenly strided subset), 0 for all.
    pub max_per_tensor: usize,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-5,
            tol: 1e-5,
            floor_rel: 1e-3,
            max_rows: 64,
            max_per_tensor: 0,
        }
    }
}

/// The result for one layer (1-based).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerCheck {
    pub layer: usize,
    pub checked: usize,
    pub max_rel_err_weight: f64,
    pub max_rel_err_bias: Option<f64>,
    /// Largest |backprop gradient| in the layer, for scale.
    pub max_abs_grad: f64,
    pub pass: bool,
}

/// The whole check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradcheckReport {
    pub eps: f64,
    pub tol: f64,
    /// The denominator floor used (floor_rel times the largest |gradient|).
    pub floor: f64,
    pub rows: usize,
    pub loss: f64,
    pub layers: Vec<LayerCheck>,
    /// Tensors outside linear layers (norm gains and biases, gates, shifts), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<TensorCheck>,
    pub pass: bool,
}

/// The result for one tensor outside the linear layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorCheck {
    /// Its `state_dict` key.
    pub name: String,
    pub checked: usize,
    pub max_rel_err: f64,
    pub max_abs_grad: f64,
    pub pass: bool,
}

/// Checks backprop of `net` with `loss` on `data`, in training mode (batch statistics; dropout
/// masks drawn from the same stream for every evaluation, so the loss is a fixed function of the
/// parameters).
pub fn gradcheck(
    net: &Net<f64>,
    loss: Loss,
    data: &Split,
    opts: &GradcheckOptions,
) -> GradcheckReport {
    let outputs = *net.dims().last().expect("at least one module");
    let full = Prepared::<f64>::new(data, loss, outputs);
    let rows = full.len().min(opts.max_rows.max(1));
    let idx: Vec<usize> = (0..rows).collect();
    let mut net = net.clone();
    let mut ws = Workspace::<f64>::new(&net, rows);
    let masks = || rng::stream(0, Stream::Dropout);
    let mut bt = BatchTargets::<f64>::new(rows, outputs);
    ws.load_rows(&full.x, &idx);
    bt.load(&full, &idx);
    let value = net.loss_and_grads(&mut ws, loss, bt.targets(loss), Pass::Train(&mut masks()));
    let grads = ws.grads.clone();
    let max_grad = grads
        .iter()
        .flat_map(|g| g.as_slice())
        .fold(0.0f64, |m, g| m.max(g.abs()));
    let floor = (opts.floor_rel * max_grad).max(f64::MIN_POSITIVE);

    let eval = |net: &Net<f64>, ws: &mut Workspace<f64>| {
        let logits = net.forward(ws, Pass::Train(&mut masks()));
        loss.forward_backward(logits, bt.targets(loss), None)
    };
    // Every parameter tensor (Net::param_infos, state_dict order): the worst relative error, the
    // entries checked and the largest |gradient|.
    let ids = net.param_infos().to_vec();
    let mut per_tensor = Vec::with_capacity(ids.len());
    for (k, id) in ids.into_iter().enumerate() {
        let n = id.len();
        let stride = if opts.max_per_tensor == 0 || n <= opts.max_per_tensor {
            1
        } else {
            n.div_ceil(opts.max_per_tensor)
        };
        let (mut worst, mut count, mut max_g) = (0.0f64, 0, 0.0f64);
        for i in (0..n).step_by(stride) {
            let orig = net.param_values(k)[i];
            net.param_values_mut(k)[i] = orig + opts.eps;
            let plus = eval(&net, &mut ws);
            net.param_values_mut(k)[i] = orig - opts.eps;
            let minus = eval(&net, &mut ws);
            net.param_values_mut(k)[i] = orig;
            let numeric = (plus - minus) / (2.0 * opts.eps);
            let g = grads[k].as_slice()[i];
            let err = (g - numeric).abs() / g.abs().max(numeric.abs()).max(floor);
            worst = worst.max(if err.is_nan() { f64::INFINITY } else { err });
            max_g = max_g.max(g.abs());
            count += 1;
        }
        per_tensor.push((id, worst, count, max_g));
    }
    // Per layer: its weight's figures and its bias's, when it has one; every other tensor (norm
    // gains, gates, ...) on its own.
    let mut layers: Vec<LayerCheck> = Vec::new();
    let mut others: Vec<TensorCheck> = Vec::new();
    for (id, worst, count, max_g) in per_tensor {
        match id.kind {
            ParamKind::Weight => layers.push(LayerCheck {
                layer: id.layer.expect("a weight belongs to a linear layer"),
                checked: count,
                max_rel_err_weight: worst,
                max_rel_err_bias: None,
                max_abs_grad: max_g,
                pass: worst <= opts.tol,
            }),
            ParamKind::Bias => {
                let l = layers
                    .last_mut()
                    .expect("a layer's weight comes before its bias");
                l.checked += count;
                l.max_rel_err_bias = Some(worst);
                l.max_abs_grad = l.max_abs_grad.max(max_g);
                l.pass = l.max_rel_err_weight.max(worst) <= opts.tol;
            }
            _ => others.push(TensorCheck {
                name: id.name,
                checked: count,
                max_rel_err: worst,
                max_abs_grad: max_g,
                pass: worst <= opts.tol,
            }),
        }
    }
    let pass = layers.iter().all(|l| l.pass) && others.iter().all(|t| t.pass);
    GradcheckReport {
        eps: opts.eps,
        tol: opts.tol,
        floor,
        rows,
        loss: value,
        layers,
        others,
        pass,
    }
}
