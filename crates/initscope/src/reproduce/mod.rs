//! Reproductions of published findings about initialization (`initscope reproduce`).
//!
//! Each reproduction measures with the engine, prints what it measured next to what the source
//! reports or predicts, and passes or fails on a criterion stated in the table. Settings follow
//! the papers where the engine allows; deviations are written in `deviations`.
//!
//! One file per paper; its module doc names the paper, what is measured, the criterion and the
//! deviations from the paper's setup, and its `run` builds the [`Reproduction`] with `new`, one
//! `row` per quantity, and the measured values for `--json` ([`reproduce`] fills in `pass` and
//! `seconds`). This module holds what the papers share: the types, the table [`REPRODUCTIONS`]
//! behind `list`, `all` and lookup by name, and the helpers used by several papers (`run_toml`,
//! `mnist1d_batch`, `inits`); a helper used by one paper lives in that paper's file.
//!
//! Adding a paper is one new file plus one line in the table: write `reproduce/NAME.rs` with a
//! `pub(super) fn run() -> Result<Reproduction>`, declare it below with `mod NAME;` and add
//! `("NAME", "one-line description", NAME::run)` to [`REPRODUCTIONS`] where `all` should run it.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::config::{validate, RawConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::matrix::Matrix;
use crate::nn::LayerInits;
use crate::records::RunOutput;
use crate::train::train;

mod fixup2019;
mod glorot2010;
mod he2015;
mod layernorm_const;
mod lsuv2016;
mod meanfield_res2017;
mod mnist1d;
mod pennington2017;
mod rezero2020;
mod saxe2014;
mod schoenholz2017;
mod seed;
mod skipinit2020;
mod zero2022;
mod zero_gamma2017;

/// One line of a reproduction's table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub quantity: String,
    pub measured: String,
    /// What the source reports or its theory predicts.
    pub reference: String,
    pub ok: bool,
}

/// A reproduction's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reproduction {
    pub name: String,
    pub source: String,
    pub rows: Vec<Row>,
    /// The pass criterion, in words.
    pub criterion: String,
    pub pass: bool,
    /// Where the setup deviates from the paper.
    pub deviations: String,
    /// The measured quantities, for `--json`.
    pub measured: Value,
    pub seconds: f64,
}

/// A reproduction: its name, a one-line description, and the function that runs it.
pub type Entry = (&'static str, &'static str, fn() -> Result<Reproduction>);

/// Every reproduction, in the order `all` runs them (the one table behind dispatch and `list`).
pub const REPRODUCTIONS: &[Entry] = &[
    (
        "seed",
        "the W = 0 question on mnist1d: dead, symmetric, or broken by dropout",
        seed::run,
    ),
    (
        "glorot2010",
        "activation and gradient variances per layer, standard vs normalized init",
        glorot2010::run,
    ),
    (
        "he2015",
        "30-layer ReLU net: signal at init and training, Xavier (1/n) vs He (2/n)",
        he2015::run,
    ),
    (
        "saxe2014",
        "deep linear nets: mode learning times and the condition number at init",
        saxe2014::run,
    ),
    (
        "schoenholz2017",
        "the tanh edge of chaos and trainable depth against 6 xi_c",
        schoenholz2017::run,
    ),
    (
        "pennington2017",
        "spectrum of J J^T at criticality: orthogonal vs Gaussian, against free probability",
        pennington2017::run,
    ),
    (
        "lsuv2016",
        "LSUV on deep ReLU and tanh nets: iterations per layer, training against He",
        lsuv2016::run,
    ),
    (
        "fixup2019",
        "residual MLPs without normalization at 10-1000 blocks: Fixup vs He, output change per step",
        fixup2019::run,
    ),
    (
        "rezero2020",
        "32-layer nets: steps to a loss for plain, residual, layernorm and ReZero; ReZero at 1000",
        rezero2020::run,
    ),
    (
        "skipinit2020",
        "trainable depth at one learning rate: batchnorm, no normalization, SkipInit (10-1000)",
        skipinit2020::run,
    ),
    (
        "zero2022",
        "ZerO against partial identity: rank of W - I while training, width, accuracy",
        zero2022::run,
    ),
    (
        "zero_gamma2017",
        "zero gamma ending each residual branch: blocks are the identity; early training at high lr",
        zero_gamma2017::run,
    ),
    (
        "meanfield_res2017",
        "q^l of random residual nets against the residual mean field: tanh polynomial, ReLU exponential",
        meanfield_res2017::run,
    ),
    (
        "layernorm_const",
        "constant init into a layernorm: exact arithmetic against f32/f64 rounding at widths 7-100",
        layernorm_const::run,
    ),
    (
        "mnist1d",
        "logistic regression and MLP baselines against the published accuracies",
        mnist1d::run,
    ),
];

