//! One training run: validated config + dataset -> metric records, summary and final weights.
//!
//! Step numbering: step s is the state after s updates; step 0 is the initialization. At every
//! evaluation step the full train and test splits are evaluated; the gradient norms recorded at
//! step s are those of the minibatch gradient computed at step s (before update s+1); at the last
//! step (after the last update) they are those of the gradient at the final parameters on the
//! next minibatch, so every curve ends at the last step. `lr` and `batch_loss` are recorded at
//! every evaluation step and every step whose gradient statistics are recorded. After the
//! workspace is built, a training step allocates nothing.

use std::time::Instant;

use crate::batch::{evaluate, BatchTargets, Prepared};
use crate::config::{Batch, RunConfig};
use crate::data::Dataset;
use crate::diagnostics::flow::{FlowRecorder, RecordAt};
use crate::diagnostics::spectrum::jacobian_spectrum;
use crate::diagnostics::verdict::{
    verdict, UpdateTracker, VerdictInputs, WakeTracker, VANISH_WINDOW,
};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::DenseGrads;
use crate::lsuv::{lsuv, LsuvLayer};
use crate::matrix::norm;
use crate::matrix::Matrix;
use crate::network::{init_params, Mlp, Params, Workspace};
use crate::optim::{clip_grad_norm, warmup_factor, Optimizer};
use crate::records::{nonfinite_diagnostics, EvalPoint, MetricRecord, RunOutput, Status, Summary};
use crate::rng::{self, Stream};
use crate::scalar::Float;
use crate::weights::WeightsFile;

/// Rows evaluated at once when computing full-split losses.
const EVAL_CHUNK: usize = 1024;

/// Progress reported to the caller while training (the library never prints).
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// `step` updates of `total` are done.
    Step { step: usize, total: usize },
    /// An evaluation finished.
    Eval(&'a EvalPoint),
}

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
    if let Some(path) = &cfg.init_from {
        let file = WeightsFile::read(path)?;
        if let Some(want) = &cfg.init_from_sha256 {
            if *want != file.sha256 {
                return Err(Error::file(
                    path,
                    format!(
                        "changed since the run was configured (SHA-256 {}, the run id was made from {want})",
                        file.sha256
                    ),
                ));
            }
        }
        return Ok(InitialState {
            params: file.params(&cfg.arch, cfg.bias)?,
            lsuv: Vec::new(),
        });
    }
    let inits = cfg.layer_inits();
    let mut params = init_params(&cfg.arch, &inits, cfg.bias, cfg.seed, cfg.act);
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
        lsuv_report = lsuv(&mut params, cfg.act, &x, &which);
    }
    Ok(InitialState {
        params,
        lsuv: lsuv_report,
    })
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

