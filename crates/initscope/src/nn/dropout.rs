//! Inverted dropout as a module of a network spec: `dropout(p)`, 0 <= p < 1.
//!
//! ```text
//! training:    y = x ⊙ m / (1 - p),  m_ij ~ Bernoulli(1 - p);   dx = dy ⊙ m / (1 - p)
//! evaluation:  y = x
//! ```

use super::spec::{Form, KindSpec, Parts, Syntax};
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
}
