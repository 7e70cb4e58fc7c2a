//! A pointwise activation as a module of a network spec: `relu`, `leaky_relu(0.2)` (the same as
//! `leaky_relu:0.2`), `elu:alpha=1`, by the `--act` names and arguments ([`Activation`]).
//!
//! ```text
//! forward:   y = f(x)          x, y: (batch, width)
//! backward:  dx = dy ⊙ f'(x)
//! ```
//! An activation right after a linear layer is fused into it ([`super::Dense`]); [`Act`] is
//! one anywhere else (after a norm, a block, at the start of a body).

use super::build::Builder;
use super::module::{Anatomy, Cache, Facts, Module, Pass, Step0};
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::activation::{Activation, ACTIVATION_NAMES};
use crate::matrix::Matrix;
use crate::scalar::Float;

impl KindSpec for Activation {
    const SYNTAX: Syntax = Syntax {
        names: ACTIVATION_NAMES,
        keys: &[],
        positional: 0,
        form: Form::Act,
    };

    const KIND: &'static str = "activation";

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        Activation::parse("activation", &p.act_text()).map_err(|e| p.err(e))
    }

    fn args(&self) -> Vec<String> {
        Vec::new()
    }

    /// Its own canonical form (`leaky_relu:0.2`).
    fn write(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }

    fn build<T: Float>(
        &self,
        width: usize,
        _b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        Ok(Box::new(Act {
            width,
            activation: *self,
        }))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        self.torch_module()
    }
}

/// A pointwise activation on its own: no tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Act {
    pub width: usize,
    pub activation: Activation,
}

impl<T: Float> Module<T> for Act {
    fn kind(&self) -> &'static str {
        "activation"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::Activation(self.activation)
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    /// `pre` holds x, `act` f(x).
    fn cache(&self, capacity: usize) -> Cache<T> {
        Cache::new(capacity, self.width, false)
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        cache.pre.set_rows(x.rows());
        cache.act.set_rows(x.rows());
        cache.pre.as_mut_slice().copy_from_slice(x.as_slice());
        self.activation
            .forward_rows(None, cache.pre.as_mut_slice(), cache.act.as_mut_slice());
    }

    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        _grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        self.activation.backward_in_place(
            cache.pre.as_slice(),
            cache.act.as_slice(),
            dy.as_mut_slice(),
        );
        if let Some(dx) = dx {
            dx.set_rows(dy.rows());
            dx.as_mut_slice().copy_from_slice(dy.as_slice());
        }
    }

    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        activation_facts(
            self.activation,
            s.cache.pre.as_slice(),
            s.cache.act.as_slice(),
            facts,
        );
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// The step-0 facts of activation `a` that turned `pre` (z) into `out` (f(z)), given that a
/// nonzero delta reached it: the entries sitting exactly at relu's kink (z = 0) and whether the
/// slope is 0 everywhere (then nothing passes back; returned).
pub(crate) fn activation_facts<T: Float>(
    a: Activation,
    pre: &[T],
    out: &[T],
    facts: &mut Facts,
) -> bool {
    // A kink at 0 whose derivative is a convention: say which value the units sitting there
    // got (PyTorch's relu'(0) = 0 stops them; relu:grad0=1 passes the gradient).
    if let Some(g0) = a.grad_at_zero() {
        let at_zero = pre.iter().filter(|&&z| z == T::ZERO).count();
        if at_zero > 0 {
            let what = match a {
                Activation::Relu => "relu'(0) = 0 (PyTorch's convention) was used: no gradient passes there; relu:grad0=1 would pass it".to_string(),
                Activation::ReluGrad1 => "relu'(0) = 1 (relu:grad0=1, the ZerO authors' convention) was used: the gradient passes there; PyTorch's relu would stop it".to_string(),
                _ => format!("f'(0) = {} was used", crate::spec::fmt_num(g0)),
            };
            facts.notes.push(format!(
                "{at_zero} of {} pre-activations sit exactly at z = 0, where {what}",
                pre.len()
            ));
        }
    }
    let slope_zero = pre.iter().zip(out).all(|(&z, &f)| a.df(z, f) == T::ZERO);
    if slope_zero {
        facts.zero.push(format!(
            "{}'(z) = 0 for every input and unit, so delta ⊙ f'(z) = 0",
            a.spec()
        ));
    }
    slope_zero
}
