//! A learnable scalar applied to every unit: the module of `gate(v)` ([`super::gate`]) and of
//! `shift(v)` ([`super::shift`]). Tensor `alpha` (a gate) or `bias` (a shift), shape `[1]`.
//!
//! ```text
//! gate:   y = alpha x    dx = alpha dy    d alpha = Σ_ij dy_ij x_ij
//! shift:  y = x + s      dx = dy          ds      = Σ_ij dy_ij
//! ```

use super::module::{Anatomy, Cache, Facts, Module, Pass, Step0, TensorDecl};
use super::param::ParamKind;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_num;

/// What the scalar does to every unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarOp {
    /// `y = alpha x` (a gate).
    Scale,
    /// `y = x + s` (a shift).
    Add,
}

/// A learnable scalar on `width` units.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar<T> {
    pub width: usize,
    pub value: Vec<T>, // [1]
    pub op: ScalarOp,
}

impl<T: Float> Scalar<T> {
    /// A gate starting at `alpha`.
    pub fn gate(width: usize, alpha: f64) -> Self {
        Scalar {
            width,
            value: vec![T::from_f64(alpha)],
            op: ScalarOp::Scale,
        }
    }

    /// A shift starting at `s`.
    pub fn shift(width: usize, s: f64) -> Self {
        Scalar {
            width,
            value: vec![T::from_f64(s)],
            op: ScalarOp::Add,
        }
    }
}

impl<T: Float> Module<T> for Scalar<T> {
    fn kind(&self) -> &'static str {
        match self.op {
            ScalarOp::Scale => "gate",
            ScalarOp::Add => "shift",
        }
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        match self.op {
            ScalarOp::Scale => Anatomy::Gate,
            ScalarOp::Add => Anatomy::Shift,
        }
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        let (key, kind) = match self.op {
            ScalarOp::Scale => ("alpha", ParamKind::Gate),
            ScalarOp::Add => ("bias", ParamKind::Shift),
        };
        vec![TensorDecl::vector(key, 1, kind)]
    }

    fn value(&self, _k: usize) -> &[T] {
        &self.value
    }

    fn value_mut(&mut self, _k: usize) -> &mut [T] {
        &mut self.value
    }

    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.pre = Matrix::zeros(0, self.width);
        c
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        cache.act.set_rows(x.rows());
        let v = self.value[0];
        let out = cache.act.as_mut_slice().iter_mut().zip(x.as_slice());
        match self.op {
            ScalarOp::Scale => out.for_each(|(y, &x)| *y = v * x),
            ScalarOp::Add => out.for_each(|(y, &x)| *y = x + v),
        }
    }

    fn backward(
        &self,
        x: &Matrix<T>,
        _cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let mut g = T::ZERO;
        match self.op {
            ScalarOp::Scale => {
                for (&d, &x) in dy.as_slice().iter().zip(x.as_slice()) {
                    g += d * x;
                }
            }
            ScalarOp::Add => dy.as_slice().iter().for_each(|&d| g += d),
        }
        grads[0].as_mut_slice()[0] = g;
        if let Some(dx) = dx {
            dx.set_rows(dy.rows());
            let out = dx.as_mut_slice().iter_mut().zip(dy.as_slice());
            match self.op {
                ScalarOp::Scale => {
                    let a = self.value[0];
                    out.for_each(|(o, &d)| *o = a * d);
                }
                ScalarOp::Add => out.for_each(|(o, &d)| *o = d),
            }
        }
    }

    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        let v = self.value[0].to_f64();
        let g = s.grads[0].as_slice()[0].to_f64();
        match self.op {
            ScalarOp::Scale if v == 0.0 => {
                facts.zero.push(
                    "gate alpha = 0, so its output alpha x is 0 for every input and the delta it passes back, alpha delta, is 0: every module before it (at the end of a branch: the whole branch) gets no gradient through it at step 0".into(),
                );
                facts.notes.push(if g != 0.0 {
                    format!("alpha's own gradient is <delta, x> = {} (nonzero), so alpha moves at step 0 and what comes before it wakes at step 1", fmt_num(g))
                } else {
                    "alpha's own gradient <delta, x> is 0 too (x is 0 or orthogonal to delta), so alpha does not move at step 0".into()
                });
            }
            ScalarOp::Scale => facts.notes.push(format!(
                "alpha = {} scales the branch and the delta passed into it; d alpha = <delta, F(x)> = {}",
                fmt_num(v),
                fmt_num(g)
            )),
            ScalarOp::Add if g == 0.0 => facts
                .zero
                .push("ds = Σ delta = 0 (the delta sums to 0 over the batch and the units)".into()),
            ScalarOp::Add => {}
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}
