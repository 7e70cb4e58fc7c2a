//! Named parameter tensors. Every trainable tensor of a network is a [`ParamId`] (its layer and
//! kind, named by its PyTorch `state_dict` key, e.g. `2.weight`) with a shape; [`params_mut`]
//! walks a network's tensors in `state_dict` order together with their gradients, so the
//! optimizers, clipping and gradient noise act on "every parameter" without knowing which module
//! holds it. Absent tensors (biases under `--no-bias`) are not parameters and are not visited.
//! Walking allocates nothing (names are formatted only when asked for), so a training step stays
//! allocation-free.

use super::dense::{Dense, DenseGrads};
use super::mlp::LayerParams;
use super::param_name;
use crate::scalar::Float;

/// Which tensor of a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    Weight,
    Bias,
}

impl ParamKind {
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Weight => "weight",
            ParamKind::Bias => "bias",
        }
    }
}

/// A parameter tensor's identity and shape: `layer` is 1-based; the weight of a dense layer is
/// (fan_out, fan_in), its bias (fan_out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId {
    pub layer: usize,
    pub kind: ParamKind,
    shape: [usize; 2],
    rank: usize,
}

impl ParamId {
    /// The weight of dense layer `layer` (1-based), (fan_out, fan_in).
    pub fn weight(layer: usize, fan_out: usize, fan_in: usize) -> Self {
        ParamId {
            layer,
            kind: ParamKind::Weight,
            shape: [fan_out, fan_in],
            rank: 2,
        }
    }

    /// The bias of dense layer `layer` (1-based), (fan_out).
    pub fn bias(layer: usize, fan_out: usize) -> Self {
        ParamId {
            layer,
            kind: ParamKind::Bias,
            shape: [fan_out, 0],
            rank: 1,
        }
    }

    /// The `state_dict` key ([`param_name`]).
    pub fn name(&self) -> String {
        param_name(self.layer, self.kind.name())
    }

    /// The shape: `[fan_out, fan_in]` for a weight, `[fan_out]` for a bias.
    pub fn dims(&self) -> &[usize] {
        &self.shape[..self.rank]
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.dims().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One parameter tensor with its gradient, both flat in row-major order.
pub struct ParamMut<'a, T> {
    pub id: ParamId,
    pub value: &'a mut [T],
    pub grad: &'a [T],
}

/// The parameter tensors of `layers` in `state_dict` order (weight then bias, layer by layer).
pub fn param_ids<T: Float>(layers: &[Dense<T>]) -> impl Iterator<Item = ParamId> + '_ {
    layers.iter().enumerate().flat_map(|(i, l)| {
        let (out, inp) = l.weight.shape();
        std::iter::once(ParamId::weight(i + 1, out, inp))
            .chain(l.has_bias.then(|| ParamId::bias(i + 1, out)))
    })
}

/// The tensors of precision-free parameters `params` (f64, as initialised, loaded or saved), in
/// `state_dict` order, with their identities.
pub fn named_params(params: &[LayerParams]) -> impl Iterator<Item = (ParamId, &[f64])> + '_ {
    params.iter().enumerate().flat_map(|(i, p)| {
        let (out, inp) = p.weight.shape();
        std::iter::once((ParamId::weight(i + 1, out, inp), p.weight.as_slice()))
            .chain(p.bias.as_deref().map(|b| (ParamId::bias(i + 1, out), b)))
    })
}

/// The parameter tensors of `layers` with their gradients `grads` (one per layer), in
/// `state_dict` order.
pub fn params_mut<'a, T: Float>(
    layers: &'a mut [Dense<T>],
    grads: &'a [DenseGrads<T>],
) -> impl Iterator<Item = ParamMut<'a, T>> {
    layers
        .iter_mut()
        .zip(grads)
        .enumerate()
        .flat_map(|(i, (l, g))| {
            let (out, inp) = l.weight.shape();
            let Dense {
                weight,
                bias,
                has_bias,
                ..
            } = l;
            let weight = ParamMut {
                id: ParamId::weight(i + 1, out, inp),
                value: weight.as_mut_slice(),
                grad: g.d_weight.as_slice(),
            };
            let bias = has_bias.then(|| ParamMut {
                id: ParamId::bias(i + 1, out),
                value: &mut bias[..],
                grad: &g.d_bias[..],
            });
            std::iter::once(weight).chain(bias)
        })
}

/// The gradients of the parameter tensors of `layers` (one [`DenseGrads`] per layer), in
/// `state_dict` order ([`param_ids`] with [`param_grad`]); gradients of absent tensors are not
/// visited.
pub fn param_grads<'a, T: Float>(
    layers: &'a [Dense<T>],
    grads: &'a [DenseGrads<T>],
) -> impl Iterator<Item = (ParamId, &'a [T])> {
    param_ids(layers).map(move |id| (id, param_grad(grads, id)))
}

