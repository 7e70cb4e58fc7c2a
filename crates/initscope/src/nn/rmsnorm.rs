//! RMSNorm as a module of a network spec: `rmsnorm(eps=..., gamma=SPEC)`, as
//! `torch.nn.RMSNorm(width)`: each sample divided by its root mean square; a gain, no bias.
//!
//! ```text
//! forward:   r = sqrt(mean_j x_j^2 + eps),  y = gamma ⊙ x / r        gamma: (width)
//! backward:  dx = (1/r) (g - (x/r) mean_j (g ⊙ x/r)),  g = dy ⊙ gamma
//! ```
//! The default eps is the dtype's machine epsilon (PyTorch's `eps=None`).

use super::spec::{push_init, Form, KindSpec, Parts, Syntax};
use crate::init::Init;
use crate::spec::fmt_f64;

/// `rmsnorm(eps, gamma)`: `eps: None` is the dtype's machine epsilon; `gamma: None` is 1.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormSpec {
    pub eps: Option<f64>,
    pub gamma: Option<Init>,
}

impl KindSpec for RmsNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["rmsnorm"],
        keys: &["eps", "gamma"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let eps = match p.value(0) {
            None => None,
            Some(_) => Some(p.positive_or(0, 0.0)?),
        };
        Ok(RmsNormSpec {
            eps,
            gamma: p.init(1)?,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .eps
            .iter()
            .map(|e| format!("eps={}", fmt_f64(*e)))
            .collect();
        push_init(&mut args, "gamma", &self.gamma);
        args
    }
}
