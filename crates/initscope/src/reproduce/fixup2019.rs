//! Zhang, Dauphin & Ma 2019, "Fixup initialization: residual learning without normalization",
//! secs. 2-3 (the Θ(η) output-change requirement, Fixup's rules, training without
//! normalization at large depth).
//!
//! The network: `linear(32) res(linear(32) relu linear(32))*L linear` on mnist1d, no
//! normalization, L in {10, 100, 1000} blocks of m = 2 linear layers (width 32). Fixup (`--preset
//! fixup`): the last linear of every branch and the output layer start at 0, the branches' first
//! linears are He-initialised, N(0, 2/fan_in), and scaled by L^(-1/(2m-2)) = L^(-1/2), biases 0.
//!
//! Measured: (1) the training loss after 300 steps of SGD with momentum (lr 0.01, momentum 0.9,
//! batch 64, f32) of Fixup and of the same net with every linear He-initialised (branches
//! included, nothing zero); (2) the paper's argument, as its ablation: with the same zero last
//! layers, the size of the change of the network's output over one SGD step,
//!
//!   Δ_t = rms over probe rows x and outputs k of f_k(x; θ_{t+1}) - f_k(x; θ_t),
//!
//! at t = 10 (plain SGD, lr 0.01, batch 64, f64, 512 probe rows), with the branches He-scaled by
//! L^(-1/2) (Fixup) and unscaled. The step from 10 to 11 is taken because at init the output is
//! exactly 0 and only the output layer moves (Δ_0 is the same at every depth, with or without the
//! scaling); the branches' last layers wake at step 1 and their first layers at step 2. Fixup's
//! reasoning: a branch whose last layer has grown from 0 by the SGD steps outputs
//! W_2 relu(W_1 h) with |W_2| = O(η |relu(W_1 h)|), so each branch moves the output by
//! O(η |relu(W_1 h)|^2) = O(η s^2), s the branch scale; L branches add up to O(η L s^2), which is
//! Θ(η) at every depth when s^2 = L^(-1) (the scaling) and grows like L without it. The output
//! layer's own move is Θ(η) too (its input, the stream, is the same at every depth while the
//! branches are small), so without the scaling the growth is small at 10 to 100 blocks and large
//! at 1000, where the branches' share dominates.
//!
//! Criterion (fixed before measuring): Fixup's final training loss is below 0.8 ln 10 (the
//! constant predictor's loss is ln 10) at every depth; the He-initialised net at 1000 blocks
//! diverged or stalled (loss not finite or above 0.95 ln 10); Δ_10 at 1000 blocks over Δ_10 at 10
//! blocks is within a factor 3 with the scaling and above 10 without it.
//!
//! Deviations: residual MLPs of width 32 on mnist1d instead of ResNets on CIFAR-10/ImageNet and
//! Transformers; no scalar multipliers or scalar biases (Fixup's rule 3: the linear layers' own
//! biases stand in for the scalar biases, and a multiplier of 1 changes nothing at init); 300
//! training steps. At this learning rate the He-initialised net diverges already at 10 blocks
//! (its output's second moment doubles per block: 2^10), so the table shows it failing at every
//! depth rather than only at the deeper ones.

use serde_json::json;

use super::{mnist1d_batch, new, row, run_toml, Reproduction};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::nn::{Params, Pass, Workspace};
use crate::records::{RunOutput, Status};

/// The depths (residual blocks) measured.
const DEPTHS: [usize; 3] = [10, 100, 1000];

/// The step t whose update Δ_t measures: every layer has woken by step 2.
const PROBE_STEP: usize = 10;

