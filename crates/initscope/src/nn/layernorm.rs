//! LayerNorm as a module of a network spec: `layernorm(eps=1e-5, affine=true, gamma=SPEC,
//! beta=SPEC)`, as `torch.nn.LayerNorm(width)`: each sample normalised over its units.
//!
//! ```text
//! forward:   mu = mean_j x_j,  var = mean_j (x_j - mu)^2,  x̂ = (x - mu) / sqrt(var + eps)
//!            y = gamma ⊙ x̂ + beta                          gamma, beta: (width)
//! backward:  dx = (1/sqrt(var + eps)) (g - mean_j g - x̂ mean_j (g ⊙ x̂)),  g = dy ⊙ gamma
//! ```

use super::spec::{push_init, push_number, Form, KindSpec, Parts, Syntax, NORM_EPS};
use crate::init::Init;

/// `layernorm(eps, affine, gamma, beta)`: `None` initializers are gamma 1 and beta 0.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormSpec {
    pub eps: f64,
    pub affine: bool,
    pub gamma: Option<Init>,
    pub beta: Option<Init>,
}

impl KindSpec for LayerNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["layernorm"],
        keys: &["eps", "affine", "gamma", "beta"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let affine = p.bool_or(1, true)?;
        let (gamma, beta) = (p.init(2)?, p.init(3)?);
        if !affine && (gamma.is_some() || beta.is_some()) {
            return Err(p.err("gamma and beta need affine=true"));
        }
        Ok(LayerNormSpec {
            eps: p.positive_or(0, NORM_EPS)?,
            affine,
            gamma,
            beta,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        push_number(&mut args, "eps", self.eps, NORM_EPS);
        if !self.affine {
            args.push("affine=false".into());
        }
        push_init(&mut args, "gamma", &self.gamma);
        push_init(&mut args, "beta", &self.beta);
        args
    }
}
