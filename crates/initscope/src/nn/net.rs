//! A network: a sequence of modules ([`Module`]), each reading the previous one's output, and the
//! workspace its passes run in.
//!
//! ```text
//! a_0 = x;  a_i = F_i(a_{i-1}; θ_i)  (i = 1..n);  the logits are a_n
//! delta_n = dLoss/da_n;  delta_{i-1} = (∂F_i/∂a_{i-1})^T delta_i;  dθ_i = (∂F_i/∂θ_i)^T delta_i
//! ```
//! Parameter tensors are named by their `state_dict` keys: module i's tensor `key` is
//! `{prefix_i}.{key}`, where the prefix is the module's index in the PyTorch `nn.Sequential`
//! the network corresponds to (a plain MLP's fused linear-and-activation layer l is module
//! `2(l-1)`, [`super::param_name`]). Linear layers are numbered from 1 in forward order in
//! everything user-facing.

use super::module::{Buffer, Cache, Module, Pass};
use super::param::{ParamInfo, ParamKind};
use super::{layer_activation, Dense, LayerParams, Params};
use crate::activation::Activation;
use crate::data::RowSource;
use crate::loss::{Loss, Targets};
use crate::matrix::Matrix;
use crate::scalar::Float;

/// A feed-forward network in precision `T`.
#[derive(Debug)]
pub struct Net<T> {
    modules: Vec<Box<dyn Module<T>>>,
    /// Every parameter tensor, in `state_dict` order.
    infos: Vec<ParamInfo>,
    /// Module i's tensors are `infos[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    /// The weight tensor (its index in `infos`) of linear layer l at index l - 1.
    linears: Vec<usize>,
    /// Each module's `state_dict` prefix.
    prefixes: Vec<String>,
}

impl<T: Float> Clone for Net<T> {
    fn clone(&self) -> Self {
        Net {
            modules: self.modules.clone(),
            infos: self.infos.clone(),
            starts: self.starts.clone(),
            linears: self.linears.clone(),
            prefixes: self.prefixes.clone(),
        }
    }
}

impl<T: Float> Net<T> {
    /// A network of `modules` in order, each with its `state_dict` prefix. Panics when a
    /// module's input width differs from the previous one's output width (networks are built
    /// from checked specs).
    pub fn new(modules: Vec<(String, Box<dyn Module<T>>)>) -> Self {
        assert!(!modules.is_empty(), "a network has at least one module");
        for w in modules.windows(2) {
            assert_eq!(
                w[0].1.out_width(),
                w[1].1.in_width(),
                "module {} feeds {}",
                w[0].0,
                w[1].0
            );
        }
        let (mut infos, mut starts, mut linears) = (Vec::new(), vec![0], Vec::<usize>::new());
        for (i, (prefix, m)) in modules.iter().enumerate() {
            for t in m.tensors() {
                if t.linear && t.kind == ParamKind::Weight {
                    linears.push(infos.len());
                }
                infos.push(ParamInfo {
                    name: format!("{prefix}.{}", t.key),
                    dims: t.dims,
                    kind: t.kind,
                    layer: t.linear.then_some(linears.len()),
                    module: i,
                });
            }
            starts.push(infos.len());
        }
        let (prefixes, modules) = modules.into_iter().unzip();
        Net {
            modules,
            infos,
            starts,
            linears,
            prefixes,
        }
    }

    /// A plain MLP from f64 parameters (cast once): hidden layers apply `act`, the output layer
    /// the identity; no dropout.
    pub fn from_params(params: &[LayerParams], act: Activation) -> Self {
        Self::plain(params, act, 0.0)
    }

