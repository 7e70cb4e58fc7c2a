//! The seed question, from DESIGN.md's symmetry facts (the question initscope was built to
//! answer): which zero and constant initializations die, stay symmetric, or break.
//!
//! Measured: a 64-64 MLP on mnist1d in five cases (W = 0 with tanh, ReLU and sigmoid; W = 0.1
//! with tanh, without and with dropout 0.1; biases 0), each trained 600 SGD steps: the verdict,
//! the hidden layers' effective widths at the end (tolerance partition) and the test accuracy.
//!
//! Criterion: every case gets the verdict the backprop algebra predicts. zeros + tanh is dead
//! (f(0) = 0 and W = 0 kill every hidden gradient), zeros + ReLU is dead (f'(0) = 0); zeros +
//! sigmoid (sigmoid(0) = 1/2 wakes the net up) and constant + tanh stay symmetric with width 1;
//! dropout breaks the symmetry (every width > 1: the masks differ between units).
//!
//! Deviations: none (64-64 MLP, SGD lr 0.1, batch 100, 600 steps on mnist1d).

use serde_json::{json, Value};

use super::{new, row, run_toml, Reproduction};
use crate::diagnostics::verdict::VerdictKind;
use crate::error::Result;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "seed",
        "DESIGN.md's symmetry facts (the question initscope was built to answer)",
        "every case gets the verdict the backprop algebra predicts",
        "none: 64-64 MLP, SGD lr 0.1, batch 100, 600 steps on mnist1d",
    );
    let cases: [(&str, &str, &str, f64, &str); 5] = [
        (
            "zeros",
            "tanh",
            "zeros",
            0.0,
            "dead: f(0) = 0 and W = 0 kill every hidden gradient",
        ),
        ("zeros", "relu", "zeros", 0.0, "dead: f'(0) = 0"),
        (
            "zeros",
            "sigmoid",
            "zeros",
            0.0,
            "symmetric, width 1: sigmoid(0) = 1/2 wakes the net up, all units stay equal",
        ),
        (
            "constant:0.1",
            "tanh",
            "zeros",
            0.0,
            "symmetric, width 1: identical units stay identical",
        ),
        (
            "constant:0.1",
            "tanh",
            "zeros",
            0.1,
            "broken: dropout masks differ between units",
        ),
    ];
    let mut measured = Vec::new();
    for (init, act, bias, dropout, reference) in cases {
        let (out, _) = run_toml(&format!(
            "data = \"mnist1d\"\nhidden = \"64,64\"\nact = \"{act}\"\ninit = \"{init}\"\n\
             bias_init = \"{bias}\"\noptim = \"sgd\"\nlr = 0.1\nbatch = 100\nsteps = 600\n\
             dropout = {dropout}\nseed = 0\n"
        ))?;
        let v = &out.summary.verdict;
        let widths: Vec<usize> = v.layers[..v.layers.len() - 1]
            .iter()
            .map(|l| l.width_end_tol.expect("a plain MLP's widths are computed"))
            .collect();
        let ok = match (init, act, dropout > 0.0) {
            (_, _, true) => v.symmetry_broken && widths.iter().all(|&w| w > 1),
            ("zeros", "sigmoid", _) | ("constant:0.1", _, _) => {
                v.verdict == VerdictKind::Symmetric && widths.iter().all(|&w| w == 1)
            }
            _ => v.verdict == VerdictKind::Dead,
        };
        let case = format!(
            "{init} + {act}{}",
            if dropout > 0.0 { " + dropout 0.1" } else { "" }
        );
        r.rows.push(row(
            case.clone(),
            format!(
                "{}, widths {:?}, test acc {:.1}%",
                v.verdict.name(),
                widths,
                100.0 * out.summary.test_acc.unwrap_or(f64::NAN)
            ),
            reference,
            ok,
        ));
        measured.push(json!({
            "case": case, "verdict": v.verdict.name(), "widths_end": widths,
            "symmetry_broken": v.symmetry_broken, "test_acc": out.summary.test_acc,
        }));
    }
    r.measured = Value::Array(measured);
    Ok(r)
}
