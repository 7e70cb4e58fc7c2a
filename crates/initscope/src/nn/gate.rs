//! A learnable scalar gate as a module of a network spec: `gate(v)`, alpha initialised to v
//! (ReZero's alpha = 0; SkipInit). Tensor `alpha`, shape `[1]`.
//!
//! ```text
//! forward:   y = alpha x
//! backward:  dx = alpha dy,  d alpha = Σ_ij dy_ij x_ij
//! ```

use super::build::Builder;
use super::module::{Cache, Module, Pass, TensorDecl};
use super::param::ParamKind;
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_f64;

/// `gate(v)`: y = alpha x with a learnable scalar alpha initialised to v.
#[derive(Clone, Debug, PartialEq)]
pub struct GateSpec(pub f64);

impl KindSpec for GateSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["gate"],
        keys: &["value"],
        positional: 1,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        Ok(GateSpec(p.number(0, p.required(0)?)?))
    }

    fn args(&self) -> Vec<String> {
        vec![fmt_f64(self.0)]
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let v = b.gate_value(self.0);
        b.note("alpha", format!("constant:{}", fmt_f64(v)));
        Ok(Box::new(Gate::<T>::new(width, v)))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        format!("Gate({})", fmt_f64(self.0))
    }
}

/// `y = alpha x` with a learnable scalar `alpha` (tensor `alpha`, shape `[1]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Gate<T> {
    pub width: usize,
    pub alpha: Vec<T>, // [1]
}

impl<T: Float> Gate<T> {
    pub fn new(width: usize, alpha: f64) -> Self {
        Gate {
            width,
            alpha: vec![T::from_f64(alpha)],
        }
    }
}

impl<T: Float> Module<T> for Gate<T> {
    fn kind(&self) -> &'static str {
        "gate"
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        vec![TensorDecl {
            key: "alpha".into(),
            dims: vec![1],
            kind: ParamKind::Gate,
            linear: false,
        }]
    }

    fn value(&self, _k: usize) -> &[T] {
        &self.alpha
    }

    fn value_mut(&mut self, _k: usize) -> &mut [T] {
        &mut self.alpha
    }

    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.pre = Matrix::zeros(0, self.width);
        c
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        cache.act.set_rows(x.rows());
        let a = self.alpha[0];
        for (y, &x) in cache.act.as_mut_slice().iter_mut().zip(x.as_slice()) {
            *y = a * x;
        }
    }

    /// `d alpha = Σ dy ⊙ x` (row by row), `dx = alpha dy`.
    fn backward(
        &self,
        x: &Matrix<T>,
        _cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let mut g = T::ZERO;
        for (&d, &x) in dy.as_slice().iter().zip(x.as_slice()) {
            g += d * x;
        }
        grads[0].as_mut_slice()[0] = g;
        if let Some(dx) = dx {
            dx.set_rows(dy.rows());
            let a = self.alpha[0];
            for (o, &d) in dx.as_mut_slice().iter_mut().zip(dy.as_slice()) {
                *o = a * d;
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}
