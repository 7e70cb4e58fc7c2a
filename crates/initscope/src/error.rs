//! Library errors. Every variant names what was wrong and where; the CLI prints the message on
//! one line and exits with code 2 (bad input).

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the library can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec string (`--init`, `--act`, `--data`, ...) that does not parse or names nothing known.
    #[error("{field} '{spec}': {reason}")]
    Spec {
        field: String,
        spec: String,
        reason: String,
    },
    /// A configuration value that is out of range or inconsistent with the rest of the config.
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
    /// A file that could not be read or written. The I/O error is part of the message (not a
    /// `source`), so printing the error chain names it once.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// A file that was read but whose contents are unusable (missing tensors, wrong shapes, ...).
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn spec(field: &str, spec: &str, reason: impl Into<String>) -> Self {
        Error::Spec {
            field: field.to_string(),
            spec: spec.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
