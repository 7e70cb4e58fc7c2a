//! De & Smith 2020, "Batch normalization biases residual blocks towards the identity function in
//! deep networks", secs. 2-4 (why batchnorm lets deep residual nets train, and SkipInit).
//!
//! The argument: in a pre-activation residual net with batchnorm, block i adds a branch whose
//! output has second moment about 1 (batchnorm sets its input to unit variance, He-initialised
//! layers keep it: relu halves it, a linear with weights N(0, 2/fan_in) doubles it), so the
//! stream's second moment grows linearly,
//!
//!   E[x_L^2] ≈ E[x_0^2] + L,
//!
//! and the i-th branch contributes about 1/sqrt(i) of the stream: the deep net behaves like a
//! shallow one at init. Without normalization the branch keeps its input's scale,
//! E|F(x)|^2 = E|x|^2, so the stream doubles per block, E[x_L^2] ≈ 2^L E[x_0^2], and training at a
//! fixed learning rate fails beyond some depth. SkipInit puts a learnable scalar α, starting at 0,
//! at the end of every branch: x_{i+1} = x_i + α_i F(x_i), every block the identity at init. In an
//! MLP this is exactly ReZero's module (`gate(0)` at the end of the branch; see `rezero2020`):
//! the two papers differ in where they apply it, not in the module.
//!
//! Measured: pre-activation residual MLPs of width 32 on mnist1d, every linear He-initialised
//! (biases 0), with L in {10, 100, 1000} blocks:
//! batchnorm `linear(32) res(batchnorm relu linear(32) batchnorm relu linear(32))*L batchnorm
//! relu linear` (the final batchnorm-relu before the head as in pre-activation ResNets), no
//! normalization `linear(32) res(relu linear(32) relu linear(32))*L relu linear`, and SkipInit
//! (the same with `gate(0)` ending each branch). At init, on 512 training rows in training mode
//! (batch statistics), E[x_L^2]/E[x_0^2] at L = 10 and 100 (x_0 the input layer's output, x_L
//! the last block's); then the training loss after 300 steps of SGD with momentum at one fixed
//! learning rate (0.01, momentum 0.9, batch 64, f64) at every depth.
//!
//! Criterion (fixed before measuring): at init the stream's growth is within a factor 1.5 of
//! 1 + L/E[x_0^2] with batchnorm and exponential without (log2 of the ratio, per block, within
//! 0.8..1.2), and exactly 1 with SkipInit; the batchnorm net and the SkipInit net reach a training
//! loss below 0.8 ln 10 at every depth; the net without normalization diverged or stalled (above
//! 0.95 ln 10) at 1000 blocks.
//!
//! Deviations: residual MLPs on mnist1d instead of Wide-ResNets on CIFAR-10 and ResNets on
//! ImageNet; 300 steps; SkipInit's α starts at 0 (the paper allows a small constant below
//! 1/sqrt(L)). The runs are in f64 because the evaluation at init, like PyTorch's `model.eval()`,
//! uses batchnorm's initial running statistics (mean 0, variance 1): the 1000-block batchnorm
//! net evaluated at step 0 is unnormalized, its output near 2^500 overflows f32 and the run
//! would be recorded as diverged before its first step.

use serde_json::json;

use super::{mnist1d_batch, new, row, run_toml, Reproduction};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::nn::{Pass, Workspace};
use crate::records::Status;
use crate::rng::{self, Stream};

/// The depths (residual blocks) trained.
const DEPTHS: [usize; 3] = [10, 100, 1000];

/// The depths whose stream growth at init is measured.
const INIT_DEPTHS: [usize; 2] = [10, 100];