/// Runs one reproduction by name.
pub fn reproduce(name: &str) -> Result<Reproduction> {
    let Some(&(_, _, run)) = REPRODUCTIONS.iter().find(|r| r.0 == name) else {
        let names: Vec<&str> = REPRODUCTIONS.iter().map(|r| r.0).collect();
        return Err(Error::spec(
            "reproduce",
            name,
            format!("unknown reproduction; known: {}, all", names.join(", ")),
        ));
    };
    let start = Instant::now();
    let mut r = run()?;
    r.pass = r.rows.iter().all(|row| row.ok);
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}

/// One line of the table: what was measured next to the reference, and whether it meets the
/// criterion.
fn row(quantity: impl Into<String>, measured: impl Into<String>, reference: &str, ok: bool) -> Row {
    Row {
        quantity: quantity.into(),
        measured: measured.into(),
        reference: reference.into(),
        ok,
    }
}

/// A reproduction with no rows yet; its `run` pushes the rows and sets `measured`.
fn new(name: &str, source: &str, criterion: &str, deviations: &str) -> Reproduction {
    Reproduction {
        name: name.into(),
        source: source.into(),
        rows: Vec::new(),
        criterion: criterion.into(),
        pass: false,
        deviations: deviations.into(),
        measured: Value::Null,
        seconds: 0.0,
    }
}

/// Trains the run a TOML snippet (train's flag names) describes.
fn run_toml(text: &str) -> Result<(RunOutput, Dataset<'static>)> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| Error::config("reproduce", e.to_string()))?;
    let (cfg, data) = validate(&raw)?;
    let out = train(&cfg, &data, &mut |_| {})?;
    Ok((out, data))
}

/// mnist1d's training inputs (first `rows`) and labels.
fn mnist1d_batch(rows: usize) -> Result<(Matrix<f64>, Vec<u32>)> {
    let spec = crate::data::DataSpec::parse("--data", "mnist1d")?;
    let data = spec.load(&crate::data::DataOptions::default(), None)?;
    let idx: Vec<usize> = (0..rows.min(data.train.len())).collect();
    let x = data.train.x.select_f64(&idx);
    let y = match &data.train.y {
        crate::data::Labels::Classes(c) => idx.iter().map(|&i| c[i]).collect(),
        crate::data::Labels::Values(_) => unreachable!("mnist1d has classes"),
    };
    Ok((x, y))
}

/// The weight init `weight` (a `--init` spec) for each of `layers` layers, biases zero.
fn inits(weight: &str, layers: usize) -> Result<Vec<LayerInits>> {
    let w = Init::parse("--init", weight)?;
    Ok(vec![
        LayerInits {
            weight: w,
            bias: Init::Zeros
        };
        layers
    ])
}

#[cfg(test)]
mod tests {
    use super::REPRODUCTIONS;

    #[test]
    fn every_reproduction_has_its_own_name() {
        for (i, (name, _, _)) in REPRODUCTIONS.iter().enumerate() {
            assert!(
                REPRODUCTIONS[..i].iter().all(|r| r.0 != *name),
                "{name} is in the table twice"
            );
            assert!(
                *name != "all" && *name != "list",
                "{name} is a command word"
            );
        }
    }
}
