//! One training run: validated config + dataset -> metric records, summary and final weights.
//!
//! Step numbering: step s is the state after s updates; step 0 is the initialization. At every
//! evaluation step the full train and test splits are evaluated; the gradient norms recorded at
//! step s are those of the minibatch gradient computed at step s (before update s+1); at the last
//! step (after the last update) they are those of the gradient at the final parameters on the
//! next minibatch, so every curve ends at the last step. `lr` and `batch_loss` are recorded at
//! every evaluation step and every step whose gradient statistics are recorded. After the
//! workspace is built, a training step allocates nothing.
//!
//! The run is a `Run` value that goes through four parts, one file each: set-up (`setup.rs`:
//! starting parameters, data in the training precision, network, workspace, optimizer,
//! streams), the step (`step.rs`), evaluation (`eval.rs`) and the finish (`finish.rs`: end-of-run
//! diagnostics, verdict, summary).

mod eval;
mod finish;
pub mod lanes;
mod live;
mod setup;
mod step;

use std::time::Instant;

pub use lanes::{share_a_pack, train_together};
pub use live::Live;
pub use setup::{initial_params, params_from, InitialState, LSUV_BATCH};

use crate::batch::{BatchTargets, Prepared};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::diagnostics::flow::FlowRecorder;
use crate::diagnostics::spectrum::{jacobian_spectrum, net_jacobian_spectrum};
use crate::diagnostics::verdict::{UpdateTracker, WakeTracker};
use crate::diagnostics::wake::{WakeMeasure, WakePrediction};
use crate::error::Result;
use crate::lsuv::LsuvLayer;
use crate::matrix::Matrix;
use crate::nn::{Net, Params, Workspace};
use crate::optim::Optimizer;
use crate::records::{EvalPoint, MetricRecord, RunOutput};
use crate::rng;
use crate::scalar::Float;

/// Rows evaluated at once when computing full-split losses.
const EVAL_CHUNK: usize = 1024;

/// Inputs the Jacobian spectrum is averaged over.
const JACOBIAN_INPUTS: usize = 32;

/// Progress reported to the caller while training (the library never prints).
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// `step` updates of `total` are done.
    Step { step: usize, total: usize },
    /// An evaluation finished.
    Eval(&'a EvalPoint),
}

/// Trains as `cfg` says, in its precision, from its initial parameters.
pub fn train(
    cfg: &RunConfig,
    data: &Dataset,
    observer: &mut dyn FnMut(&Event),
) -> Result<RunOutput> {
    let start = initial_params(cfg, data)?;
    Ok(train_from(cfg, data, start, observer))
}

/// Trains from the given starting state (shapes must match `cfg.arch`).
pub fn train_from(
    cfg: &RunConfig,
    data: &Dataset,
    start: InitialState,
    observer: &mut dyn FnMut(&Event),
) -> RunOutput {
    match cfg.precision {
        crate::config::Precision::F32 => train_typed::<f32>(cfg, data, start, observer),
        crate::config::Precision::F64 => train_typed::<f64>(cfg, data, start, observer),
    }
}

/// The training loop: evaluate every `eval_every` steps, take the steps, stop at the first
/// non-finite loss, finish.
fn train_typed<T: Float>(
    cfg: &RunConfig,
    data: &Dataset,
    start: InitialState,
    observer: &mut dyn FnMut(&Event),
) -> RunOutput {
    let mut run = Live::<T>::new(cfg, data, start);
    run.advance(cfg.steps, observer);
    run.finish(observer)
}

/// One run in progress, in precision `T`.
struct Run<'a, T: Float> {
    cfg: &'a RunConfig,
    data: &'a Dataset<'a>,
    /// What LSUV did (for the summary).
    lsuv: Vec<LsuvLayer>,
    /// The starting parameters as the run holds them (rounded to its precision).
    initial: Params,
    started: Instant,
    /// Seconds since the Unix epoch at the start (TensorBoard's wall time).
    started_at: f64,
    /// Output width (the last layer's fan_out).
    outputs: usize,
    train: Prepared<'a, T>,
    test: Prepared<'a, T>,
    val: Option<Prepared<'a, T>>,
    /// Training rows.
    n: usize,
    /// Batch size.
    bs: usize,
    steps_per_epoch: usize,
    net: Net<T>,
    ws: Workspace<T>,
    bt: BatchTargets<T>,
    opt: Optimizer<T>,
    shuffle_rng: rng::Rng,
    dropout_rng: rng::Rng,
    noise_rng: rng::Rng,
    /// The training rows in this epoch's order.
    order: Vec<usize>,
    eval_idx: Vec<usize>,
    wake: WakeTracker,
    /// Every tensor's wake-up step, predicted at the start and measured (`--net` networks).
    tensor_wake: Option<(WakePrediction, WakeMeasure)>,
    /// The first step of the last VANISH_WINDOW steps (which keep their gradients).
    window_start: usize,
    updates: UpdateTracker<T>,
    /// (||dW_l||, ||db_l||) at step 0.
    grad_norms_step0: Vec<(f64, f64)>,
    flow: Option<FlowRecorder<T>>,
    metrics: Vec<MetricRecord>,
    evals: Vec<EvalPoint>,
    diverged_at: Option<usize>,
    /// Updates taken.
    steps_done: usize,
    /// The last step whose gradient statistics were recorded.
    last_flow_step: Option<usize>,
}

/// The Jacobian spectrum of `cfg`'s network at `params` over the rows of `x`, as metric
/// records: the product of a plain MLP's layer Jacobians, or by backpropagation through any
/// other network (in evaluation mode).
fn record_jacobian(
    metrics: &mut Vec<MetricRecord>,
    step: usize,
    cfg: &RunConfig,
    params: &Params,
    x: &Matrix<f64>,
) {
    let j = match &cfg.net {
        None => jacobian_spectrum(params, cfg.act, x, x.rows()),
        Some(_) => net_jacobian_spectrum(&cfg.network::<f64>(params), x, x.rows()),
    };
    for (metric, value) in [
        ("jacobian_sv2_mean", j.mean),
        ("jacobian_sv2_var", j.variance),
        ("jacobian_sv2_max", j.max),
    ] {
        metrics.push(MetricRecord {
            step,
            metric: metric.into(),
            layer: None,
            value,
            module: None,
        });
    }
}
