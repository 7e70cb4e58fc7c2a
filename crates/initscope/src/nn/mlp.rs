//! The multilayer perceptron: a stack of [`Dense`] layers, hidden ones with the network's
//! activation, the output layer linear (its loss is fused with any output nonlinearity).
//!
//! ```text
//! a_0 = x;  z_l = a_{l-1} W_l^T + b_l;  a_l = f(z_l)  (l = 1..L-1);  z_L = a_{L-1} W_L^T + b_L
//! delta_L = dLoss/dz_L;  delta_l = (delta_{l+1} W_{l+1}) ⊙ f'(z_l);  dW_l = delta_l^T a_{l-1}
//! ```
//! Layers are numbered from 1 (first hidden) to L (output) in everything user-facing; vectors
//! here are 0-based, so layer l lives at index l - 1.

use super::{is_output, layer_activation, output_index};
use crate::activation::Activation;
use crate::init::{Fans, FillContext, Init, Role};
use crate::loss::{Loss, Targets};
use crate::matrix::Matrix;
use crate::nn::{Dense, DenseCache, DenseGrads, Dropout};
use crate::rng::{self, Rng, Stream};
use crate::scalar::Float;

/// Parameters of one layer in f64, as initialised or loaded (the precision-free starting point).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    pub weight: Matrix<f64>,    // (fan_out, fan_in)
    pub bias: Option<Vec<f64>>, // (fan_out), None for --no-bias
}

/// All parameters of a network in f64 (the precision-free starting point and result), layer 1
/// first. Indexing and slicing reach the layers (`params[0].weight`); [`Params::named`] walks the
/// tensors by their `state_dict` keys and [`Params::get`] looks one up by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(Vec<LayerParams>);

impl Params {
    /// The tensors in `state_dict` order with their identities ([`super::named_params`]).
    pub fn named(&self) -> impl Iterator<Item = (super::ParamId, &[f64])> + '_ {
        super::named_params(&self.0)
    }

    /// The values of the tensor whose `state_dict` key is `name` (`0.weight`, `2.bias`, ...).
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.named()
            .find(|(id, _)| id.name() == name)
            .map(|(_, v)| v)
    }

    /// Number of trainable entries (absent biases are not parameters).
    pub fn num_params(&self) -> usize {
        self.named().map(|(id, _)| id.len()).sum()
    }
}

impl std::ops::Deref for Params {
    type Target = [LayerParams];
    fn deref(&self) -> &[LayerParams] {
        &self.0
    }
}

impl std::ops::DerefMut for Params {
    fn deref_mut(&mut self) -> &mut [LayerParams] {
        &mut self.0
    }
}

impl FromIterator<LayerParams> for Params {
    fn from_iter<I: IntoIterator<Item = LayerParams>>(iter: I) -> Self {
        Params(iter.into_iter().collect())
    }
}