    /// A plain MLP whose hidden layers drop units with probability `dropout` while training.
    pub fn plain(params: &[LayerParams], act: Activation, dropout: f64) -> Self {
        let layers = params.len();
        Net::new(
            params
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let activation = layer_activation(i, layers, act);
                    let dense = Dense {
                        weight: Matrix::from_f64(&p.weight),
                        bias: match &p.bias {
                            Some(b) => b.iter().map(|&x| T::from_f64(x)).collect(),
                            None => vec![T::ZERO; p.weight.rows()],
                        },
                        has_bias: p.bias.is_some(),
                        activation,
                        dropout: if i + 1 < layers { dropout } else { 0.0 },
                    };
                    let module: Box<dyn Module<T>> = Box::new(dense);
                    (format!("{}", 2 * i), module)
                })
                .collect(),
        )
    }

    pub fn modules(&self) -> &[Box<dyn Module<T>>] {
        &self.modules
    }

    /// Each module's `state_dict` prefix (its index in the top-level Sequential).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Number of linear layers.
    pub fn num_layers(&self) -> usize {
        self.linears.len()
    }

    /// Linear layer `i + 1` (index `i`, forward order), wherever it sits (inside blocks too).
    pub fn layer(&self, i: usize) -> &Dense<T> {
        let (m, k) = self.locate(self.linears[i]);
        self.modules[m]
            .linear_at(k)
            .expect("linears index linear weights")
    }

    pub fn layer_mut(&mut self, i: usize) -> &mut Dense<T> {
        let (m, k) = self.locate(self.linears[i]);
        self.modules[m]
            .linear_at_mut(k)
            .expect("linears index linear weights")
    }

    /// The forward cache of linear layer `i + 1` in `ws` (its `pre` is z, its `act` f(z)).
    pub fn layer_cache<'w>(&self, ws: &'w Workspace<T>, i: usize) -> &'w Cache<T> {
        let (m, k) = self.locate(self.linears[i]);
        self.modules[m]
            .linear_cache(&ws.caches[m], k)
            .expect("linears index linear weights")
    }

    /// Tensor `k`'s module and its index within the module.
    fn locate(&self, k: usize) -> (usize, usize) {
        let m = self.infos[k].module;
        (m, k - self.starts[m])
    }

    /// The linear layers in forward order.
    pub fn layers(&self) -> impl Iterator<Item = &Dense<T>> + '_ {
        (0..self.num_layers()).map(|i| self.layer(i))
    }

    /// The parameters in f64 (exact for both precisions): the linear layers, and for a network
    /// that is not a plain MLP its table, other tensors and buffers ([`super::mlp::Modules`]).
    pub fn params(&self) -> Params {
        let layers: Vec<LayerParams> = self
            .layers()
            .map(|l| LayerParams {
                weight: l.weight.to_f64(),
                bias: l
                    .has_bias
                    .then(|| l.bias.iter().map(|x| x.to_f64()).collect()),
            })
            .collect();
        let buffers = self.buffers();
        let plain = buffers.is_empty()
            && super::named_params(&layers)
                .map(|(info, _)| info)
                .eq(self.infos.iter().cloned());
        if plain {
            return layers.into();
        }
        let others = self
            .values()
            .filter(|(info, _)| info.layer.is_none())
            .map(|(_, v)| v.iter().map(|x| x.to_f64()).collect())
            .collect();
        Params::with_modules(
            layers,
            super::mlp::Modules {
                infos: self.infos.clone(),
                others,
                buffers,
            },
        )
    }

    /// Sets every parameter and buffer from `params` (f64, cast to `T`), which must hold this
    /// network's tensors in `state_dict` order (what [`Net::params`] of the same network gives).
    pub fn set_values(&mut self, params: &Params) {
        for (k, (info, values)) in params.named().enumerate() {
            assert_eq!(info.name, self.infos[k].name, "the same network's tensors");
            for (p, &v) in self.param_values_mut(k).iter_mut().zip(values) {
                *p = T::from_f64(v);
            }
        }
        for b in params.buffers() {
            let set = self.set_buffer(&b.key, &b.values);
            assert!(set, "the same network's buffer {}", b.key);
        }
    }

    /// Widths, input first, then each module's output width.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.modules[0].in_width()];
        d.extend(self.modules.iter().map(|m| m.out_width()));
        d
    }

    /// Number of trainable entries (absent biases are not parameters).
    pub fn num_params(&self) -> usize {
        self.infos.iter().map(ParamInfo::len).sum()
    }

    /// Every parameter tensor, in `state_dict` order (the order of `Workspace::grads`).
    pub fn param_infos(&self) -> &[ParamInfo] {
        &self.infos
    }

    /// The index of the tensor whose `state_dict` key is `name`, if any.
    pub fn find_param(&self, name: &str) -> Option<usize> {
        self.infos.iter().position(|p| p.name == name)
    }

    /// The values of tensor `k` (its index in [`Net::param_infos`]), flat in row-major order.
    pub fn param_values(&self, k: usize) -> &[T] {
        let (m, j) = self.locate(k);
        self.modules[m].value(j)
    }

    pub fn param_values_mut(&mut self, k: usize) -> &mut [T] {
        let (m, j) = self.locate(k);
        self.modules[m].value_mut(j)
    }

    /// Every tensor with its values, in `state_dict` order.
    pub fn values(&self) -> impl Iterator<Item = (&ParamInfo, &[T])> + '_ {
        (0..self.infos.len()).map(|k| (&self.infos[k], self.param_values(k)))
    }

    /// The indices of module `i`'s tensors in [`Net::param_infos`] (and in the workspace's
    /// gradients).
    pub fn tensor_range(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i + 1]
    }

    /// Linear layer `i + 1`'s gradients in `grads` (the workspace's, one per tensor): dW, and
    /// db when the layer has a bias.
    pub fn layer_grads<'g>(
        &self,
        grads: &'g [Matrix<T>],
        i: usize,
    ) -> (&'g Matrix<T>, Option<&'g [T]>) {
        let k = self.linears[i];
        (
            &grads[k],
            self.layer(i).has_bias.then(|| grads[k + 1].as_slice()),
        )
    }

    /// Forward pass of `ws.input` (rows already set) through every module; returns the logits.
    pub fn forward<'w>(&self, ws: &'w mut Workspace<T>, mut pass: Pass<'_>) -> &'w Matrix<T> {
        for (i, module) in self.modules.iter().enumerate() {
            let (before, rest) = ws.caches.split_at_mut(i);
            let x = if i == 0 {
                &ws.input
            } else {
                before[i - 1].output()
            };
            module.forward(x, &mut rest[0], &mut pass);
        }
        ws.caches.last().expect("at least one module").output()
    }

    /// Backward pass. On entry the last of `ws.deltas` holds dLoss/d(logits); on exit every
    /// module's parameter gradients are in `ws.grads` and `ws.deltas[i]` holds what module i's
    /// backward left there (for a linear layer, dLoss/dz).
    pub fn backward(&self, ws: &mut Workspace<T>) {
        let modules = &self.modules;
        backward_walk(
            ws,
            &self.starts,
            None,
            |i, x, cache, d_out, grads, d_input| {
                modules[i].backward(x, cache, d_out, grads, d_input)
            },
        );
    }

    /// [`Net::backward`], and dLoss/d(input) into `dx` (rows set to the batch's): for
    /// input-output Jacobians. The last of `ws.deltas` holds dLoss/d(logits) on entry.
    pub fn backward_to_input(&self, ws: &mut Workspace<T>, dx: &mut Matrix<T>) {
        let modules = &self.modules;
        backward_walk(
            ws,
            &self.starts,
            Some(dx),
            |i, x, cache, d_out, grads, d_input| {
                modules[i].backward(x, cache, d_out, grads, d_input)
            },
        );
    }

    /// Loss, and gradients into `ws.grads`, for the batch already in `ws.input`.
    pub fn loss_and_grads(
        &self,
        ws: &mut Workspace<T>,
        loss: Loss,
        targets: Targets<'_, T>,
        pass: Pass<'_>,
    ) -> f64 {
        let value = self.loss_forward(ws, loss, targets, pass);
        self.backward(ws);
        value
    }

    /// Loss of the batch already in `ws.input`, and a plain SGD step at learning rate `lr` fused
    /// into the backward pass ([`Module::backward_sgd`]): `ws.grads` may be stale afterwards.
    /// When the loss is not finite nothing is updated. Equal to [`Net::loss_and_grads`] then
    /// `Optimizer::step` with plain SGD, up to rounding.
    pub fn loss_and_sgd_step(
        &mut self,
        ws: &mut Workspace<T>,
        loss: Loss,
        targets: Targets<'_, T>,
        pass: Pass<'_>,
        lr: f64,
    ) -> f64 {
        let value = self.loss_forward(ws, loss, targets, pass);
        if !value.is_finite() {
            // A diverged step is not taken, as in a loop that checks the loss before updating.
            return value;
        }
        let (starts, modules) = (&self.starts, &mut self.modules);
        backward_walk(ws, starts, None, |i, x, cache, d_out, grads, d_input| {
            modules[i].backward_sgd(x, cache, d_out, lr, grads, d_input)
        });
        value
    }

    /// After a training forward pass in `ws`: every module folds the batch's statistics into its
    /// running statistics (batchnorm; [`Module::update_buffers`]).
    pub fn update_buffers(&mut self, ws: &Workspace<T>) {
        for (m, c) in self.modules.iter_mut().zip(&ws.caches) {
            m.update_buffers(c);
        }
    }

    /// Every buffer (state that is not trained, batchnorm's running statistics) with its
    /// `state_dict` key.
    pub fn buffers(&self) -> Vec<Buffer> {
        self.modules
            .iter()
            .zip(&self.prefixes)
            .flat_map(|(m, prefix)| {
                m.buffers().into_iter().map(move |b| Buffer {
                    key: format!("{prefix}.{}", b.key),
                    ..b
                })
            })
            .collect()
    }

    /// Sets the buffer whose `state_dict` key is `name` (a key of [`Net::buffers`]) to
    /// `values`, as loading a `state_dict` does ([`Module::set_buffer`]). Returns false,
    /// changing nothing, when there is no such buffer or the values do not fit it.
    pub fn set_buffer(&mut self, name: &str, values: &[f64]) -> bool {
        self.modules
            .iter_mut()
            .zip(&self.prefixes)
            .find_map(|(m, p)| {
                let key = name.strip_prefix(p.as_str())?.strip_prefix('.')?;
                Some(m.set_buffer(key, values))
            })
            .unwrap_or(false)
    }

    /// Forward pass, then the loss and its gradient dLoss/d(logits) into the last delta.
    pub fn loss_forward(
        &self,
        ws: &mut Workspace<T>,
        loss: Loss,
        targets: Targets<'_, T>,
        pass: Pass<'_>,
    ) -> f64 {
        self.forward(ws, pass);
        let last = self.modules.len() - 1;
        loss.forward_backward(
            ws.caches[last].output(),
            targets,
            Some(&mut ws.deltas[last]),
        )
    }
}

