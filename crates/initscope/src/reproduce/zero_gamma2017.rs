//! Goyal, Dollár, Girshick, Noordhuis, Wesolowski, Kyrola, Tulloch, Jia & He 2017, "Accurate,
//! large minibatch SGD: training ImageNet in 1 hour", sec. 2.3 ("Batch Normalization γ
//! initialization", torchvision's `zero_init_residual`).
//!
//! The claim: with γ = 0 in the batchnorm that ends each residual branch, "all residual blocks
//! just return their inputs, mimicking networks that have fewer layers and are easier to train
//! at the initial stage", which eases optimization early in training with large-minibatch, high
//! learning-rate SGD. For a ResNet-v1 basic block of width n,
//!
//! ```text
//! y = relu(x + BN_2(W_2 relu(BN_1(W_1 x)))),   BN(u) = γ (u - mean) / sqrt(var + eps) + β
//! γ_2 = 0, β_2 = 0:  BN_2(·) = 0 exactly  =>  y = relu(x) = x   (x ≥ 0 after the stem's relu)
//! ```
//! in floating point too (0 · finite = 0, x + 0 = x, relu(x) = x for x ≥ 0), with batch
//! statistics (training) and running statistics (evaluation) alike.
//!
//! Measured: on a 40-input mnist1d batch of 256 rows, a stem `linear(32) relu`, 16 basic blocks
//! `res(linear(32) batchnorm relu linear(32) batchnorm) relu` and an output `linear` under
//! `preset = "zero_init_residual"` (f32): the stream after the blocks against the stream before
//! them, and the logits against the network with the blocks removed (the same stem and output
//! weights), in training and evaluation passes; the stream's second moment after the blocks
//! with γ = 1 for contrast. Then training (SGD, momentum 0.9, batch 256, 100 steps, torchvision's
//! kaiming_normal fan_out init) at the paper's reference learning rate for batch 256 (0.1) and
//! at 0.8 (its linear scaling rule's rate for a batch of 2048, without warmup), γ = 0 against
//! γ = 1, seeds 0 and 1.
//!
//! Criterion: the blocks are the identity at init bitwise (stream after = stream before, logits =
//! the blocks-removed network's, in both passes); at the high rate 0.8, γ = 0 ends the 100 steps
//! with a lower training loss than γ = 1 at each seed (a diverged run counts as +∞). The rate
//! 0.1 rows are for comparison (no requirement).
//!
//! Deviations: an MLP ResNet (linear layers for convolutions) of width 32 on mnist1d instead of
//! ResNet-50 on ImageNet; batch 256 and 100 steps instead of 8k minibatches over 90 epochs; a
//! high learning rate stands in for the large minibatch; no warmup (the paper's warmup is the
//! other remedy for early instability); the paper reports no figure for the γ ablation, so the
//! comparison is qualitative.

use serde_json::json;

use super::{mnist1d_batch, new, row, run_toml, Reproduction};
use crate::config::{validate, RawConfig};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::build::build_net;
use crate::nn::spec::NetSpec;
use crate::nn::{Net, Pass, Workspace};
use crate::records::Status;
use crate::rng::{stream, Stream};

/// Basic blocks in the network.
const BLOCKS: usize = 16;

/// Rows of the batch the identity is checked on (the training batch).
const ROWS: usize = 256;

/// The stem, BLOCKS basic blocks, the output layer.
fn spec() -> String {
    let block = " res(linear(32) batchnorm relu linear(32) batchnorm) relu";
    format!("linear(32) relu{} linear", block.repeat(BLOCKS))
}

