//! What every module kind provides. A network ([`super::Net`]) is a sequence of modules; each
//! kind is one file in this folder implementing [`Module`]: its parameter tensors, its forward
//! pass into a [`Cache`], and the paired backward pass
//!
//! ```text
//! forward:   y = F(x; θ)                    x: (batch, in_width), y: (batch, out_width)
//! backward:  given dy = dLoss/dy:  dθ = (∂F/∂θ)^T dy,  dx = (∂F/∂x)^T dy
//! ```
//!
//! Parameters live in the module (a linear layer's weight is a [`Matrix`] its GEMMs read);
//! their gradients live in the workspace, one matrix per tensor in `state_dict` order
//! ([`super::Workspace::grads`]), and a module's passes see only its own slice of them. The
//! network walks tensors through [`Module::value`] and [`Module::value_mut`], so optimizers,
//! clipping and noise act on every parameter without knowing which module holds it.

use std::fmt;

use super::dense::Dense;
use super::param::ParamKind;
use crate::activation::Activation;
use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::scalar::Float;

/// How a forward pass runs: training (dropout draws masks from the stream) or evaluation
/// (`model.eval()`: dropout is the identity).
pub enum Pass<'a> {
    Eval,
    /// Training; the stream dropout masks are drawn from.
    Train(&'a mut Rng),
}

/// A parameter tensor of a module as the module declares it: its key within the module
/// (`weight`, `bias`, `body.0.weight`, ...), shape and kind, and whether it belongs to a linear
/// layer (linear layers are numbered 1, 2, ... in forward order by their weights).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDecl {
    pub key: String,
    pub dims: Vec<usize>,
    pub kind: ParamKind,
    pub linear: bool,
}

impl TensorDecl {
    /// A zero buffer for this tensor's gradient, shaped as the workspace holds gradients: a
    /// matrix as itself, anything else (a vector, a scalar) as one row.
    pub fn grad_buffer<T: Float>(&self) -> Matrix<T> {
        grad_buffer(&self.dims)
    }

    /// A vector of `len` entries outside any linear layer (a norm's gain, a gate's alpha).
    pub fn vector(key: &str, len: usize, kind: ParamKind) -> Self {
        TensorDecl {
            key: key.into(),
            dims: vec![len],
            kind,
            linear: false,
        }
    }

    /// A norm's gain `weight` and bias `bias`, `width` entries each.
    pub fn gain_and_bias(width: usize) -> Vec<Self> {
        vec![
            TensorDecl::vector("weight", width, ParamKind::NormGain),
            TensorDecl::vector("bias", width, ParamKind::NormBias),
        ]
    }
}

/// A zero gradient buffer for a tensor of shape `dims` ([`TensorDecl::grad_buffer`]).
pub(crate) fn grad_buffer<T: Float>(dims: &[usize]) -> Matrix<T> {
    match dims[..] {
        [rows, cols] => Matrix::zeros(rows, cols),
        _ => Matrix::zeros(1, dims.iter().product()),
    }
}

/// A tensor of a module's state that is not trained (batchnorm's running statistics), as it
/// appears in the `state_dict`: key within the module, shape and values in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub key: String,
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
}

/// A block's body modules and their keys in its body Sequential ([`Module::body`]).
pub type Body<'a, T> = (&'a [Box<dyn Module<T>>], &'a [String]);

/// What the step-0 derivation of `explain` shows a module of: its input, its forward cache, the
/// gradient dLoss/dy its backward pass received and what that pass produced (dLoss/dx and the
/// parameter gradients, one per tensor), on the first training batch.
pub struct Step0<'a, T> {
    /// The module's path (`2.body.1`).
    pub path: &'a str,
    pub x: &'a Matrix<T>,
    pub cache: &'a Cache<T>,
    pub dy: &'a Matrix<T>,
    pub dx: &'a Matrix<T>,
    pub grads: &'a [Matrix<T>],
}

/// What a module kind says about its step-0 backward pass ([`Module::explain_step0`]): why a
/// factor is exactly zero (`zero`), and other facts that matter for symmetry and wake-up
/// (`notes`), with the actual numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub zero: Vec<String>,
    pub notes: Vec<String>,
}