/// Rows of mnist1d's training split the output change is measured on.
const PROBE_ROWS: usize = 512;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let ln10 = 10f64.ln();
    let mut r = new(
        "fixup2019",
        "Zhang, Dauphin & Ma 2019, Fixup initialization: residual learning without \
         normalization, secs. 2-3",
        "Fixup's final training loss < 0.8 ln 10 at 10, 100 and 1000 blocks; the He-initialised \
         net at 1000 blocks diverged or stalled (> 0.95 ln 10); the output change over one SGD \
         step at step 10, depth 1000 over depth 10, is within a factor 3 with the L^(-1/2) scaling \
         and above 10 without it",
        "residual MLPs (width 32, 2 linears per block) on mnist1d instead of ResNets on \
         CIFAR-10/ImageNet; no scalar multipliers or biases (the linears' biases stand in); 300 \
         steps of SGD with momentum (lr 0.01, 0.9, batch 64, f32); output change with plain SGD \
         (lr 0.01, batch 64, f64) on 512 rows. The He-initialised net already diverges at 10 \
         blocks at this learning rate (its output's second moment doubles per block)",
    );
    let mut training = Vec::new();
    for &depth in &DEPTHS {
        let net = format!("linear(32) res(linear(32) relu linear(32))*{depth} linear");
        let mut pair = Vec::new();
        for (label, init) in [
            ("Fixup", "preset = \"fixup\"\n"),
            (
                "He",
                "init = \"kaiming_normal:nonlinearity=relu\"\nbias_init = \"zeros\"\n",
            ),
        ] {
            let (out, _) = run_toml(&format!(
                "data = \"mnist1d\"\nnet = \"{net}\"\n{init}optim = \"momentum\"\nlr = 0.01\n\
                 momentum = 0.9\nbatch = 64\nsteps = 300\neval_every = 300\n\
                 diagnostics = \"off\"\nseed = 0\n"
            ))?;
            let s = &out.summary;
            pair.push((label, s.status, s.diverged_at_step, s.train_loss));
        }
        let (_, _, _, fixup_loss) = pair[0];
        let (_, he_status, he_at, he_loss) = pair[1];
        let he_text = match he_status {
            Status::Diverged => format!("diverged at step {}", he_at.unwrap_or(0)),
            Status::Ok => format!("{he_loss:.3}"),
        };
        let fixup_trains = fixup_loss < 0.8 * ln10;
        r.rows.push(row(
            format!("{depth} blocks: Fixup train loss"),
            format!("{fixup_loss:.3}"),
            "< 0.8 ln 10 = 1.842",
            fixup_trains,
        ));
        let he_failed = he_status == Status::Diverged || he_loss.is_nan() || he_loss > 0.95 * ln10;
        r.rows.push(row(
            format!("{depth} blocks: He-initialised train loss"),
            he_text,
            if depth == 1000 {
                "diverged or stalled (> 0.95 ln 10)"
            } else {
                "(table)"
            },
            depth != 1000 || he_failed,
        ));
        training.push(json!({"blocks": depth, "fixup_train_loss": fixup_loss,
            "he_status": he_status, "he_diverged_at_step": he_at, "he_train_loss": he_loss}));
    }

    // The ablation: the same zero last layers, branches He-initialised with and without the
    // L^(-1/2) scale (the draws are the same: linear l draws from (seed, l, weight) either way).
    let (x, _) = mnist1d_batch(PROBE_ROWS)?;
    let mut change = Vec::new();
    let mut first = Vec::new();
    for scaled in [true, false] {
        let mut per_depth = Vec::new();
        for &depth in &DEPTHS {
            let (net, init) = if scaled {
                (
                    format!("linear(32) res(linear(32) relu linear(32))*{depth} linear"),
                    "preset = \"fixup\"\n",
                )
            } else {
                (
                    format!(
                        "linear(32) res(linear(32) relu linear(32, init=zeros))*{depth} \
                         linear(init=zeros)"
                    ),
                    "init = \"kaiming_normal:nonlinearity=relu\"\nbias_init = \"zeros\"\n",
                )
            };
            let trained = |steps: usize| {
                run_toml(&format!(
                    "data = \"mnist1d\"\nnet = \"{net}\"\n{init}optim = \"sgd\"\nlr = 0.01\n\
                     batch = 64\nsteps = {steps}\neval_every = {steps}\ndiagnostics = \"off\"\n\
                     precision = \"f64\"\nseed = 0\n"
                ))
                .map(|(out, _)| out)
            };
            let delta = |a: &Matrix<f64>, b: &Matrix<f64>| {
                let s = a.as_slice();
                let d: f64 = s
                    .iter()
                    .zip(b.as_slice())
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum();
                (d / s.len() as f64).sqrt()
            };
            let one = trained(1)?;
            let start = out_at(&one, &one.initial_params, &x);
            let d0 = delta(&start, &out_at(&one, &one.params, &x));
            let before = trained(PROBE_STEP)?;
            let after = trained(PROBE_STEP + 1)?;
            let dt = delta(
                &out_at(&before, &before.params, &x),
                &out_at(&after, &after.params, &x),
            );
            first.push(d0);
            per_depth.push(dt);
        }
        change.push(per_depth);
    }
    let names = ["with L^(-1/2)", "without scaling"];
    for (k, per_depth) in change.iter().enumerate() {
        let text: Vec<String> = DEPTHS
            .iter()
            .zip(per_depth)
            .map(|(l, d)| format!("{l}: {d:.3e}"))
            .collect();
        let ratio = per_depth[2] / per_depth[0];
        let (reference, ok) = if k == 0 {
            (
                "1000/10 within a factor 3",
                ratio > 1.0 / 3.0 && ratio < 3.0,
            )
        } else {
            ("1000/10 above 10 (grows ~ L)", ratio > 10.0)
        };
        r.rows.push(row(
            format!("output change over step 10->11, {}", names[k]),
            format!("{} (1000/10: {ratio:.2})", text.join(", ")),
            reference,
            ok,
        ));
    }
    let same0 = first.iter().all(|d| *d == first[0]);
    r.rows.push(row(
        "output change over step 0->1 (only the output layer moves)",
        format!(
            "{:.3e}{}",
            first[0],
            if same0 {
                " at every depth, both arms"
            } else {
                " (differs between nets)"
            }
        ),
        "(table: the same at every depth)",
        true,
    ));
    r.measured = json!({"training": training, "output_change_step10": {
        "depths": DEPTHS, "scaled": change[0], "unscaled": change[1]},
        "output_change_step0": first});
    Ok(r)
}

/// The network of run `out` with parameters `params`, evaluated on `x`: its outputs (logits),
/// (rows, outputs).
fn out_at(out: &RunOutput, params: &Params, x: &Matrix<f64>) -> Matrix<f64> {
    let net = out.config.network::<f64>(params);
    let mut ws = Workspace::new(&net, x.rows());
    ws.load_rows(x, &(0..x.rows()).collect::<Vec<_>>());
    net.forward(&mut ws, Pass::Eval).clone()
}