/// The three networks at depth `l`: label and spec.
fn nets(l: usize) -> [(&'static str, String); 3] {
    [
        (
            "batchnorm",
            format!(
                "linear(32) res(batchnorm relu linear(32) batchnorm relu linear(32))*{l} \
                 batchnorm relu linear"
            ),
        ),
        (
            "no normalization",
            format!("linear(32) res(relu linear(32) relu linear(32))*{l} relu linear"),
        ),
        (
            "SkipInit",
            format!("linear(32) res(relu linear(32) relu linear(32) gate(0))*{l} relu linear"),
        ),
    ]
}

/// The TOML of a run of `net` for `steps` steps.
fn config(net: &str, steps: usize) -> String {
    format!(
        "data = \"mnist1d\"\nnet = \"{net}\"\ninit = \"kaiming_normal:nonlinearity=relu\"\n\
         bias_init = \"zeros\"\noptim = \"momentum\"\nlr = 0.01\nmomentum = 0.9\nbatch = 64\n\
         steps = {steps}\neval_every = {}\ndiagnostics = \"off\"\nprecision = \"f64\"\nseed = 0\n",
        steps.max(1)
    )
}

/// Mean of the squared entries.
fn second_moment(m: &Matrix<f64>) -> f64 {
    let s = m.as_slice();
    s.iter().map(|v| v * v).sum::<f64>() / s.len() as f64
}

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let ln10 = 10f64.ln();
    let mut r = new(
        "skipinit2020",
        "De & Smith 2020, Batch normalization biases residual blocks towards the identity \
         function in deep networks, secs. 2-4",
        "at init E[x_L^2]/E[x_0^2] is within a factor 1.5 of 1 + L/E[x_0^2] with batchnorm, \
         exponential without (log2 of it per block in 0.8..1.2) and exactly 1 with SkipInit (L = 10, \
         100); after 300 SGD steps at one learning rate the batchnorm and SkipInit nets are below \
         0.8 ln 10 at 10, 100 and 1000 blocks, and the net without normalization diverged or \
         stalled (> 0.95 ln 10) at 1000 blocks",
        "pre-activation residual MLPs (width 32) on mnist1d instead of Wide-ResNets on CIFAR-10; \
         SGD momentum lr 0.01, batch 64, 300 steps; SkipInit's alpha starts at 0; f64, because \
         the evaluation at init uses batchnorm's initial running statistics (0, 1), so the \
         1000-block batchnorm net evaluated at step 0 is unnormalized and overflows f32. In an MLP \
         SkipInit and ReZero are the same module (gate(0) ending each branch)",
    );
    let (x, _) = mnist1d_batch(512)?;
    let rows: Vec<usize> = (0..x.rows()).collect();
    let mut growth = Vec::new();
    for &l in &INIT_DEPTHS {
        for (label, net) in nets(l) {
            let (out, _) = run_toml(&config(&net, 0))?;
            let model = out.config.network::<f64>(&out.initial_params);
            let mut ws = Workspace::new(&model, x.rows());
            ws.load_rows(&x, &rows);
            let mut stream = rng::stream(0, Stream::Dropout);
            model.forward(&mut ws, Pass::Train(&mut stream));
            // Module 0 is the input layer, modules 1..=l the blocks.
            let q0 = second_moment(ws.caches[0].output());
            let ratio = second_moment(ws.caches[l].output()) / q0;
            let (measured, reference, ok) = match label {
                "batchnorm" => {
                    let want = 1.0 + l as f64 / q0;
                    (
                        format!("{ratio:.2}"),
                        format!("1 + L/E[x_0^2] = {want:.2} (within 1.5x)"),
                        ratio / want < 1.5 && want / ratio < 1.5,
                    )
                }
                "no normalization" => {
                    let per_block = ratio.log2() / l as f64;
                    (
                        format!("{ratio:.3e} (log2 per block {per_block:.3})"),
                        format!(
                            "2^L = {:.3e} (log2 per block 0.8..1.2)",
                            2f64.powi(l as i32)
                        ),
                        (0.8..=1.2).contains(&per_block),
                    )
                }
                _ => (format!("{ratio}"), "1 exactly".to_string(), ratio == 1.0),
            };
            r.rows.push(row(
                format!("init, {l} blocks, {label}: E[x_L^2]/E[x_0^2]"),
                measured,
                &reference,
                ok,
            ));
            growth.push(json!({"blocks": l, "net": label, "ratio": ratio, "q0": q0}));
        }
    }
    let mut training = Vec::new();
    for &l in &DEPTHS {
        for (label, net) in nets(l) {
            let (out, _) = run_toml(&config(&net, 300))?;
            let s = &out.summary;
            let loss = s.train_loss;
            let text = match s.status {
                Status::Diverged => {
                    format!("diverged at step {}", s.diverged_at_step.unwrap_or(0))
                }
                Status::Ok => format!("{loss:.3}"),
            };
            let trains = s.status == Status::Ok && loss < 0.8 * ln10;
            let fails = s.status == Status::Diverged || loss.is_nan() || loss > 0.95 * ln10;
            let (reference, ok) = match (label, l) {
                ("no normalization", 1000) => ("diverged or stalled (> 0.95 ln 10)", fails),
                ("no normalization", _) => ("(table)", true),
                _ => ("< 0.8 ln 10 = 1.842", trains),
            };
            r.rows.push(row(
                format!("{l} blocks, {label}: train loss after 300 steps"),
                text,
                reference,
                ok,
            ));
            training.push(json!({"blocks": l, "net": label, "status": s.status,
                "diverged_at_step": s.diverged_at_step, "train_loss": loss}));
        }
    }
    r.measured = json!({"stream_growth_at_init": growth, "training": training});
    Ok(r)
}