/// The training settings shared by every run (train's TOML keys).
fn base(seed: u64, lr: f64, zero_gamma: bool) -> String {
    format!(
        "data = \"mnist1d\"\nnet = \"{}\"\ninit = \"kaiming_normal:mode=fan_out,nonlinearity=relu\"\n\
         optim = \"momentum\"\nmomentum = 0.9\nlr = {lr}\nbatch = 256\nsteps = 100\n\
         diagnostics = \"off\"\nseed = {seed}\n{}",
        spec(),
        if zero_gamma {
            "preset = \"zero_init_residual\"\n"
        } else {
            ""
        }
    )
}

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "zero_gamma2017",
        "Goyal et al. 2017, Accurate, large minibatch SGD, sec. 2.3 (zero gamma in the last \
         batchnorm of each residual branch; torchvision's zero_init_residual)",
        "the blocks are the identity at init bitwise (stream after the blocks = stream before, \
         logits = those of the network with the blocks removed, in training and evaluation \
         passes); at lr 0.8 (momentum 0.9, batch 256, no warmup) gamma = 0 ends 100 steps with a \
         lower training loss than gamma = 1 at each of seeds 0 and 1 (diverged counts as +inf); \
         the lr 0.1 rows are for comparison",
        "an MLP ResNet (16 basic blocks of linear(32) layers) on mnist1d instead of ResNet-50 on \
         ImageNet; batch 256, 100 steps; a high learning rate stands in for the large minibatch; \
         no warmup; the paper gives no figure for the gamma ablation, so the comparison is \
         qualitative",
    );
    let (x, _) = mnist1d_batch(ROWS)?;
    let x = x.cast::<f32>();
    let mut identity = Vec::new();
    for train in [true, false] {
        let Identity {
            before,
            after,
            logits,
            shallow,
        } = identity_check(&x, train)?;
        let pass = if train { "training" } else { "evaluation" };
        let stream_same = before == after;
        let logits_same = logits == shallow;
        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        r.rows.push(row(
            format!("gamma = 0, {pass} pass: stream after the {BLOCKS} blocks vs before"),
            format!("max |difference| {:e}", diff(&after, &before)),
            "0 (bitwise equal)",
            stream_same,
        ));
        r.rows.push(row(
            format!("gamma = 0, {pass} pass: logits vs the blocks-removed network"),
            format!("max |difference| {:e}", diff(&logits, &shallow)),
            "0 (bitwise equal)",
            logits_same,
        ));
        identity.push(json!({"pass": pass, "stream_unchanged": stream_same,
                             "logits_equal_blocks_removed": logits_same}));
    }
    let moments = stream_moments(&x)?;
    r.rows.push(row(
        "stream second moment before -> after the blocks (gamma = 0 | gamma = 1)",
        format!(
            "{:.3} -> {:.3} | {:.3} -> {:.3}",
            moments[0].0, moments[0].1, moments[1].0, moments[1].1
        ),
        "unchanged | grows with depth",
        true,
    ));
    let mut runs = Vec::new();
    for lr in [0.1, 0.8] {
        for seed in [0u64, 1] {
            let mut losses = [0.0; 2];
            for (k, zero_gamma) in [true, false].into_iter().enumerate() {
                let (out, _) = run_toml(&base(seed, lr, zero_gamma))?;
                let s = &out.summary;
                losses[k] = if s.status == Status::Diverged || !s.train_loss.is_finite() {
                    f64::INFINITY
                } else {
                    s.train_loss
                };
                runs.push(
                    json!({"lr": lr, "seed": seed, "gamma": if zero_gamma {0} else {1},
                                 "train_loss": losses[k], "train_acc": s.train_acc,
                                 "diverged": s.status == Status::Diverged}),
                );
            }
            let high = lr > 0.5;
            r.rows.push(row(
                format!("lr {lr}, seed {seed}: training loss after 100 steps, gamma = 0 | 1"),
                format!("{:.4} | {:.4}", losses[0], losses[1]),
                if high {
                    "gamma = 0 lower"
                } else {
                    "(comparison)"
                },
                !high || losses[0] < losses[1],
            ));
        }
    }
    r.measured = json!({"identity": identity,
        "stream_second_moment": {"gamma0": moments[0], "gamma1": moments[1]}, "runs": runs});
    Ok(r)
}

/// The network of [`spec`] as the training runs build it (seed 0), in f32.
fn build(zero_gamma: bool) -> Result<Net<f32>> {
    let raw: RawConfig = toml::from_str(&base(0, 0.1, zero_gamma))
        .map_err(|e| Error::config("reproduce", e.to_string()))?;
    let (cfg, _) = validate(&raw)?;
    let spec = cfg.net.as_ref().expect("the config has a net");
    build_net(spec, &cfg.build_options())
}