fn train_typed<T: Float>(
    cfg: &RunConfig,
    data: &Dataset,
    start: InitialState,
    observer: &mut dyn FnMut(&Event),
) -> RunOutput {
    // The starting point as the run holds it (the f64 draws rounded to its precision), so the
    // verdict compares like with like.
    let params = Mlp::<T>::from_params(&start.params, cfg.act).params();
    let started = Instant::now();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let run_id = cfg.run_id();
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

    let mut net = Mlp::<T>::from_params(&params, cfg.act);
    let mut ws = Workspace::<T>::new(&cfg.arch, capacity, cfg.dropout > 0.0);
    let mut bt = BatchTargets::<T>::new(capacity, outputs);
    let mut opt = Optimizer::new(cfg.optim.clone(), &net.layers);
    let mut shuffle_rng = rng::stream(cfg.seed, Stream::Shuffle);
    let mut dropout_rng = rng::stream(cfg.seed, Stream::Dropout);
    let mut noise_rng = rng::stream(cfg.seed, Stream::GradNoise);
    let mut order: Vec<usize> = (0..n).collect();
    let mut eval_idx = Vec::with_capacity(capacity);
    let mut wake = WakeTracker::new(net.layers.len());
    // The last VANISH_WINDOW steps keep their gradients and measure their updates.
    let window_start = cfg.steps.saturating_sub(VANISH_WINDOW);
    let mut updates = UpdateTracker::new(&net.layers);
    let mut grad_norms_step0 = Vec::new();
    let mut flow = cfg
        .diagnostics
        .then(|| FlowRecorder::new(&net, cfg.symmetry_tolerance()));

    let mut metrics = Vec::new();
    if cfg.diagnostics {
        record_jacobian(
            &mut metrics,
            0,
            &params,
            cfg.act,
            &data.train.x.head_f64(JACOBIAN_INPUTS),
        );
    }
    let mut evals: Vec<EvalPoint> = Vec::new();
    let mut diverged_at = None;
    let mut steps_done = 0;
    // The last step whose gradient statistics were recorded.
    let mut last_flow_step: Option<usize> = None;

    let mut eval = |net: &Mlp<T>, ws: &mut Workspace<T>, bt: &mut BatchTargets<T>, step: usize| {
        let (train_loss, train_acc) = evaluate(net, ws, bt, &mut eval_idx, &train, cfg.loss);
        let (test_loss, test_acc) = evaluate(net, ws, bt, &mut eval_idx, &test, cfg.loss);
        let (val_loss, val_acc) = match &val {
            Some(v) => {
                let (l, a) = evaluate(net, ws, bt, &mut eval_idx, v, cfg.loss);
                (Some(l), a)
            }
            None => (None, None),
        };
        EvalPoint {
            step,
            train_loss,
            train_acc,
            test_loss,
            test_acc,
            val_loss,
            val_acc,
        }
    };
    let record_eval = |metrics: &mut Vec<MetricRecord>, e: &EvalPoint| {
        let mut push = |name: &str, v: f64| {
            metrics.push(MetricRecord {
                step: e.step,
                metric: name.to_string(),
                layer: None,
                value: v,
            })
        };
        push("train_loss", e.train_loss);
        if let Some(a) = e.train_acc {
            push("train_acc", a);
        }
        push("test_loss", e.test_loss);
        if let Some(a) = e.test_acc {
            push("test_acc", a);
        }
        if let Some(l) = e.val_loss {
            push("val_loss", l);
        }
        if let Some(a) = e.val_acc {
            push("val_acc", a);
        }
    };

    for step in 0..cfg.steps {
        let pos = step % steps_per_epoch;
        if pos == 0 && cfg.batch != Batch::Full {
            rng::shuffle(&mut shuffle_rng, &mut order);
        }
        let is_eval = step % cfg.eval_every == 0;
        if is_eval {
            let e = eval(&net, &mut ws, &mut bt, step);
            record_eval(&mut metrics, &e);
            observer(&Event::Eval(&e));
            let finite = e.train_loss.is_finite();
            evals.push(e);
            if !finite {
                diverged_at = Some(step);
                break;
            }
        }
        let idx = &order[pos * bs..((pos + 1) * bs).min(n)];
        ws.load_rows(&train.x, idx);
        bt.load(&train, idx);
        let dropout = (cfg.dropout > 0.0).then_some((cfg.dropout, &mut dropout_rng));
        let lr = cfg.schedule.lr(cfg.optim.lr, step, cfg.steps) * warmup_factor(step, cfg.warmup);
        let recorded = flow
            .as_mut()
            .and_then(|f| f.schedule(step).map(|at| (f, at)));
        // Nothing reads this step's gradients (every layer is awake, no gradient-flow record,
        // noise or clipping) and the optimizer is plain SGD: the update is fused into the
        // backward pass, which saves the gradients' memory traffic and a pass over the weights.
        let fused = step > 0
            && recorded.is_none()
            && wake.all_awake()
            && opt.config.is_plain_sgd()
            && cfg.grad_noise == 0.0
            && cfg.clip_grad_norm.is_none()
            && step < window_start;
        let targets = bt.targets(cfg.loss);
        let batch_loss = if fused {
            net.loss_and_sgd_step(&mut ws, cfg.loss, targets, dropout, lr)
        } else {
            net.loss_and_grads(&mut ws, cfg.loss, targets, dropout)
        };
        if !batch_loss.is_finite() {
            diverged_at = Some(step);
            break;
        }
        if !fused {
            wake.observe(step, &ws.grads);
        }
        // Gradient norms before any added noise; the weights before the update.
        let in_window = !fused && step >= window_start;
        if in_window {
            updates.before_update(&net.layers, &ws.grads);
        }
        if step == 0 {
            grad_norms_step0 = ws
                .grads
                .iter()
                .map(|g| (g.d_weight.norm(), norm(&g.d_bias)))
                .collect();
        }
        let recorded = match recorded {
            Some((f, at)) => {
                f.before_update(step, at, &net, &ws, &mut metrics);
                last_flow_step = Some(step);
                true
            }
            None => false,
        };
        if is_eval || recorded {
            push_step_metrics(&mut metrics, step, batch_loss, lr);
        }
        if cfg.grad_noise > 0.0 {
            add_gradient_noise(&mut ws.grads, &net, cfg.grad_noise, &mut noise_rng);
        }
        if let Some(max_norm) = cfg.clip_grad_norm {
            clip_grad_norm(&mut ws.grads, max_norm);
        }
        if fused {
            opt.steps += 1;
        } else {
            opt.step(&mut net.layers, &ws.grads, lr);
        }
        if in_window {
            updates.after_update(&net.layers, lr / cfg.optim.lr);
        }
        if recorded {
            if let Some(f) = flow.as_mut() {
                f.after_update(step, &net, &mut metrics);
            }
        }
        steps_done = step + 1;
        observer(&Event::Step {
            step: steps_done,
            total: cfg.steps,
        });
    }

    // The final state is always evaluated, diverged or not (a diverged run records its NaNs).
    if evals.last().map(|l| l.step) != Some(steps_done) {
        let e = eval(&net, &mut ws, &mut bt, steps_done);
        record_eval(&mut metrics, &e);
        observer(&Event::Eval(&e));
        evals.push(e);
    }
    if diverged_at.is_none() && evals.last().is_some_and(|e| !e.train_loss.is_finite()) {
        diverged_at = Some(steps_done);
    }
    let first = evals
        .first()
        .expect("step 0 or the final step is always evaluated");
    let last = evals.last().expect("at least one evaluation");
    let final_params = net.params();
    if let Some(f) = flow.as_mut() {
        // The gradient statistics end at the last step, like the losses: the gradient at the
        // final parameters on the batch that would come next (no update follows it).
        if diverged_at.is_none() && last_flow_step.is_some_and(|s| s < steps_done) {
            let pos = steps_done % steps_per_epoch;
            let idx = &order[pos * bs..((pos + 1) * bs).min(n)];
            ws.load_rows(&train.x, idx);
            bt.load(&train, idx);
            let dropout = (cfg.dropout > 0.0).then_some((cfg.dropout, &mut dropout_rng));
            let batch_loss = net.loss_and_grads(&mut ws, cfg.loss, bt.targets(cfg.loss), dropout);
            let at = RecordAt {
                dense: true,
                sparse: false,
            };
            f.before_update(steps_done, at, &net, &ws, &mut metrics);
            let lr = cfg.schedule.lr(cfg.optim.lr, steps_done, cfg.steps)
                * warmup_factor(steps_done, cfg.warmup);
            push_step_metrics(&mut metrics, steps_done, batch_loss, lr);
        }
        f.record_structure(steps_done, &net, &mut metrics);
        f.record_weight_histograms(steps_done, &net);
        // Activations at the end, on the first training rows.
        let idx: Vec<usize> = (0..bs.min(n)).collect();
        ws.load_rows(&train.x, &idx);
        net.forward(&mut ws, None);
        f.record_activation_histograms(steps_done, &net, &ws);
        if cfg.jacobian_end {
            record_jacobian(
                &mut metrics,
                steps_done,
                &final_params,
                cfg.act,
                &data.train.x.head_f64(JACOBIAN_INPUTS),
            );
        }
    }
    let mut breakers = Vec::new();
    if cfg.dropout > 0.0 {
        breakers.push(format!("dropout {}", cfg.dropout));
    }
    if cfg.grad_noise > 0.0 {
        breakers.push(format!("gradient noise std {}", cfg.grad_noise));
    }
    let verdict = verdict(VerdictInputs {
        initial: &params,
        last: &final_params,
        act: cfg.act,
        wake: &wake.wake,
        grad_states: &updates.states(&wake.wake),
        grad_norms_end: &updates.grad_norm_end,
        grad_norms_step0: &grad_norms_step0,
        steps: steps_done,
        diverged: diverged_at.is_some(),
        loss_start: first.train_loss,
        loss_end: last.train_loss,
        loss_constant_baseline: data.train.y.constant_baseline(cfg.loss, outputs),
        tol: cfg.symmetry_tolerance(),
        symmetry_breakers: breakers,
    });
    let wall_seconds = started.elapsed().as_secs_f64();
    let (nonfinite_count, nonfinite_metrics, nonfinite_first) = nonfinite_diagnostics(&metrics);
    let summary = Summary {
        run_id,
        status: if diverged_at.is_some() {
            Status::Diverged
        } else {
            Status::Ok
        },
        steps: steps_done,
        diverged_at_step: diverged_at,
        loss_start: first.train_loss,
        train_loss: last.train_loss,
        train_acc: last.train_acc,
        test_loss: last.test_loss,
        test_acc: last.test_acc,
        val_loss: last.val_loss,
        val_acc: last.val_acc,
        num_params: net.num_params(),
        lsuv: start.lsuv,
        precision: T::NAME.to_string(),
        wall_seconds,
        samples_per_second: (steps_done * bs) as f64 / wall_seconds.max(1e-9),
        nonfinite_diagnostics: nonfinite_count,
        nonfinite_metrics,
        nonfinite_first,
        verdict,
    };
    let histograms = flow.map(|f| f.histograms).unwrap_or_default();
    RunOutput {
        config: cfg.clone(),
        summary,
        evals,
        metrics,
        histograms,
        started_at,
        initial_params: params,
        params: final_params,
    }
}

