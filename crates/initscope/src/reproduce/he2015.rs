//! He, Zhang, Ren & Sun 2015, "Delving deep into rectifiers", sec. 2.2 and fig. 3.
//!
//! Measured: a ReLU net with 30 hidden layers of width 64, weights N(0, 1/n) (Xavier) against
//! N(0, 2/n) (He), n the fan-in. At init, the second moment of the last hidden layer's
//! pre-activation relative to the input's, E[z_30^2]/E[x^2] (He et al.'s Var[y_L]: each layer
//! multiplies it by n Var(w) / 2, the first layer sees the input); then the training loss after
//! 600 and 1500 steps of SGD with momentum.
//!
//! Criterion: at init the ratio is 2^-29 under 1/n (within a factor 30) and 2 under 2/n
//! (0.25..4: the first layer doubles the input's moment, the others keep it); after 600 steps
//! the 2/n net has learned (train loss < 0.8 ln 10) while the 1/n net is stalled (> 0.95 ln 10).
//!
//! Deviations: mnist1d (40 inputs) and width 64 instead of ImageNet convolutional nets; SGD lr
//! 0.01, momentum 0.9, batch 100. On this small problem the 1/n net leaves its plateau after
//! about 800 steps (the table shows step 1500), where the paper's stays stalled.

use serde_json::{json, Value};

use super::{inits, mnist1d_batch, new, row, run_toml, Reproduction};
use crate::activation::Activation;
use crate::error::Result;
use crate::nn::{init_params, Net, Pass, Workspace};

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "he2015",
        "He, Zhang, Ren & Sun 2015, Delving deep into rectifiers, sec. 2.2 and fig. 3",
        "at init the second moment of the last hidden layer relative to the input is 2^-29 under \
         1/n (within a factor 30) and 2 under 2/n (0.25..4: the first layer doubles the input's \
         moment, the others keep it); after 600 SGD steps the 2/n net has learned (train loss \
         < 0.8 ln 10) while the 1/n net is stalled (> 0.95 ln 10)",
        "mnist1d (40 inputs) and width 64 instead of ImageNet convolutional nets; SGD lr 0.01, \
         momentum 0.9, batch 100. On this small problem the 1/n net leaves its plateau after about \
         800 steps (the table shows step 1500), where the paper's stays stalled",
    );
    let hidden = vec!["64"; 30].join(",");
    let (x, _) = mnist1d_batch(512)?;
    let mut dims = vec![40];
    dims.extend(std::iter::repeat_n(64, 30));
    dims.push(10);
    let input_m2 = x.as_slice().iter().map(|v| v * v).sum::<f64>() / x.as_slice().len() as f64;
    let mut measured = serde_json::Map::new();
    for (label, spec) in [
        ("xavier (1/n)", "kaiming_normal:nonlinearity=linear"),
        ("he (2/n)", "kaiming_normal:nonlinearity=relu"),
    ] {
        let p = init_params(
            &dims,
            &inits(spec, dims.len() - 1)?,
            true,
            0,
            Activation::Relu,
        );
        let net = Net::<f64>::from_params(&p, Activation::Relu);
        let mut ws = Workspace::new(&net, x.rows());
        ws.load_rows(&x, &(0..x.rows()).collect::<Vec<_>>());
        net.forward(&mut ws, Pass::Eval);
        // Second moment of z_30, the last hidden layer's pre-activation (He et al.'s Var[y_L]):
        // each layer multiplies it by n Var(w) / 2 (fan-in n; the first layer sees the input).
        let z = ws.caches[29].pre.as_slice();
        let ratio = z.iter().map(|v| v * v).sum::<f64>() / z.len() as f64 / input_m2;
        let (out, _) = run_toml(&format!(
            "data = \"mnist1d\"\nhidden = \"{hidden}\"\nact = \"relu\"\ninit = \"{spec}\"\n\
             bias_init = \"zeros\"\noptim = \"momentum\"\nlr = 0.01\nmomentum = 0.9\nbatch = 100\n\
             steps = 1500\neval_every = 300\ndiagnostics = \"off\"\nseed = 0\n"
        ))?;
        let at = |step: usize| {
            out.evals
                .iter()
                .find(|e| e.step == step)
                .map_or(f64::NAN, |e| e.train_loss)
        };
        let (loss, late) = (at(600), at(1500));
        let ln10 = 10f64.ln();
        if label.starts_with("xavier") {
            let want = 2f64.powi(-29);
            r.rows.push(row(
                format!("{label}: E[z_30^2]/E[x^2]"),
                format!("{ratio:.3e}"),
                "2^-29 = 1.9e-9",
                (ratio / want).max(want / ratio) < 30.0,
            ));
            r.rows.push(row(
                format!("{label}: train loss at step 600"),
                format!("{loss:.3}"),
                "stalled (ln 10 = 2.303)",
                loss > 0.95 * ln10,
            ));
        } else {
            r.rows.push(row(
                format!("{label}: E[z_30^2]/E[x^2]"),
                format!("{ratio:.3}"),
                "2 (kept from layer 1 on)",
                (0.25..4.0).contains(&ratio),
            ));
            r.rows.push(row(
                format!("{label}: train loss at step 600"),
                format!("{loss:.3}"),
                "learning",
                loss < 0.8 * ln10,
            ));
        }
        r.rows.push(row(
            format!("{label}: train loss at step 1500"),
            format!("{late:.3}"),
            "(table)",
            true,
        ));
        measured.insert(
            label.into(),
            json!({"second_moment_ratio": ratio, "train_loss_600": loss, "train_loss_1500": late}),
        );
    }
    r.measured = Value::Object(measured);
    Ok(r)
}
