//! A learnable scalar shift as a module of a network spec: `shift(v)`, s initialised to v
//! (Fixup's scalar biases). Tensor `bias`, shape `[1]`.
//!
//! ```text
//! forward:   y = x + s
//! backward:  dx = dy,  ds = Σ_ij dy_ij
//! ```

use super::build::Builder;
use super::module::Module;
use super::scalar::Scalar;
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
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
        Ok(Box::new(Scalar::<T>::shift(width, v)))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        format!("Shift({})", fmt_f64(self.0))
    }
}