/// The per-step metrics of an evaluation step: the minibatch loss and the learning rate.
fn push_step_metrics(metrics: &mut Vec<MetricRecord>, step: usize, batch_loss: f64, lr: f64) {
    for (name, value) in [("batch_loss", batch_loss), ("lr", lr)] {
        metrics.push(MetricRecord {
            step,
            metric: name.to_string(),
            layer: None,
            value,
        });
    }
}

/// Adds N(0, std²) from the `GradNoise` stream to every weight and (present) bias gradient.
fn add_gradient_noise<T: Float>(
    grads: &mut [DenseGrads<T>],
    net: &Mlp<T>,
    std: f64,
    rng: &mut rng::Rng,
) {
    for (g, layer) in grads.iter_mut().zip(&net.layers) {
        for x in g.d_weight.as_mut_slice() {
            *x += T::from_f64(std * rng::normal(rng));
        }
        if layer.has_bias {
            for x in &mut g.d_bias {
                *x += T::from_f64(std * rng::normal(rng));
            }
        }
    }
}

/// Inputs the Jacobian spectrum is averaged over.
const JACOBIAN_INPUTS: usize = 32;

fn record_jacobian(
    metrics: &mut Vec<MetricRecord>,
    step: usize,
    params: &Params,
    act: crate::activation::Activation,
    x: &Matrix<f64>,
) {
    let j = jacobian_spectrum(params, act, x, x.rows());
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
        });
    }
}
