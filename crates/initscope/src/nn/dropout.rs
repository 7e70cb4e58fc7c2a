//! Inverted dropout as a module of a network spec: `dropout(p)`, 0 <= p < 1.
//!
//! ```text
//! training:    y = x ⊙ m / (1 - p),  m_ij ~ Bernoulli(1 - p);   dx = dy ⊙ m / (1 - p)
//! evaluation:  y = x
//! ```

use super::build::Builder;
use super::module::{Anatomy, Cache, Module, Pass};
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::matrix::Matrix;
use crate::rng;
use crate::scalar::Float;
use crate::spec::fmt_f64;

/// `dropout(p)`: zeroes each unit with probability p while training.
#[derive(Clone, Debug, PartialEq)]
pub struct DropoutSpec(pub f64);

impl KindSpec for DropoutSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["dropout"],
        keys: &["p"],
        positional: 1,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let prob = p.number(0, p.required(0)?)?;
        if !(0.0..1.0).contains(&prob) {
            return Err(p.err(format!("p must be in [0, 1), got {}", fmt_f64(prob))));
        }
        Ok(DropoutSpec(prob))
    }

    fn args(&self) -> Vec<String> {
        vec![fmt_f64(self.0)]
    }

    fn build<T: Float>(
        &self,
        width: usize,
        _b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        Ok(Box::new(Dropout { width, p: self.0 }))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        format!("nn.Dropout({})", fmt_f64(self.0))
    }
}

/// Inverted dropout on its own (a plain MLP's dropout is fused into its hidden layers,
/// [`super::Dense`]); masks come from the run's dropout stream, drawn in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    pub width: usize,
    pub p: f64,
}

impl<T: Float> Module<T> for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::Dropout(self.p)
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    /// `out` holds `x ⊙ mask`, `mask` 0 or 1/(1-p) (all ones in evaluation).
    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, true);
        c.pre = Matrix::zeros(0, self.width);
        c.act = Matrix::zeros(0, self.width);
        c
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, pass: &mut Pass<'_>) {
        let batch = x.rows();
        cache.out.set_rows(batch);
        cache.mask.set_rows(batch);
        match pass {
            Pass::Train(rng) if self.p > 0.0 => {
                let keep = T::from_f64(1.0 / (1.0 - self.p));
                for m in cache.mask.as_mut_slice() {
                    *m = if rng::uniform01(rng) < self.p {
                        T::ZERO
                    } else {
                        keep
                    };
                }
            }
            _ => cache.mask.fill(T::ONE),
        }
        let (out, mask) = (&mut cache.out, &cache.mask);
        for ((o, &x), &m) in out
            .as_mut_slice()
            .iter_mut()
            .zip(x.as_slice())
            .zip(mask.as_slice())
        {
            *o = x * m;
        }
    }

    /// `dx = dy ⊙ mask`.
    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        _grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        if let Some(dx) = dx {
            dx.set_rows(dy.rows());
            for ((o, &d), &m) in dx
                .as_mut_slice()
                .iter_mut()
                .zip(dy.as_slice())
                .zip(cache.mask.as_slice())
            {
                *o = d * m;
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}
