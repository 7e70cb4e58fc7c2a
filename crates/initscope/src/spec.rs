//! The spec grammar shared by `--act`, `--init`, `--bias-init`, `--data`, `--schedule` and TOML:
//! `name` or `name:args`, args comma-separated, each positional or `key=value`.
//!
//! ```text
//! constant:0.1      uniform:-0.1,0.1      normal:mean=0,std=0.02
//! perturbed:eps=1e-3,base=constant:0.1    (base= comes last and takes the rest)
//! ```

use crate::error::{Error, Result};

/// A parsed spec: a lower-cased name and its arguments in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: String,
    args: Vec<(Option<String>, String)>,
    field: String,
    text: String,
}

impl Spec {
    /// Parses `text`; `field` names the flag for error messages (e.g. "--init").
    pub fn parse(field: &str, text: &str) -> Result<Spec> {
        let text = text.trim();
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(Error::spec(field, text, "empty name"));
        }
        let mut args = Vec::new();
        let mut rest = rest.map(str::trim);
        if rest == Some("") {
            return Err(Error::spec(
                field,
                text,
                "':' must be followed by arguments",
            ));
        }
        while let Some(r) = rest {
            // `base=` takes the remainder of the string, so nested specs keep their commas.
            if let Some(base) = r.strip_prefix("base=") {
                args.push((Some("base".to_string()), base.trim().to_string()));
                break;
            }
            let (item, tail) = match r.split_once(',') {
                Some((i, t)) => (i, Some(t)),
                None => (r, None),
            };
            let item = item.trim();
            if item.is_empty() {
                return Err(Error::spec(field, text, "empty argument"));
            }
            match item.split_once('=') {
                Some((k, v)) => {
                    let k = k.trim().to_ascii_lowercase();
                    if args
                        .iter()
                        .any(|(key, _)| key.as_deref() == Some(k.as_str()))
                    {
                        return Err(Error::spec(
                            field,
                            text,
                            format!("argument '{k}' given twice"),
                        ));
                    }
                    args.push((Some(k), v.trim().to_string()))
                }
                None => {
                    if args.iter().any(|(k, _)| k.is_some()) {
                        return Err(Error::spec(
                            field,
                            text,
                            format!("positional argument '{item}' after a key=value argument"),
                        ));
                    }
                    args.push((None, item.to_string()))
                }
            }
            rest = tail.map(str::trim);
        }
        Ok(Spec {
            name: name.to_ascii_lowercase(),
            args,
            field: field.to_string(),
            text: text.to_string(),
        })
    }

    /// Whether every argument is written `key=value` (none positional).
    pub fn all_keyed(&self) -> bool {
        self.args.iter().all(|(k, _)| k.is_some())
    }

    /// An error about this spec.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::spec(&self.field, &self.text, reason)
    }

    /// Checks that every argument is one of `keys` (positional arguments take them in order).
    /// Returns the values by key, in the order of `keys`.
    pub fn bind(&self, keys: &[&str]) -> Result<Vec<Option<String>>> {
        let mut out: Vec<Option<String>> = vec![None; keys.len()];
        for (pos, (key, value)) in self.args.iter().enumerate() {
            let slot = match key {
                Some(k) => keys.iter().position(|want| want == k).ok_or_else(|| {
                    let known = if keys.is_empty() {
                        "it takes no arguments".to_string()
                    } else {
                        format!("known: {}", keys.join(", "))
                    };
                    self.error(format!("unknown argument '{k}' ({known})"))
                })?,
                None => {
                    if pos >= keys.len() {
                        return Err(self.error(format!(
                            "too many arguments ({} takes at most {})",
                            self.name,
                            keys.len()
                        )));
                    }
                    pos
                }
            };
            out[slot] = Some(value.clone());
        }
        Ok(out)
    }

    /// Parses an optional bound value as f64, with a default.
    pub fn f64_or(&self, key: &str, value: &Option<String>, default: f64) -> Result<f64> {
        match value {
            None => Ok(default),
            Some(v) => parse_f64(v)
                .ok_or_else(|| self.error(format!("{key}='{v}' is not a finite number"))),
        }
    }

    /// Parses an optional bound value as an unsigned integer, with a default.
    pub fn usize_or(&self, key: &str, value: &Option<String>, default: usize) -> Result<usize> {
        match value {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| self.error(format!("{key}='{v}' is not a non-negative integer"))),
        }
    }

    /// Parses an optional bound value as u64, with a default.
    pub fn u64_or(&self, key: &str, value: &Option<String>, default: u64) -> Result<u64> {
        match value {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| self.error(format!("{key}='{v}' is not a non-negative integer"))),
        }
    }
}

/// A finite f64, or None.
pub fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Formats a float so that it parses back to the same value and reads naturally (0.1, not 1e-1).
pub fn fmt_f64(x: f64) -> String {
    format!("{x}")
}

/// A number as the derivations print it: 0, four decimals between 1e-3 and 1e4, else
/// scientific with three.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positional_and_named_args() {
        let s = Spec::parse("--init", "Uniform:-0.1, 0.1").unwrap();
        assert_eq!(s.name, "uniform");
        assert_eq!(
            s.bind(&["a", "b"]).unwrap(),
            vec![Some("-0.1".into()), Some("0.1".into())]
        );
        let s = Spec::parse("--init", "normal:std=0.02").unwrap();
        assert_eq!(
            s.bind(&["mean", "std"]).unwrap(),
            vec![None, Some("0.02".into())]
        );
    }

    #[test]
    fn base_takes_the_rest_of_the_string() {
        let s = Spec::parse("--init", "perturbed:eps=1e-3,base=uniform:-1,1").unwrap();
        let v = s.bind(&["eps", "base"]).unwrap();
        assert_eq!(v[1].as_deref(), Some("uniform:-1,1"));
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(Spec::parse("--init", "").is_err());
        assert!(Spec::parse("--init", "constant:").is_err());
        assert!(Spec::parse("--init", "uniform:a=1,2").is_err());
        assert!(Spec::parse("--init", "uniform:1,,2").is_err());
        let s = Spec::parse("--init", "constant:1,2").unwrap();
        let e = s.bind(&["value"]).unwrap_err().to_string();
        assert!(e.contains("--init 'constant:1,2'"), "{e}");
        let s = Spec::parse("--init", "constant:x=1").unwrap();
        assert!(s
            .bind(&["value"])
            .unwrap_err()
            .to_string()
            .contains("unknown argument 'x'"));
    }
}
