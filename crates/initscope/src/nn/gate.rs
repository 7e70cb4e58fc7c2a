//! A learnable scalar gate as a module of a network spec: `gate(v)`, alpha initialised to v
//! (ReZero's alpha = 0; SkipInit). Tensor `alpha`, shape `[1]`.
//!
//! ```text
//! forward:   y = alpha x
//! backward:  dx = alpha dy,  d alpha = Σ_ij dy_ij x_ij
//! ```

use super::spec::{Form, KindSpec, Parts, Syntax};
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
}
