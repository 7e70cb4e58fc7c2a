//! A pointwise activation as a module of a network spec: `relu`, `leaky_relu(0.2)` (the same as
//! `leaky_relu:0.2`), `elu:alpha=1`, by the `--act` names and arguments ([`Activation`]).
//!
//! ```text
//! forward:   y = f(x)          x, y: (batch, width)
//! backward:  dx = dy ⊙ f'(x)
//! ```

use super::spec::{Form, KindSpec, Parts, Syntax};
use crate::activation::{Activation, ACTIVATION_NAMES};

impl KindSpec for Activation {
    const SYNTAX: Syntax = Syntax {
        names: ACTIVATION_NAMES,
        keys: &[],
        positional: 0,
        form: Form::Act,
    };

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
}
