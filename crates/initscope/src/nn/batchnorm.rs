//! BatchNorm as a module of a network spec: `batchnorm(eps=1e-5, momentum=0.1, gamma=SPEC,
//! beta=SPEC)`, as `torch.nn.BatchNorm1d(width)`: each unit normalised over the batch.
//!
//! ```text
//! training:    mu_j = mean_n x_nj,  var_j = mean_n (x_nj - mu_j)^2 (biased),
//!              y = gamma ⊙ (x - mu) / sqrt(var + eps) + beta;
//!              running_mean = (1 - m) running_mean + m mu,
//!              running_var  = (1 - m) running_var + m var · N/(N-1)   (unbiased)
//! evaluation:  y = gamma ⊙ (x - running_mean) / sqrt(running_var + eps) + beta
//! ```

use super::spec::{
    push_init, push_number, Form, KindSpec, Parts, Syntax, BATCHNORM_MOMENTUM, NORM_EPS,
};
use crate::init::Init;
use crate::spec::fmt_f64;

/// `batchnorm(eps, momentum, gamma, beta)`: `None` initializers are gamma 1 and beta 0.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormSpec {
    pub eps: f64,
    pub momentum: f64,
    pub gamma: Option<Init>,
    pub beta: Option<Init>,
}

impl KindSpec for BatchNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["batchnorm"],
        keys: &["eps", "momentum", "gamma", "beta"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let momentum = p.number_or(1, BATCHNORM_MOMENTUM)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(p.err(format!(
                "momentum must be in [0, 1], got {}",
                fmt_f64(momentum)
            )));
        }
        Ok(BatchNormSpec {
            eps: p.positive_or(0, NORM_EPS)?,
            momentum,
            gamma: p.init(2)?,
            beta: p.init(3)?,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        push_number(&mut args, "eps", self.eps, NORM_EPS);
        push_number(&mut args, "momentum", self.momentum, BATCHNORM_MOMENTUM);
        push_init(&mut args, "gamma", &self.gamma);
        push_init(&mut args, "beta", &self.beta);
        args
    }
}
