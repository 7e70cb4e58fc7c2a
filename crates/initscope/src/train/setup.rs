//! Set-up: where a run starts (drawn, LSUV-calibrated or loaded parameters) and the state of a
//! run before its first step (data in the training precision, network, workspace, optimizer,
//! random streams, trackers).

use std::time::Instant;

use super::{Run, EVAL_CHUNK, JACOBIAN_INPUTS};
use crate::batch::{BatchTargets, Prepared};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::diagnostics::flow::FlowRecorder;
use crate::diagnostics::verdict::{UpdateTracker, WakeTracker, VANISH_WINDOW};
use crate::diagnostics::wake::{predict, WakeMeasure};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::lsuv::{lsuv, LsuvLayer};
use crate::nn::build::build_net;
use crate::nn::{init_params, Net, Params, Workspace};
use crate::optim::Optimizer;
use crate::rng::{self, Stream};
use crate::scalar::Float;
use crate::weights::{NamedTensors, WeightsFile};

/// Where a run starts: its parameters, and what LSUV did when it was used.
#[derive(Clone, Debug, PartialEq)]
pub struct InitialState {
    pub params: Params,
    pub lsuv: Vec<LsuvLayer>,
}

/// Rows LSUV calibrates on.
pub const LSUV_BATCH: usize = 256;

/// The starting parameters: loaded from `init_from` when set, else drawn from the initializers,
/// then LSUV-calibrated on a batch of training rows (drawn from stream `Lsuv`) for layers whose
/// initializer is `lsuv`.
pub fn initial_params(cfg: &RunConfig, data: &Dataset) -> Result<InitialState> {
    if let (Some(path), Some(_)) = (&cfg.init_from, &cfg.net) {
        let file = NamedTensors::read(path)?;
        check_unchanged(cfg, path, &file.sha256)?;
        return params_from(cfg, &file);
    }
    if let Some(path) = &cfg.init_from {
        let file = WeightsFile::read(path)?;
        check_unchanged(cfg, path, &file.sha256)?;
        return Ok(InitialState {
            params: file.params(&cfg.arch, cfg.bias)?,
            lsuv: Vec::new(),
        });
    }
    let inits = cfg.layer_inits();
    let mut net: Net<f64> = match &cfg.net {
        None => Net::from_params(
            &init_params(&cfg.arch, &inits, cfg.bias, cfg.seed, cfg.act),
            cfg.act,
        ),
        Some(spec) => build_net(spec, &cfg.build_options())?,
    };
    let which: Vec<Option<(f64, usize)>> = inits
        .iter()
        .map(|i| match i.weight {
            Init::Lsuv { tol, max_iter } => Some((tol, max_iter)),
            _ => None,
        })
        .collect();
    let mut lsuv_report = Vec::new();
    if which.iter().any(Option::is_some) {
        let n = data.train.len();
        let mut order: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut rng::stream(cfg.seed, Stream::Lsuv), &mut order);
        order.truncate(LSUV_BATCH.min(n));
        let x = data.train.x.select_f64(&order);
        lsuv_report = lsuv(&mut net, &x, &which);
    }
    Ok(InitialState {
        params: net.params(),
        lsuv: lsuv_report,
    })
}

/// The starting parameters set from named tensors, as `load_state_dict(strict=True)` would: a
/// `--net` network's by its `state_dict` names, a plain MLP's as `{2(l-1)}.weight` and
/// `{2(l-1)}.bias` (an `nn.Sequential(Linear, act, ..., Linear)`). Every tensor of the network
/// must be there with its shape, and nothing else.
pub fn params_from(cfg: &RunConfig, tensors: &NamedTensors) -> Result<InitialState> {
    let mut net: Net<f64> = match &cfg.net {
        Some(spec) => build_net(spec, &cfg.build_options())?,
        None => {
            let zeros: Vec<crate::nn::LayerParams> = cfg
                .arch
                .windows(2)
                .map(|w| crate::nn::LayerParams {
                    weight: crate::matrix::Matrix::zeros(w[1], w[0]),
                    bias: cfg.bias.then(|| vec![0.0; w[1]]),
                })
                .collect();
            Net::plain(&zeros, cfg.act, cfg.dropout)
        }
    };
    tensors.load_into(&mut net)?;
    Ok(InitialState {
        params: net.params(),
        lsuv: Vec::new(),
    })
}

