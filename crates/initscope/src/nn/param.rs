//! Named parameter tensors. Every trainable tensor of a network has a [`ParamInfo`]: its
//! PyTorch `state_dict` key (`0.weight`, `2.bias`, ...), shape, kind, the linear layer it
//! belongs to and the top-level module that holds it. A [`super::Net`] builds the table once
//! ([`super::Net::param_infos`], `state_dict` order) and walks its tensors' values in that order;
//! the workspace's gradients ([`super::Workspace::grads`]) are in the same order, so the
//! optimizers, clipping and gradient noise act on "every parameter" without knowing which module
//! holds it. Absent tensors (biases under `--no-bias`) are not parameters and are not visited.
//! Walking allocates nothing, so a training step stays allocation-free.

use super::mlp::LayerParams;
use super::param_name;

/// What a parameter tensor is for (its key in the `state_dict` is the module's; this is the
/// class `--no-decay` and the reports group by).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    /// A linear layer's weight matrix.
    Weight,
    /// A linear layer's bias.
    Bias,
    /// A norm's gain gamma (`weight` in the `state_dict`).
    NormGain,
    /// A norm's bias beta (`bias` in the `state_dict`).
    NormBias,
    /// A gate's scalar alpha.
    Gate,
    /// A shift's scalar (`bias` in the `state_dict`).
    Shift,
}

impl ParamKind {
    /// The tensor's key within a plain MLP's linear layer (`weight`, `bias`); for the other
    /// kinds, the class's name.
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Weight => "weight",
            ParamKind::Bias => "bias",
            ParamKind::NormGain => "norm_gain",
            ParamKind::NormBias => "norm_bias",
            ParamKind::Gate => "gate",
            ParamKind::Shift => "shift",
        }
    }
}

/// A parameter tensor's identity and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamInfo {
    /// The `state_dict` key.
    pub name: String,
    /// The shape: `[fan_out, fan_in]` for a weight, `[fan_out]` for a bias.
    pub dims: Vec<usize>,
    pub kind: ParamKind,
    /// The linear layer (1-based, forward order) the tensor belongs to, if any.
    pub layer: Option<usize>,
    /// The index of the top-level module that holds it.
    pub module: usize,
}

impl ParamInfo {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tensors of precision-free plain-MLP parameters `params` (f64, as initialised, loaded or
/// saved), in `state_dict` order, with their identities: layer l's weight is
/// `{2(l-1)}.weight`, its bias `{2(l-1)}.bias`.
pub fn named_params(params: &[LayerParams]) -> impl Iterator<Item = (ParamInfo, &[f64])> + '_ {
    params.iter().enumerate().flat_map(|(i, p)| {
        let (out, inp) = p.weight.shape();
        let info = |kind: ParamKind, dims: Vec<usize>| ParamInfo {
            name: param_name(i + 1, kind.name()),
            dims,
            kind,
            layer: Some(i + 1),
            module: i,
        };
        std::iter::once((info(ParamKind::Weight, vec![out, inp]), p.weight.as_slice())).chain(
            p.bias
                .as_deref()
                .map(|b| (info(ParamKind::Bias, vec![out]), b)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::nn::{LayerParams, Net, Workspace};

    fn net(bias: bool) -> Net<f64> {
        let layer = |o: usize, i: usize| LayerParams {
            weight: crate::matrix::Matrix::zeros(o, i),
            bias: bias.then(|| vec![0.0; o]),
        };
        Net::from_params(&[layer(3, 2), layer(4, 3), layer(1, 4)], Activation::Tanh)
    }

    #[test]
    fn parameters_are_named_by_state_dict_keys_in_order_with_their_shapes() {
        let with = net(true);
        let got: Vec<(&str, &[usize], Option<usize>)> = with
            .param_infos()
            .iter()
            .map(|p| (p.name(), p.dims(), p.layer))
            .collect();
        let want: [(&str, &[usize], Option<usize>); 6] = [
            ("0.weight", &[3, 2], Some(1)),
            ("0.bias", &[3], Some(1)),
            ("2.weight", &[4, 3], Some(2)),
            ("2.bias", &[4], Some(2)),
            ("4.weight", &[1, 4], Some(3)),
            ("4.bias", &[1], Some(3)),
        ];
        assert_eq!(got, want);
        // Without biases there are no bias parameters (not zero-filled ones).
        let without = net(false);
        let names: Vec<&str> = without.param_infos().iter().map(|p| p.name()).collect();
        assert_eq!(names, ["0.weight", "2.weight", "4.weight"]);
        // The precision-free parameters carry the same table.
        for n in [with, without] {
            let infos: Vec<ParamInfo> = n.params().named().map(|(i, _)| i).collect();
            assert_eq!(infos, n.param_infos());
        }
    }

    #[test]
    fn walking_pairs_each_tensor_with_its_own_gradient() {
        let mut n = net(true);
        let mut ws = Workspace::new(&n, 2);
        assert_eq!(ws.grads.len(), 6);
        for (k, (info, g)) in n.param_infos().iter().zip(&mut ws.grads).enumerate() {
            assert_eq!(g.as_slice().len(), info.len());
            g.fill(k as f64);
        }
        for (k, (info, v)) in n.values().enumerate() {
            assert_eq!(v.len(), info.len());
            assert!(ws.grads[k].as_slice().iter().all(|&x| x == k as f64));
        }
        assert_eq!(n.values().count(), 6);
        // Lookup by name reads and writes the same tensor the walk visits.
        let id = n.find_param("2.bias").expect("2.bias");
        assert_eq!(id, 3);
        assert!(ws.grads[id].as_slice().iter().all(|&x| x == 3.0));
        n.param_values_mut(id)[1] = 7.0;
        assert_eq!(n.param_values(id), &[0.0, 7.0, 0.0, 0.0]);
        assert_eq!(n.layer(1).bias, [0.0, 7.0, 0.0, 0.0]);
        assert_eq!(n.find_param("1.weight"), None);
    }

    #[test]
    fn precision_free_parameters_are_looked_up_by_key() {
        let p = net(false).params();
        assert_eq!(p.get("2.weight").map(<[f64]>::len), Some(12));
        assert_eq!(p.get("2.bias"), None, "no biases: no bias parameters");
        assert_eq!(p.num_params(), 6 + 12 + 4);
        let with = net(true).params();
        assert_eq!(with.num_params(), net(true).num_params());
        let keys: Vec<String> = with.named().map(|(id, _)| id.name).collect();
        assert_eq!(keys[..3], ["0.weight", "0.bias", "2.weight"]);
    }
}
