//! Datasets: built-in synthetic sets (this module's [`synthetic`]) behind one [`DataSpec`].
//!
//! A dataset is always two splits, train and test, with f64 features; training converts them to
//! the run's precision once.

pub mod synthetic;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::spec::Spec;

pub use synthetic::Synthetic;

/// What the targets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Integer labels 0..classes.
    Classification { classes: usize },
    /// Real-valued targets with `outputs` columns.
    Regression { outputs: usize },
}

/// The targets of a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    Classes(Vec<u32>),
    Values(Matrix<f64>), // (n, outputs)
}

/// One split: features `(n, dim)` and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub x: Matrix<f64>,
    pub y: Labels,
}

impl Split {
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }
}

/// A loaded dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The canonical spec it was made from.
    pub name: String,
    pub task: Task,
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    pub fn input_dim(&self) -> usize {
        self.train.x.cols()
    }
}

/// Where the data comes from. For now: the built-in synthetic sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DataSpec {
    Synthetic(Synthetic),
}

impl DataSpec {
    pub fn parse(field: &str, text: &str) -> Result<DataSpec> {
        let spec = Spec::parse(field, text)?;
        Ok(DataSpec::Synthetic(Synthetic::from_spec(&spec)?))
    }

    /// Generates or reads the dataset.
    pub fn load(&self) -> Result<Dataset> {
        match self {
            DataSpec::Synthetic(s) => Ok(s.generate()),
        }
    }

    pub fn spec(&self) -> String {
        match self {
            DataSpec::Synthetic(s) => s.spec(),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

impl From<DataSpec> for String {
    fn from(d: DataSpec) -> String {
        d.spec()
    }
}

impl TryFrom<String> for DataSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        DataSpec::parse("data", &s)
    }
}
