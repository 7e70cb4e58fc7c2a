//! A residual block as a module of a network spec: `res(MODULES)` is y = x + body(x), the body a
//! sequence of modules that keeps the width; `res(MODULES)*K` is K blocks with independent
//! parameters ([`super::spec::ModuleSpec::expand`]).
//!
//! ```text
//! forward:   y = x + body(x)
//! backward:  dx = dy + (∂body/∂x)^T dy
//! ```

use super::spec::{write_seq, Form, KindSpec, ModuleSpec, Parts, Syntax};

/// `res(MODULES)*K`: `repeat` residual blocks, each with its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ResSpec {
    pub body: Vec<ModuleSpec>,
    pub repeat: usize,
}

impl KindSpec for ResSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["res"],
        keys: &[],
        positional: 0,
        form: Form::Body,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let (body, repeat) = p.body()?;
        Ok(ResSpec { body, repeat })
    }

    fn args(&self) -> Vec<String> {
        Vec::new()
    }

    /// `res(BODY)`, then `*K` when K is not 1.
    fn write(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("res(")?;
        write_seq(f, &self.body)?;
        f.write_str(")")?;
        if self.repeat != 1 {
            write!(f, "*{}", self.repeat)?;
        }
        Ok(())
    }
}
