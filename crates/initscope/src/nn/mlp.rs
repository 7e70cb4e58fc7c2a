//! The plain multilayer perceptron's parameters: a stack of linear layers, hidden ones with the
//! network's activation, the output layer linear (its loss is fused with any output
//! nonlinearity); [`super::Net::plain`] builds the network.
//!
//! ```text
//! a_0 = x;  z_l = a_{l-1} W_l^T + b_l;  a_l = f(z_l)  (l = 1..L-1);  z_L = a_{L-1} W_L^T + b_L
//! delta_L = dLoss/dz_L;  delta_l = (delta_{l+1} W_{l+1}) ⊙ f'(z_l);  dW_l = delta_l^T a_{l-1}
//! ```
//! Layers are numbered from 1 (first hidden) to L (output) in everything user-facing; vectors
//! here are 0-based, so layer l lives at index l - 1.

use super::layer_activation;
use crate::activation::Activation;
use crate::init::{Fans, FillContext, Init, Role};
use crate::matrix::Matrix;
use crate::rng::{self, Stream};

/// Parameters of one layer in f64, as initialised or loaded (the precision-free starting point).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    pub weight: Matrix<f64>,    // (fan_out, fan_in)
    pub bias: Option<Vec<f64>>, // (fan_out), None for --no-bias
}

/// All parameters of a network in f64 (the precision-free starting point and result). Indexing
/// and slicing reach the linear layers, layer 1 first (`params[0].weight`); [`Params::named`]
/// walks every tensor by its `state_dict` key and [`Params::get`] looks one up by key. A network
/// built from a `--net` spec also carries its table of tensors, the values of the tensors
/// outside linear layers (norm gains, gates, ...) and its buffers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(Vec<LayerParams>, Option<Box<Modules>>);

/// What a network of modules holds beyond its linear layers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Modules {
    /// Every tensor, in `state_dict` order.
    pub infos: Vec<super::ParamInfo>,
    /// The values of the tensors outside linear layers, in that order.
    pub others: Vec<Vec<f64>>,
    /// The buffers (batchnorm's running statistics), named.
    pub buffers: Vec<super::Buffer>,
}

impl Params {
    /// A network of modules' parameters: its linear layers and the rest ([`Modules`]).
    pub fn with_modules(layers: Vec<LayerParams>, modules: Modules) -> Self {
        Params(layers, Some(Box::new(modules)))
    }

    /// The tensors in `state_dict` order with their identities ([`super::named_params`] for a
    /// plain MLP).
    pub fn named(&self) -> Box<dyn Iterator<Item = (super::ParamInfo, &[f64])> + '_> {
        match &self.1 {
            None => Box::new(super::named_params(&self.0)),
            Some(m) => {
                let mut others = m.others.iter();
                Box::new(m.infos.iter().map(move |info| {
                    let values: &[f64] = match (info.layer, info.kind) {
                        (Some(l), super::ParamKind::Weight) => self.0[l - 1].weight.as_slice(),
                        (Some(l), _) => self.0[l - 1].bias.as_deref().expect("a bias tensor"),
                        (None, _) => others.next().expect("one value per tensor"),
                    };
                    (info.clone(), values)
                }))
            }
        }
    }

    /// The values of the tensors outside linear layers (norm gains, gates, ...), in
    /// `state_dict` order; none for a plain MLP.
    pub fn others(&self) -> &[Vec<f64>] {
        self.1.as_ref().map_or(&[], |m| &m.others)
    }

    pub fn others_mut(&mut self) -> &mut [Vec<f64>] {
        match &mut self.1 {
            Some(m) => &mut m.others,
            None => &mut [],
        }
    }

    /// Whether `self` and `other` hold the same tensors (keys, shapes and kinds, each with as
    /// many values) and buffers, whatever the values.
    pub fn same_tensors(&self, other: &Params) -> bool {
        let tensors = |p: &Params| -> Vec<_> { p.named().map(|(i, v)| (i, v.len())).collect() };
        let buffers = |p: &Params| -> Vec<_> {
            p.buffers()
                .iter()
                .map(|b| (b.key.clone(), b.dims.clone(), b.values.len()))
                .collect()
        };
        tensors(self) == tensors(other) && buffers(self) == buffers(other)
    }

    /// Whether these are a plain MLP's parameters: a chain of linear layers and nothing else.
    pub fn is_plain(&self) -> bool {
        self.1.is_none()
    }

    /// The buffers (state that is not trained: batchnorm's running statistics), named.
    pub fn buffers(&self) -> &[super::Buffer] {
        self.1.as_ref().map_or(&[], |m| &m.buffers)
    }

    /// The values of the tensor whose `state_dict` key is `name` (`0.weight`, `2.bias`, ...).
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.named().find(|(id, _)| id.name == name).map(|(_, v)| v)
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
        Params(iter.into_iter().collect(), None)
    }
}

impl From<Vec<LayerParams>> for Params {
    fn from(v: Vec<LayerParams>) -> Self {
        Params(v, None)
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
