//! initscope: why an initialization works or fails.
//!
//! An explicit MLP engine (forward and backward written out layer by layer, f32 or f64 chosen at
//! run time) with the initializers, losses, optimizers and data needed to study how a network's
//! starting point decides whether and what it learns. The library never prints; the `initscope`
//! binary is a thin shell over it.
//!
//! ```
//! use initscope::{config::{validate, RawConfig}, train::train};
//! let raw = RawConfig { data: Some("xor".into()), steps: Some(50), ..Default::default() };
//! let (cfg, data) = validate(&raw).unwrap();
//! let out = train(&cfg, &data, &mut |_| {}).unwrap();
//! assert_eq!(out.summary.steps, 50);
//! ```

pub mod activation;
pub mod batch;
pub mod bench;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod error;
pub mod explain;
pub mod gradcheck;
pub mod init;
pub mod json;
pub mod lockstep;
pub mod loss;
pub mod lsuv;
pub mod matrix;
pub mod memory;
pub mod nn;
pub mod optim;
pub mod output;
pub mod records;
pub mod report;
pub mod reproduce;
pub mod rng;
pub mod scalar;
pub mod small;
pub mod spec;
pub mod study;
pub mod sweep;
pub mod train;
pub mod weights;

pub use activation::Activation;
pub use config::{Precision, RawConfig, RunConfig};
pub use data::{DataSpec, Dataset};
pub use error::{Error, Result};
pub use init::{Fans, Init};
pub use loss::Loss;
pub use matrix::Matrix;
pub use nn::{Cache, Dense, Module, Net, Pass};
pub use nn::{Params, Workspace};
pub use optim::{OptimConfig, OptimKind, Optimizer, Schedule};
pub use records::{RunOutput, Summary};
pub use scalar::Float;
pub use train::train;