impl From<Vec<LayerParams>> for Params {
    fn from(v: Vec<LayerParams>) -> Self {
        Params(v)
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = &'a LayerParams;
    type IntoIter = std::slice::Iter<'a, LayerParams>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The initializer of each layer's weight and bias, layer 1 first.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInits {
    pub weight: Init,
    pub bias: Init,
}

/// Draws the initial parameters. Layer l's weight comes from stream `Weight(l)` and its bias from
/// `Bias(l)`, so each depends only on (seed, l, weight|bias) and its own initializer. `act` is the
/// hidden activation (for `gain=auto`; the output layer is followed by the identity).
pub fn init_params(
    dims: &[usize],
    inits: &[LayerInits],
    bias: bool,
    seed: u64,
    act: Activation,
) -> Params {
    assert_eq!(
        inits.len() + 1,
        dims.len(),
        "one initializer pair per layer"
    );
    let layers = inits.len();
    dims.windows(2)
        .zip(inits)
        .enumerate()
        .map(|(i, (d, init))| {
            let l = i + 1;
            let fans = Fans {
                fan_in: d[0],
                fan_out: d[1],
            };
            let act = layer_activation(i, layers, act);
            let ctx = |role| FillContext { fans, act, role };
            let mut w = vec![0.0; d[0] * d[1]];
            init.weight.fill(
                &mut w,
                &ctx(Role::Weight),
                &mut rng::stream(seed, Stream::Weight(l)),
            );
            let b = bias.then(|| {
                let mut b = vec![0.0; d[1]];
                init.bias.fill(
                    &mut b,
                    &ctx(Role::Bias),
                    &mut rng::stream(seed, Stream::Bias(l)),
                );
                b
            });
            LayerParams {
                weight: Matrix::from_vec(d[1], d[0], w),
                bias: b,
            }
        })
        .collect()
}

/// A feed-forward network in precision `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<T> {
    pub layers: Vec<Dense<T>>,
}

impl<T: Float> Mlp<T> {
    /// Builds the network from f64 parameters (cast once) and the hidden activation.
    pub fn from_params(params: &[LayerParams], act: Activation) -> Self {
        let layers = params
            .iter()
            .enumerate()
            .map(|(i, p)| Dense {
                weight: Matrix::from_f64(&p.weight),
                bias: match &p.bias {
                    Some(b) => b.iter().map(|&x| T::from_f64(x)).collect(),
                    None => vec![T::ZERO; p.weight.rows()],
                },
                has_bias: p.bias.is_some(),
                activation: layer_activation(i, params.len(), act),
            })
            .collect();
        Mlp { layers }
    }

    /// The parameters in f64 (exact for both precisions).
    pub fn params(&self) -> Params {
        self.layers
            .iter()
            .map(|l| LayerParams {
                weight: l.weight.to_f64(),
                bias: l
                    .has_bias
                    .then(|| l.bias.iter().map(|x| x.to_f64()).collect()),
            })
            .collect()
    }

    /// Layer widths, input first: `[fan_in of layer 1, fan_out of layer 1, ..., fan_out of L]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.layers[0].fan_in()];
        d.extend(self.layers.iter().map(|l| l.fan_out()));
        d
    }

    /// Number of trainable entries (absent biases are not parameters).
    pub fn num_params(&self) -> usize {
        super::param_ids(&self.layers).map(|id| id.len()).sum()
    }

    /// Forward pass of `ws.input` (rows already set) through every layer; returns the logits.
    /// With `dropout = Some((p, rng))`, hidden layers draw inverted-dropout masks.
    pub fn forward<'w>(
        &self,
        ws: &'w mut Workspace<T>,
        mut dropout: Option<(f64, &mut Rng)>,
    ) -> &'w Matrix<T> {
        let last = output_index(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, rest) = ws.caches.split_at_mut(i);
            let x = if i == 0 {
                &ws.input
            } else {
                before[i - 1].output()
            };
            let drop = match (&mut dropout, i < last) {
                (Some((p, rng)), true) => Some(Dropout { p: *p, rng }),
                _ => None,
            };
            layer.forward(x, &mut rest[0], drop);
        }
        &ws.caches[last].act
    }

    /// Backward pass. On entry `ws.deltas[L-1]` holds dLoss/dz_L; on exit every `ws.deltas[i]`
    /// holds delta of layer i+1 and `ws.grads` the parameter gradients.
    pub fn backward(&self, ws: &mut Workspace<T>) {
        backward_walk(ws, |i, x, cache, d_out, grads, d_input| {
            self.layers[i].backward(x, cache, d_out, grads, d_input)
        });
    }

    /// Loss of the batch already in `ws.input`, and a plain SGD step at learning rate `lr`
    /// fused into the backward pass ([`Dense::backward_sgd`]): `ws.grads` holds the bias
    /// gradients, its weight gradients are stale. When the loss is not finite nothing is
    /// updated.
    /// Equal to [`Mlp::loss_and_grads`] then `Optimizer::step` with plain SGD, up to rounding.
    pub fn loss_and_sgd_step(
        &mut self,
        ws: &mut Workspace<T>,
        loss: Loss,
        targets: Targets<'_, T>,
        dropout: Option<(f64, &mut Rng)>,
        lr: f64,
    ) -> f64 {
        self.forward(ws, dropout);
        let last = output_index(self.layers.len());
        let value =
            loss.forward_backward(&ws.caches[last].act, targets, Some(&mut ws.deltas[last]));
        if !value.is_finite() {
            // A diverged step is not taken, as in a loop that checks the loss before updating.
            return value;
        }
        let layers = &mut self.layers;
        backward_walk(ws, |i, x, cache, d_out, grads, d_input| {
            layers[i].backward_sgd(x, cache, d_out, lr, &mut grads.d_bias, d_input)
        });
        value
    }

    /// Loss, and gradients into `ws.grads`, for the batch already in `ws.input`.
    pub fn loss_and_grads(
        &self,
        ws: &mut Workspace<T>,
        loss: Loss,
        targets: Targets<'_, T>,
        dropout: Option<(f64, &mut Rng)>,
    ) -> f64 {
        self.forward(ws, dropout);
        let last = output_index(self.layers.len());
        let value =
            loss.forward_backward(&ws.caches[last].act, targets, Some(&mut ws.deltas[last]));
        self.backward(ws);
        value
    }
}

