//! A learnable scalar shift as a module of a network spec: `shift(v)`, s initialised to v
//! (Fixup's scalar biases). Tensor `bias`, shape `[1]`.
//!
//! ```text
//! forward:   y = x + s
//! backward:  dx = dy,  ds = Σ_ij dy_ij
//! ```

use super::build::Builder;
use super::module::{Cache, Module, Pass, TensorDecl};
use super::param::ParamKind;
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_f64;

/// `shift(v)`: y = x + s with a learnable scalar s initialised to v.
#[derive(Clone, Debug, PartialEq)]
pub struct ShiftSpec(pub f64);

impl KindSpec for ShiftSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["shift"],
        keys: &["value"],
        positional: 1,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        Ok(ShiftSpec(p.number(0, p.required(0)?)?))
    }

    fn args(&self) -> Vec<String> {
        vec![fmt_f64(self.0)]
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let v = b.shift_value(self.0);
        b.note("bias", format!("constant:{}", fmt_f64(v)));
        Ok(Box::new(Shift::<T>::new(width, v)))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        format!("Shift({})", fmt_f64(self.0))
    }
}

/// `y = x + s` with a learnable scalar `s` (tensor `bias`, shape `[1]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Shift<T> {
    pub width: usize,
    pub shift: Vec<T>, // [1]
}

impl<T: Float> Shift<T> {
    pub fn new(width: usize, shift: f64) -> Self {
        Shift {
            width,
            shift: vec![T::from_f64(shift)],
        }
    }
}

impl<T: Float> Module<T> for Shift<T> {
    fn kind(&self) -> &'static str {
        "shift"
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        vec![TensorDecl {
            key: "bias".into(),
            dims: vec![1],
            kind: ParamKind::Shift,
            linear: false,
        }]
    }

    fn value(&self, _k: usize) -> &[T] {
        &self.shift
    }

    fn value_mut(&mut self, _k: usize) -> &mut [T] {
        &mut self.shift
    }

    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.pre = Matrix::zeros(0, self.width);
        c
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        cache.act.set_rows(x.rows());
        let s = self.shift[0];
        for (y, &x) in cache.act.as_mut_slice().iter_mut().zip(x.as_slice()) {
            *y = x + s;
        }
    }

    /// `ds = Σ dy`, `dx = dy`.
    fn backward(
        &self,
        _x: &Matrix<T>,
        _cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let mut g = T::ZERO;
        for &d in dy.as_slice() {
            g += d;
        }
        grads[0].as_mut_slice()[0] = g;
        if let Some(dx) = dx {
            dx.set_rows(dy.rows());
            dx.as_mut_slice().copy_from_slice(dy.as_slice());
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}
