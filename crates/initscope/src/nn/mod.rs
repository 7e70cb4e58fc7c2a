//! The model. A module kind is one file with its formulas, shapes and paired forward/backward,
//! implementing [`Module`] ([`dense`]: `z = x W^T + b`, `a = f(z)`, and its backward); the
//! network ([`net`]) is a sequence of modules with the workspace its passes run in; [`mlp`]
//! holds a plain MLP's precision-free parameters and their initialisation. Which layer is the output layer, and so
//! which activation each layer applies, is said once, here ([`is_output`], [`layer_activation`]).
//!
//! Parameter names are PyTorch's `state_dict` keys for `nn.Sequential(Linear, act, ..., Linear)`
//! ([`param_name`]: `0.weight`, `0.bias`, `2.weight`, ...), the names in every safetensors file
//! initscope writes.

pub mod act;
pub mod batchnorm;
pub mod build;
pub mod dense;
pub mod dropout;
pub mod gate;
pub mod layernorm;
pub mod mlp;
pub mod module;
pub mod net;
pub mod param;
pub mod res;
pub mod rmsnorm;
pub mod scalar;
pub mod shift;
pub mod spec;
pub mod torch;

pub use dense::Dense;
pub use mlp::{init_params, LayerInits, LayerParams, Params};
pub use module::{Anatomy, Buffer, Cache, Facts, Module, Pass, Step0, TensorDecl};
pub use net::{Net, Workspace};
pub use param::{named_params, ParamInfo, ParamKind};

use crate::activation::Activation;

/// The index (0-based) of the output layer in a stack of `layers` dense layers: the last one.
/// Everything user-facing numbers layers from 1, so layer l is index l - 1 and the output layer
/// is layer L = `layers`.
pub fn output_index(layers: usize) -> usize {
    layers - 1
}

/// Whether layer index `i` (0-based) of a stack of `layers` dense layers is the output layer.
pub fn is_output(i: usize, layers: usize) -> bool {
    i == output_index(layers)
}

/// The activation layer index `i` of `layers` applies: the hidden activation `act`, or the
/// identity for the output layer (its loss fuses any output nonlinearity: softmax, sigmoid).
pub fn layer_activation(i: usize, layers: usize, act: Activation) -> Activation {
    if is_output(i, layers) {
        Activation::Identity
    } else {
        act
    }
}

/// The `state_dict` key of dense layer `l`'s (1-based) parameter `kind` ("weight" or "bias"):
/// layer l is module `2(l-1)` of `nn.Sequential(Linear, act, Linear, act, ..., Linear)`.
pub fn param_name(l: usize, kind: &str) -> String {
    format!("{}.{kind}", 2 * (l - 1))
}

/// An architecture as written on the command line and in file metadata: the widths, input first
/// and output last, joined by `-` (`2-16-16-2`).
pub fn arch_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("-")
}