/// Calls `f(i, x, cache, d_out, grads, d_input)` for every module `i` from the output down, with
/// the module's input `x`, its forward cache, its dLoss/dy (`ws.deltas[i]`), its slice of the
/// gradients (`starts[i]..starts[i + 1]`) and the buffer for dLoss/dx: `ws.deltas[i - 1]` above
/// the first module, `input_grad` for the first.
fn backward_walk<T: Float>(
    ws: &mut Workspace<T>,
    starts: &[usize],
    mut input_grad: Option<&mut Matrix<T>>,
    mut f: impl FnMut(
        usize,
        &Matrix<T>,
        &mut Cache<T>,
        &mut Matrix<T>,
        &mut [Matrix<T>],
        Option<&mut Matrix<T>>,
    ),
) {
    for i in (0..ws.caches.len()).rev() {
        let (before, rest) = ws.caches.split_at_mut(i);
        let x = if i == 0 {
            &ws.input
        } else {
            before[i - 1].output()
        };
        let (lower, upper) = ws.deltas.split_at_mut(i);
        let d_input = match lower.last_mut() {
            Some(d) => Some(d),
            None => input_grad.as_deref_mut(),
        };
        f(
            i,
            x,
            &mut rest[0],
            &mut upper[0],
            &mut ws.grads[starts[i]..starts[i + 1]],
            d_input,
        );
    }
}

