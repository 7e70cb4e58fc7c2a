//! Non-finite floats in the JSON records (`summary.json`, `histograms.json`).
//!
//! JSON has no NaN or Infinity, and serde_json writes every non-finite f64 as `null` (Python's
//! `json.load` reads it as `None`; pandas as NaN). A diverged run is a result, so its records
//! must read back: the f64 fields of the record types are read with [`f64_or_null`] (and
//! [`vec_f64_or_null`] for lists), which turns `null` into NaN. The sign and the kind of a
//! non-finite value (NaN, +inf, -inf) are therefore not kept in JSON: a non-finite figure reads
//! back as NaN, "not finite". `metrics.csv` keeps the exact values (`NaN`, `inf`, `-inf`).
//! `Option<f64>` fields need no helper: `null` is `None` (for them a non-finite value and "not
//! measured" read back alike).

use serde::{Deserialize, Deserializer};

/// Reads an f64 written by serde_json: a number, or `null` (a non-finite value) as NaN.
pub fn f64_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads a list of f64 written by serde_json, each `null` (a non-finite value) as NaN.
pub fn vec_f64_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|x| x.unwrap_or(f64::NAN))
        .collect())
}