/// What a module's forward pass keeps for its backward pass, sized for the largest batch.
/// Every kind uses the fields it needs and leaves the others empty:
/// `pre` holds what the output is computed from (a linear layer's `z = x W^T + b`, a norm's
/// normalised input), `act` the module's output, `out` and `mask` the output after inverted
/// dropout and the mask (only when the module drops units), `stats` per-row or per-unit
/// statistics (a norm's inverse standard deviations), `body` and `body_deltas` the caches and
/// gradient buffers of the modules inside a block, `train` whether the last forward pass into
/// the cache was a training pass (set by the kinds whose backward differs between the passes:
/// batchnorm).
#[derive(Clone, Debug)]
pub struct Cache<T> {
    pub pre: Matrix<T>,
    pub act: Matrix<T>,
    pub out: Matrix<T>,
    pub mask: Matrix<T>,
    pub stats: Vec<T>,
    pub body: Vec<Cache<T>>,
    pub body_deltas: Vec<Matrix<T>>,
    /// Working space of a small linear layer's products ([`crate::small::SCRATCH`] scalars;
    /// empty for other modules).
    pub scratch: Vec<T>,
    pub(crate) dropout: bool,
    pub train: bool,
}

impl<T: Float> Cache<T> {
    /// Buffers for up to `capacity` rows of width `width`: `pre` and `act`, and with `dropout`
    /// the mask and masked output.
    pub fn new(capacity: usize, width: usize, dropout: bool) -> Self {
        let masked = if dropout { capacity } else { 0 };
        Cache {
            pre: Matrix::zeros(capacity, width),
            act: Matrix::zeros(capacity, width),
            out: Matrix::zeros(masked, width),
            mask: Matrix::zeros(masked, width),
            stats: Vec::new(),
            body: Vec::new(),
            body_deltas: Vec::new(),
            scratch: Vec::new(),
            dropout,
            train: false,
        }
    }

    /// The module's output as the next module sees it: `act ⊙ mask` under dropout, else `act`.
    pub fn output(&self) -> &Matrix<T> {
        if self.dropout {
            &self.out
        } else {
            &self.act
        }
    }
}

/// What a module computes, by kind, for the analyses that reason about a network's structure
/// instead of running it (the wake-up prediction, [`crate::diagnostics::wake`]). Tensor values
/// are read through [`Module::value`], in the order of [`Module::tensors`].
#[derive(Clone, Copy, Debug)]
pub enum Anatomy<'a, T> {
    /// `z = x W^T (+ b)`, `a = f(z)`, then inverted dropout with probability `dropout` while
    /// training (0: none). Tensors: the weight, then the bias when `has_bias`.
    Linear {
        activation: Activation,
        dropout: f64,
        has_bias: bool,
    },
    /// `y = f(x)` elementwise; no tensors.
    Activation(Activation),
    /// Inverted dropout with probability p while training; no tensors.
    Dropout(f64),
    /// Each row normalised over its units with `eps`; tensors gamma and beta when `affine`.
    LayerNorm { affine: bool, eps: f64 },
    /// Each row divided by its root mean square (`eps` inside the root); tensor gamma.
    RmsNorm { eps: f64 },
    /// Each unit normalised over the batch (training statistics) with `eps`; tensors gamma and
    /// beta.
    BatchNorm { eps: f64 },
    /// `y = x + body(x)`: the body's modules in order, its tensors theirs in that order.
    Residual(&'a [Box<dyn Module<T>>]),
    /// `y = alpha x`, tensor alpha `[1]`.
    Gate,
    /// `y = x + s`, tensor s `[1]`.
    Shift,
}

/// One module kind. Shapes: the input `x` is (batch, [`Module::in_width`]), the output
/// (batch, [`Module::out_width`]); `grads` is the module's slice of the workspace's gradients,
/// one matrix per tensor of [`Module::tensors`] in that order, each shaped like its tensor
/// (a vector as one row).
pub trait Module<T: Float>: fmt::Debug + Send + Sync {
    /// The kind's name as the network spec writes it (`linear`, `gate`, ...).
    fn kind(&self) -> &'static str;

    fn in_width(&self) -> usize;

    fn out_width(&self) -> usize;

