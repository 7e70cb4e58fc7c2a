//! Initializers: one enum, one [`Init::fill`]; every variant documents its formula and source.
//!
//! Values are drawn in f64 from the layer's own stream ([`crate::rng::stream`] with
//! `Stream::Weight(l)` or `Stream::Bias(l)`) and cast to the training precision afterwards, so the
//! starting point never depends on the precision, the optimizer or another layer's initializer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use crate::spec::{fmt_f64, Spec};

/// The fans of the layer a tensor belongs to: weights are `(fan_out, fan_in)`, the bias has
/// `fan_out` entries, and both see the layer's fans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    pub fan_in: usize,
    pub fan_out: usize,
}

/// A way to fill a weight matrix or bias vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Init {
    /// Every entry 0.
    Zeros,
    /// Every entry 1.
    Ones,
    /// Every entry `value`.
    Constant { value: f64 },
    /// U(a, b). `torch.nn.init.uniform_`.
    Uniform { a: f64, b: f64 },
    /// N(mean, std^2), untruncated. `torch.nn.init.normal_`.
    Normal { mean: f64, std: f64 },
    /// PyTorch's `nn.Linear` default for weight and bias alike: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    /// (For the weight this is `kaiming_uniform_(a=sqrt(5))`, whose bound simplifies to
    /// 1/sqrt(fan_in); for the bias `reset_parameters` uses the same bound.)
    Pytorch,
}

/// Names accepted by [`Init::parse`].
pub const INIT_NAMES: &[&str] = &["zeros", "ones", "constant", "uniform", "normal", "pytorch"];

impl Init {
    /// Fills `out` (row-major `(fan_out, fan_in)` for weights, `fan_out` for biases).
    pub fn fill(&self, out: &mut [f64], fans: Fans, rng: &mut Rng) {
        match *self {
            Init::Zeros => out.fill(0.0),
            Init::Ones => out.fill(1.0),
            Init::Constant { value } => out.fill(value),
            Init::Uniform { a, b } => out.iter_mut().for_each(|x| *x = rng::uniform(rng, a, b)),
            Init::Normal { mean, std } => out
                .iter_mut()
                .for_each(|x| *x = mean + std * rng::normal(rng)),
            Init::Pytorch => {
                let bound = 1.0 / (fans.fan_in.max(1) as f64).sqrt();
                out.iter_mut()
                    .for_each(|x| *x = rng::uniform(rng, -bound, bound));
            }
        }
    }

    /// The canonical spec string.
    pub fn spec(&self) -> String {
        match self {
            Init::Zeros => "zeros".into(),
            Init::Ones => "ones".into(),
            Init::Constant { value } => format!("constant:{}", fmt_f64(*value)),
            Init::Uniform { a, b } => format!("uniform:{},{}", fmt_f64(*a), fmt_f64(*b)),
            Init::Normal { mean, std } => {
                format!("normal:mean={},std={}", fmt_f64(*mean), fmt_f64(*std))
            }
            Init::Pytorch => "pytorch".into(),
        }
    }

    /// Parses an initializer spec, naming `field` in errors.
    pub fn parse(field: &str, text: &str) -> Result<Init> {
        let spec = Spec::parse(field, text)?;
        let init = match spec.name.as_str() {
            "zeros" | "zero" => {
                spec.bind(&[])?;
                Init::Zeros
            }
            "ones" => {
                spec.bind(&[])?;
                Init::Ones
            }
            "constant" | "const" => {
                let v = spec.bind(&["value"])?;
                if v[0].is_none() {
                    return Err(spec.error("constant needs a value, e.g. constant:0.1"));
                }
                Init::Constant {
                    value: spec.f64_or("value", &v[0], 0.0)?,
                }
            }
            "uniform" => {
                let v = spec.bind(&["a", "b"])?;
                let a = spec.f64_or("a", &v[0], 0.0)?;
                let b = spec.f64_or("b", &v[1], 1.0)?;
                if a > b {
                    return Err(spec.error(format!("uniform needs a <= b, got a={a}, b={b}")));
                }
                Init::Uniform { a, b }
            }
            "normal" => {
                let v = spec.bind(&["mean", "std"])?;
                let mean = spec.f64_or("mean", &v[0], 0.0)?;
                let std = spec.f64_or("std", &v[1], 1.0)?;
                if std < 0.0 {
                    return Err(spec.error(format!("normal needs std >= 0, got {std}")));
                }
                Init::Normal { mean, std }
            }
            "pytorch" | "torch" | "default" => {
                spec.bind(&[])?;
                Init::Pytorch
            }
            other => {
                return Err(spec.error(format!(
                    "unknown initializer '{other}' (known: {})",
                    INIT_NAMES.join(", ")
                )))
            }
        };
        Ok(init)
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Init::parse("init", s)
    }
}

impl From<Init> for String {
    fn from(i: Init) -> String {
        i.spec()
    }
}

impl TryFrom<String> for Init {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    fn draw(init: &Init, n: usize, fans: Fans) -> Vec<f64> {
        let mut out = vec![0.0; n];
        init.fill(&mut out, fans, &mut stream(1, Stream::Weight(1)));
        out
    }

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (
            m,
            xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0),
        )
    }

    #[test]
    fn pytorch_default_is_uniform_with_bound_one_over_sqrt_fan_in() {
        let fans = Fans {
            fan_in: 64,
            fan_out: 10,
        };
        let xs = draw(&Init::Pytorch, 20_000, fans);
        let bound = 1.0 / 8.0;
        assert!(xs.iter().all(|x| x.abs() <= bound));
        let (m, v) = mean_var(&xs);
        let var = bound * bound / 3.0;
        // Standard error of the mean sqrt(var/n); of the variance ~ var*sqrt(0.8/n) for a uniform.
        assert!(m.abs() < 5.0 * (var / 20_000.0).sqrt(), "mean {m}");
        assert!(
            (v - var).abs() < 5.0 * var * (0.8 / 20_000.0f64).sqrt(),
            "var {v} vs {var}"
        );
    }

    #[test]
    fn normal_matches_its_mean_and_variance() {
        let init = Init::parse("--init", "normal:mean=0.5,std=0.02").unwrap();
        let xs = draw(
            &init,
            20_000,
            Fans {
                fan_in: 3,
                fan_out: 3,
            },
        );
        let (m, v) = mean_var(&xs);
        assert!((m - 0.5).abs() < 5.0 * 0.02 / (20_000f64).sqrt());
        assert!((v - 4e-4).abs() < 5.0 * 4e-4 * (2.0 / 20_000f64).sqrt());
    }

    #[test]
    fn specs_round_trip() {
        for s in [
            "zeros",
            "ones",
            "constant:0.1",
            "uniform:-0.1,0.1",
            "normal:mean=0,std=0.02",
            "pytorch",
        ] {
            let init = Init::parse("--init", s).unwrap();
            assert_eq!(Init::parse("--init", &init.spec()).unwrap(), init);
        }
        assert_eq!(
            Init::parse("--init", "normal:std=0.02").unwrap(),
            Init::Normal {
                mean: 0.0,
                std: 0.02
            }
        );
        assert!(Init::parse("--init", "uniform:1,-1").is_err());
        assert!(Init::parse("--init", "xavier_banana")
            .unwrap_err()
            .to_string()
            .contains("unknown initializer"));
    }
}
