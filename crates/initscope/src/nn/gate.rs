//! A learnable scalar gate as a module of a network spec: `gate(v)`, alpha initialised to v
//! (ReZero's alpha = 0; SkipInit). Tensor `alpha`, shape `[1]`.
//!
//! ```text
//! forward:   y = alpha x
//! backward:  dx = alpha dy,  d alpha = Σ_ij dy_ij x_ij
//! ```

use super::build::Builder;
use super::module::Module;
use super::scalar::Scalar;
use super::spec::{Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
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
        Ok(Box::new(Scalar::<T>::gate(width, v)))
    }

    fn torch(&self, _width: usize, _t: &Torch) -> String {
        format!("Gate({})", fmt_f64(self.0))
    }
}