    /// What the module computes ([`Anatomy`]). Every kind says it: there is no default, so a new
    /// kind cannot be analysed as some other one by accident.
    fn anatomy(&self) -> Anatomy<'_, T>;

    /// The parameter tensors, in `state_dict` order (none by default: a kind without
    /// parameters, such as an activation, implements none of the three tensor methods).
    fn tensors(&self) -> Vec<TensorDecl> {
        Vec::new()
    }

    /// The values of tensor `k` (of [`Module::tensors`]), flat in row-major order.
    fn value(&self, k: usize) -> &[T] {
        unreachable!("{} has no tensor {k}", self.kind())
    }

    /// The values of tensor `k`, mutable.
    fn value_mut(&mut self, k: usize) -> &mut [T] {
        unreachable!("{} has no tensor {k}", self.kind())
    }

    /// The buffers the passes run in, for up to `capacity` rows.
    fn cache(&self, capacity: usize) -> Cache<T>;

    /// Forward pass of `x` into `cache` (row counts set to `x.rows()`).
    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, pass: &mut Pass<'_>);

    /// Backward pass: `dy` holds dLoss/dy on entry (the module may overwrite it); writes the
    /// parameter gradients into `grads` and, when asked, dLoss/dx into `dx`. The cache is the
    /// forward pass's (a block also uses its gradient buffers as scratch).
    fn backward(
        &self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    );

    /// [`Module::backward`] fused with a plain SGD step (`θ -= lr dθ`, `torch.optim.SGD`
    /// without momentum or weight decay). `dx` is computed with the parameters the gradient
    /// belongs to. A kind may fuse the update into its gradient computation (a linear layer
    /// accumulates `-lr dz^T x` straight into its weight); the result equals `backward` then the
    /// update up to rounding.
    fn backward_sgd(
        &mut self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        lr: f64,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        self.backward(x, cache, dy, grads, dx);
        let lr = T::from_f64(lr);
        for (k, g) in grads.iter().enumerate() {
            for (p, &g) in self.value_mut(k).iter_mut().zip(g.as_slice()) {
                *p -= lr * g;
            }
        }
    }

    /// After a training forward pass: folds the batch's statistics into the module's running
    /// statistics (batchnorm). Evaluation and diagnostic passes never call it.
    fn update_buffers(&mut self, _cache: &Cache<T>) {}

    /// The module's state that is not trained but is part of its `state_dict` (batchnorm's
    /// running statistics), in `state_dict` order after its parameters.
    fn buffers(&self) -> Vec<Buffer> {
        Vec::new()
    }

    /// Sets buffer `key` (a key of [`Module::buffers`]) to `values` (f64, flat, as
    /// [`Buffer::values`] holds them), as loading a `state_dict` does. Returns false, changing
    /// nothing, when the module has no buffer `key` or `values` has the wrong length or is not
    /// a valid value for it; modules without buffers keep this default.
    fn set_buffer(&mut self, _key: &str, _values: &[f64]) -> bool {
        false
    }

    /// The linear layer whose weight is this module's tensor `k`, if it is one (the analyses
    /// that read weight matrices: symmetry, spectra, `explain`, the trackers).
    fn linear_at(&self, _k: usize) -> Option<&Dense<T>> {
        None
    }

    fn linear_at_mut(&mut self, _k: usize) -> Option<&mut Dense<T>> {
        None
    }

    /// The forward cache of the linear layer whose weight is tensor `k`, given this module's
    /// cache.
    fn linear_cache<'c>(&self, _cache: &'c Cache<T>, _k: usize) -> Option<&'c Cache<T>> {
        None
    }

    /// The step-0 derivation's facts about this module's backward pass ([`Step0`]), beyond what
    /// every module shares (a zero incoming gradient, zero parameter gradients): a kind's own
    /// exact zeros and amplifications. Nothing by default.
    fn explain_step0(&self, _s: &Step0<'_, T>, _facts: &mut Facts) {}

    /// The modules inside a block and their keys in its body Sequential (a residual block's);
    /// `None` for every other kind.
    fn body(&self) -> Option<Body<'_, T>> {
        None
    }

    fn clone_box(&self) -> Box<dyn Module<T>>;
}

impl<T: Float> Clone for Box<dyn Module<T>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
