//! Mishkin & Matas 2016, "All you need is a good init", sec. 3 and tables 2-3: layer-sequential
//! unit-variance initialization (LSUV).
//!
//! Measured: for ReLU and tanh nets of 20 hidden layers of 64 units, the LSUV rescalings each
//! layer needed, then the train loss and test accuracy after 1500 SGD steps from LSUV and from
//! He initialization.
//!
//! Criterion: LSUV reaches |Var(z_l) - 1| < 0.1 on every layer within 5 rescalings
//! (T_max = 10), and its training loss after SGD is at most 1.1 x He's for both activations.
//!
//! Deviations: 20 hidden layers of 64 units on mnist1d instead of FitNets on CIFAR-10;
//! orthogonal pre-initialization as in the paper; SGD lr 0.01, momentum 0.9, batch 100, 1500
//! steps.

use serde_json::{json, Value};

use super::{new, row, run_toml, Reproduction};
use crate::error::Result;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "lsuv2016",
        "Mishkin & Matas 2016, All you need is a good init, sec. 3 and tables 2-3",
        "LSUV reaches |Var(z_l) - 1| < 0.1 on every layer within 5 rescalings (T_max = 10), and its \
         training loss after SGD is at most 1.1 x He's for both activations",
        "20 hidden layers of 64 units on mnist1d instead of FitNets on CIFAR-10; orthogonal \
         pre-initialization as in the paper; SGD lr 0.01, momentum 0.9, batch 100, 1500 steps",
    );
    let hidden = vec!["64"; 20].join(",");
    let mut measured = serde_json::Map::new();
    for act in ["relu", "tanh"] {
        let mut losses = Vec::new();
        for init in ["lsuv", &format!("kaiming_normal:nonlinearity={act}")] {
            let (out, _) = run_toml(&format!(
                "data = \"mnist1d\"\nhidden = \"{hidden}\"\nact = \"{act}\"\ninit = \"{init}\"\n\
                 optim = \"momentum\"\nlr = 0.01\nmomentum = 0.9\nbatch = 100\nsteps = 1500\n\
                 diagnostics = \"off\"\nseed = 0\n"
            ))?;
            let s = &out.summary;
            if init == "lsuv" {
                let iters: Vec<usize> = s.lsuv.iter().map(|l| l.iterations).collect();
                let ok = s.lsuv.iter().all(|l| l.converged && l.iterations <= 5);
                r.rows.push(row(
                    format!("{act}: LSUV rescalings per layer"),
                    format!(
                        "max {} over {} layers",
                        iters.iter().max().unwrap_or(&0),
                        iters.len()
                    ),
                    "1-5 (sec. 3)",
                    ok,
                ));
                measured.insert(format!("{act}_lsuv_iterations"), json!(iters));
            }
            r.rows.push(row(
                format!(
                    "{act}, {}: train loss | test acc",
                    if init == "lsuv" { "LSUV" } else { "He" }
                ),
                format!(
                    "{:.3} | {:.1}%",
                    s.train_loss,
                    100.0 * s.test_acc.unwrap_or(f64::NAN)
                ),
                "(table)",
                true,
            ));
            losses.push(s.train_loss);
        }
        r.rows.push(row(
            format!("{act}: LSUV loss / He loss"),
            format!("{:.2}", losses[0] / losses[1]),
            "<= 1.1 (LSUV matches or beats He)",
            losses[0] <= 1.1 * losses[1],
        ));
        measured.insert(
            format!("{act}_train_loss"),
            json!({"lsuv": losses[0], "he": losses[1]}),
        );
    }
    r.measured = Value::Object(measured);
    Ok(r)
}