/// Preallocated buffers for forward and backward passes of up to `capacity` rows: after
/// construction a training step allocates nothing.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    pub input: Matrix<T>,       // (batch, in_width), a_0
    pub caches: Vec<Cache<T>>,  // one per module
    pub deltas: Vec<Matrix<T>>, // (batch, out_width_i), dLoss/da_i, then what backward leaves
    /// One gradient per parameter tensor, in `state_dict` order ([`Net::param_infos`]), shaped
    /// like the tensor (a vector as one row).
    pub grads: Vec<Matrix<T>>,
    pub capacity: usize,
}

impl<T: Float> Workspace<T> {
    /// Buffers for `net` and up to `capacity` rows.
    pub fn new(net: &Net<T>, capacity: usize) -> Self {
        Workspace {
            input: Matrix::zeros(capacity, net.modules[0].in_width()),
            caches: net.modules.iter().map(|m| m.cache(capacity)).collect(),
            deltas: net
                .modules
                .iter()
                .map(|m| Matrix::zeros(capacity, m.out_width()))
                .collect(),
            grads: net
                .infos
                .iter()
                .map(|p| super::module::grad_buffer(&p.dims))
                .collect(),
            capacity,
        }
    }

    /// Copies rows `idx` of `x` (a matrix or a split's rows) into the input buffer.
    pub fn load_rows(&mut self, x: &impl RowSource<T>, idx: &[usize]) {
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
