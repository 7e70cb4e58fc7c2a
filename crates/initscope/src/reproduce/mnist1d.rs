//! Greydanus 2020, "Scaling down deep learning" (MNIST-1D), table of baselines.
//!
//! Measured: the test accuracy of logistic regression (40-10) and of a 40-100-100-10 ReLU MLP,
//! each trained 6000 Adam steps on mnist1d.
//!
//! Criterion: test accuracy within 4 points of the published logistic regression (32%) and
//! within 6 points of the published MLP (68%).
//!
//! Deviations: the data is generated from the recipe by initscope (the package's own arrays
//! differ by a few points of accuracy, see README); Adam lr 1e-2, batch 100, 6000 steps as in
//! the paper's notebook; the MLP overfits (100% train) and ends below its best test accuracy.

use serde_json::{json, Value};

use super::{new, row, run_toml, Reproduction};
use crate::error::Result;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "mnist1d",
        "Greydanus 2020, Scaling down deep learning (MNIST-1D), table of baselines",
        "test accuracy within 4 points of the published logistic regression (32%) and within \
         6 points of the published MLP (68%)",
        "the data is generated from the recipe by initscope (the package's own arrays differ by \
         a few points of accuracy, see README); Adam lr 1e-2, batch 100, 6000 steps as in the \
         paper's notebook; the MLP overfits (100% train) and ends below its best test accuracy",
    );
    let mut measured = serde_json::Map::new();
    for (label, arch, want, tol) in [
        ("logistic regression", "arch = \"40-10\"", 0.32, 0.04),
        (
            "MLP 40-100-100-10 (ReLU)",
            "hidden = \"100,100\"\nact = \"relu\"",
            0.68,
            0.06,
        ),
    ] {
        let (out, _) = run_toml(&format!(
            "data = \"mnist1d\"\n{arch}\noptim = \"adam\"\nlr = 0.01\nbatch = 100\nsteps = 6000\n\
             diagnostics = \"off\"\nseed = 0\n"
        ))?;
        let acc = out.summary.test_acc.unwrap_or(f64::NAN);
        r.rows.push(row(
            format!("{label}: test accuracy"),
            format!("{:.1}%", 100.0 * acc),
            &format!("{:.0}%", 100.0 * want),
            (acc - want).abs() <= tol,
        ));
        measured.insert(
            label.into(),
            json!({"test_acc": acc, "train_acc": out.summary.train_acc}),
        );
    }
    r.measured = Value::Object(measured);
    Ok(r)
}