/// The gradients of the parameter tensors of `layers` (one [`DenseGrads`] per layer), mutable,
/// in `state_dict` order; gradients of absent tensors are not visited.
pub fn grads_mut<'a, T: Float>(
    layers: &'a [Dense<T>],
    grads: &'a mut [DenseGrads<T>],
) -> impl Iterator<Item = (ParamId, &'a mut [T])> {
    layers
        .iter()
        .zip(grads.iter_mut())
        .enumerate()
        .flat_map(|(i, (l, g))| {
            let (out, inp) = l.weight.shape();
            let DenseGrads { d_weight, d_bias } = g;
            std::iter::once((ParamId::weight(i + 1, out, inp), d_weight.as_mut_slice())).chain(
                l.has_bias
                    .then(|| (ParamId::bias(i + 1, out), &mut d_bias[..])),
            )
        })
}

/// The parameter of `layers` whose `state_dict` key is `name`, if any.
pub fn find_param<T: Float>(layers: &[Dense<T>], name: &str) -> Option<ParamId> {
    param_ids(layers).find(|id| id.name() == name)
}

/// The values of parameter `id` of `layers`, flat in row-major order.
pub fn param_values<T: Float>(layers: &[Dense<T>], id: ParamId) -> &[T] {
    let l = &layers[id.layer - 1];
    match id.kind {
        ParamKind::Weight => l.weight.as_slice(),
        ParamKind::Bias => &l.bias,
    }
}

/// The values of parameter `id` of `layers`, mutable.
pub fn param_values_mut<T: Float>(layers: &mut [Dense<T>], id: ParamId) -> &mut [T] {
    let l = &mut layers[id.layer - 1];
    match id.kind {
        ParamKind::Weight => l.weight.as_mut_slice(),
        ParamKind::Bias => &mut l.bias,
    }
}

/// The gradient of parameter `id` in `grads` (one [`DenseGrads`] per layer).
pub fn param_grad<T: Float>(grads: &[DenseGrads<T>], id: ParamId) -> &[T] {
    let g = &grads[id.layer - 1];
    match id.kind {
        ParamKind::Weight => g.d_weight.as_slice(),
        ParamKind::Bias => &g.d_bias,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::nn::{LayerParams, Mlp};

    fn net(bias: bool) -> Mlp<f64> {
        let layer = |o: usize, i: usize| LayerParams {
            weight: crate::matrix::Matrix::zeros(o, i),
            bias: bias.then(|| vec![0.0; o]),
        };
        Mlp::from_params(&[layer(3, 2), layer(4, 3), layer(1, 4)], Activation::Tanh)
    }

    #[test]
    fn parameters_are_named_by_state_dict_keys_in_order_with_their_shapes() {
        let with = net(true);
        let got: Vec<(String, Vec<usize>)> = param_ids(&with.layers)
            .map(|p| (p.name(), p.dims().to_vec()))
            .collect();
        let want = [
            ("0.weight", vec![3, 2]),
            ("0.bias", vec![3]),
            ("2.weight", vec![4, 3]),
            ("2.bias", vec![4]),
            ("4.weight", vec![1, 4]),
            ("4.bias", vec![1]),
        ];
        assert_eq!(got.len(), want.len());
        for ((n, d), (wn, wd)) in got.iter().zip(&want) {
            assert_eq!((n.as_str(), d), (*wn, wd));
        }
        // Without biases there are no bias parameters (not zero-filled ones).
        let without = net(false);
        let names: Vec<String> = param_ids(&without.layers).map(|p| p.name()).collect();
        assert_eq!(names, ["0.weight", "2.weight", "4.weight"]);
    }

    #[test]
    fn walking_pairs_each_tensor_with_its_own_gradient() {
        let mut n = net(true);
        let mut grads: Vec<DenseGrads<f64>> = n
            .layers
            .iter()
            .map(|l| DenseGrads::zeros(l.fan_in(), l.fan_out()))
            .collect();
        for (k, (id, g)) in grads_mut(&n.layers, &mut grads).enumerate() {
            assert_eq!(g.len(), id.len());
            g.iter_mut().for_each(|x| *x = k as f64);
        }
        for (k, p) in params_mut(&mut n.layers, &grads).enumerate() {
            assert_eq!(p.value.len(), p.id.len());
            assert!(p.grad.iter().all(|&x| x == k as f64), "{}", p.id.name());
        }
        assert_eq!(params_mut(&mut n.layers, &grads).count(), 6);
        // Lookup by name reads and writes the same tensor the walk visits.
        let id = find_param(&n.layers, "2.bias").expect("2.bias");
        assert_eq!(
            (id.layer, id.kind, id.dims()),
            (2, ParamKind::Bias, &[4][..])
        );
        assert!(param_grad(&grads, id).iter().all(|&x| x == 3.0));
        param_values_mut(&mut n.layers, id)[1] = 7.0;
        assert_eq!(param_values(&n.layers, id), &[0.0, 7.0, 0.0, 0.0]);
        assert_eq!(find_param(&n.layers, "1.weight"), None);
    }

    #[test]
    fn precision_free_parameters_are_looked_up_by_key() {
        let p = net(false).params();
        assert_eq!(p.get("2.weight").map(<[f64]>::len), Some(12));
        assert_eq!(p.get("2.bias"), None, "no biases: no bias parameters");
        assert_eq!(p.num_params(), 6 + 12 + 4);
        let with = net(true).params();
        assert_eq!(with.num_params(), net(true).num_params());
        let keys: Vec<String> = with.named().map(|(id, _)| id.name()).collect();
        assert_eq!(keys[..3], ["0.weight", "0.bias", "2.weight"]);
    }
}