/// What [`identity_check`] reads from the forward passes (each (rows, width) row-major).
struct Identity {
    /// The stream before the blocks (the stem's output).
    before: Vec<f32>,
    /// The stream after the last block.
    after: Vec<f32>,
    /// The γ = 0 network's logits.
    logits: Vec<f32>,
    /// The logits of the network with the blocks removed.
    shallow: Vec<f32>,
}

/// Forwards `x` through the γ = 0 network (a training pass when `train`): the stream before the
/// blocks (the stem's relu), after them (the last block's relu), the logits, and the logits of
/// `linear(32) relu linear` holding the deep network's stem and output weights.
fn identity_check(x: &Matrix<f32>, train: bool) -> Result<Identity> {
    let deep = build(true)?;
    let raw: RawConfig = toml::from_str(&base(0, 0.1, false))
        .map_err(|e| Error::config("reproduce", e.to_string()))?;
    let (cfg, _) = validate(&raw)?;
    let mut opts = cfg.build_options();
    opts.preset = None;
    let mut shallow: Net<f32> = build_net(&NetSpec::parse("linear(32) relu linear")?, &opts)?;
    let out = 2 * BLOCKS + 2;
    for (from, to) in [
        ("0.weight".to_string(), "0.weight"),
        ("0.bias".to_string(), "0.bias"),
        (format!("{out}.weight"), "2.weight"),
        (format!("{out}.bias"), "2.bias"),
    ] {
        let (Some(a), Some(b)) = (deep.find_param(&from), shallow.find_param(to)) else {
            return Err(Error::config(
                "reproduce",
                format!("no tensor {from} or {to}"),
            ));
        };
        let values = deep.param_values(a).to_vec();
        shallow.param_values_mut(b).copy_from_slice(&values);
    }
    let forward = |net: &Net<f32>| {
        let mut ws = Workspace::new(net, x.rows());
        let idx: Vec<usize> = (0..x.rows()).collect();
        ws.load_rows(x, &idx);
        let mut rng = stream(0, Stream::Dropout);
        let pass = if train {
            Pass::Train(&mut rng)
        } else {
            Pass::Eval
        };
        net.forward(&mut ws, pass);
        ws
    };
    let logits_of = |ws: &Workspace<f32>| {
        ws.caches
            .last()
            .expect("modules")
            .output()
            .as_slice()
            .to_vec()
    };
    let ws = forward(&deep);
    let (before, after) = stream_ends(&ws);
    let logits = logits_of(&ws);
    let shallow = logits_of(&forward(&shallow));
    Ok(Identity {
        before: before.as_slice().to_vec(),
        after: after.as_slice().to_vec(),
        logits,
        shallow,
    })
}

/// The stream before the blocks (the stem's output: the engine runs `linear(32) relu` as one
/// module) and after them (the last block's relu; the output layer follows).
fn stream_ends(ws: &Workspace<f32>) -> (&Matrix<f32>, &Matrix<f32>) {
    let n = ws.caches.len();
    assert_eq!(n, 2 * BLOCKS + 2, "stem, BLOCKS (res, relu) pairs, output");
    (ws.caches[0].output(), ws.caches[n - 2].output())
}

/// The stream's second moment per unit before and after the blocks (training pass), for γ = 0
/// and γ = 1.
fn stream_moments(x: &Matrix<f32>) -> Result<[(f64, f64); 2]> {
    let moment = |m: &Matrix<f32>| {
        m.as_slice()
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            / m.as_slice().len() as f64
    };
    let mut out = [(0.0, 0.0); 2];
    for (k, zero_gamma) in [true, false].into_iter().enumerate() {
        let net = build(zero_gamma)?;
        let mut ws = Workspace::new(&net, x.rows());
        let idx: Vec<usize> = (0..x.rows()).collect();
        ws.load_rows(x, &idx);
        let mut rng = stream(0, Stream::Dropout);
        net.forward(&mut ws, Pass::Train(&mut rng));
        let (before, after) = stream_ends(&ws);
        out[k] = (moment(before), moment(after));
    }
    Ok(out)
}