/// Refuses a weights file whose contents changed since the run id was made from them.
fn check_unchanged(cfg: &RunConfig, path: &std::path::Path, sha256: &str) -> Result<()> {
    match &cfg.init_from_sha256 {
        Some(want) if want != sha256 => Err(Error::file(
            path,
            format!(
                "changed since the run was configured (SHA-256 {sha256}, the run id was made from {want})"
            ),
        )),
        _ => Ok(()),
    }
}

impl<'a, T: Float> Run<'a, T> {
    /// Everything a run holds before step 0; the Jacobian spectrum at the initialization is
    /// recorded here (diagnostics on).
    pub(super) fn set_up(cfg: &'a RunConfig, data: &'a Dataset, start: InitialState) -> Self {
        // The starting point as the run holds it (the f64 draws rounded to its precision), so the
        // verdict compares like with like.
        let initial = cfg.network::<T>(&start.params).params();
        let started = Instant::now();
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let outputs = *cfg.arch.last().expect("validated arch");
        let train = Prepared::<T>::new(&data.train, cfg.loss, outputs);
        let test = Prepared::<T>::new(&data.test, cfg.loss, outputs);
        let val = data
            .val
            .as_ref()
            .map(|v| Prepared::<T>::new(v, cfg.loss, outputs));
        let n = train.len();
        let bs = cfg.batch_size(n);
        let steps_per_epoch = n.div_ceil(bs);
        let capacity =
            bs.max(EVAL_CHUNK.min(n.max(test.len()).max(val.as_ref().map_or(0, Prepared::len))));

        let net = cfg.network::<T>(&initial);
        let ws = Workspace::<T>::new(&net, capacity);
        let bt = BatchTargets::<T>::new(capacity, outputs);
        let opt = Optimizer::new(cfg.optim.clone(), &net);
        let wake = WakeTracker::new(net.num_layers());
        let tensor_wake = cfg.net.is_some().then(|| {
            (
                predict(&net, cfg.loss, &cfg.optim),
                WakeMeasure::new(net.param_infos().len()),
            )
        });
        let updates = UpdateTracker::new(&net, cfg.net.is_some());
        let flow = cfg
            .diagnostics
            .then(|| FlowRecorder::new(&net, cfg.symmetry_tolerance()));
        let mut metrics = Vec::new();
        if cfg.diagnostics {
            super::record_jacobian(
                &mut metrics,
                0,
                cfg,
                &initial,
                &data.train.x.head_f64(JACOBIAN_INPUTS),
            );
        }
        Run {
            cfg,
            data,
            lsuv: start.lsuv,
            initial,
            started,
            started_at,
            outputs,
            train,
            test,
            val,
            n,
            bs,
            steps_per_epoch,
            net,
            ws,
            bt,
            opt,
            shuffle_rng: rng::stream(cfg.seed, Stream::Shuffle),
            dropout_rng: rng::stream(cfg.seed, Stream::Dropout),
            noise_rng: rng::stream(cfg.seed, Stream::GradNoise),
            order: (0..n).collect(),
            eval_idx: Vec::with_capacity(capacity),
            wake,
            tensor_wake,
            // The last VANISH_WINDOW steps keep their gradients and measure their updates.
            window_start: cfg.steps.saturating_sub(VANISH_WINDOW),
            updates,
            grad_norms_step0: Vec::new(),
            flow,
            metrics,
            evals: Vec::new(),
            diverged_at: None,
            steps_done: 0,
            last_flow_step: None,
        }
    }
}