/// Calls `f(i, x, cache, d_out, grads, d_input)` for every layer `i` from the output down, with
/// the layer's input `x`, its forward cache, its dLoss/da (`ws.deltas[i]`), its gradients and,
/// below the first layer, the buffer for dLoss/dx (`ws.deltas[i - 1]`).
fn backward_walk<T: Float>(
    ws: &mut Workspace<T>,
    mut f: impl FnMut(
        usize,
        &Matrix<T>,
        &DenseCache<T>,
        &mut Matrix<T>,
        &mut DenseGrads<T>,
        Option<&mut Matrix<T>>,
    ),
) {
    for i in (0..ws.caches.len()).rev() {
        let x = if i == 0 {
            &ws.input
        } else {
            ws.caches[i - 1].output()
        };
        let (lower, upper) = ws.deltas.split_at_mut(i);
        let d_input = lower.last_mut();
        f(
            i,
            x,
            &ws.caches[i],
            &mut upper[0],
            &mut ws.grads[i],
            d_input,
        );
    }
}

/// Preallocated buffers for forward and backward passes of up to `capacity` rows: after
/// construction a training step allocates nothing.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    pub input: Matrix<T>,           // (batch, fan_in of layer 1), a_0
    pub caches: Vec<DenseCache<T>>, // layer l at index l-1
    pub deltas: Vec<Matrix<T>>,     // (batch, fan_out_l), dLoss/da_l then dLoss/dz_l
    pub grads: Vec<DenseGrads<T>>,  // dW_l, db_l
    pub capacity: usize,
}

impl<T: Float> Workspace<T> {
    /// Buffers for `dims` (input first) and up to `capacity` rows; `dropout` allocates masks for
    /// the hidden layers.
    pub fn new(dims: &[usize], capacity: usize, dropout: bool) -> Self {
        let layers = dims.len() - 1;
        Workspace {
            input: Matrix::zeros(capacity, dims[0]),
            caches: (0..layers)
                .map(|i| DenseCache::new(capacity, dims[i + 1], dropout && !is_output(i, layers)))
                .collect(),
            deltas: (0..layers)
                .map(|i| Matrix::zeros(capacity, dims[i + 1]))
                .collect(),
            grads: (0..layers)
                .map(|i| DenseGrads::zeros(dims[i], dims[i + 1]))
                .collect(),
            capacity,
        }
    }

    /// Copies rows `idx` of `x` into the input buffer.
    pub fn load_rows(&mut self, x: &Matrix<T>, idx: &[usize]) {
        assert!(
            idx.len() <= self.capacity,
            "batch larger than the workspace"
        );
        self.input.set_rows(idx.len());
        for (r, &i) in idx.iter().enumerate() {
            self.input.row_mut(r).copy_from_slice(x.row(i));
        }
    }
}
