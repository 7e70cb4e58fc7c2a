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

use serde::{Deserialize, Serialize};

use crate::config::{Batch, RunConfig};
use crate::data::{Dataset, Labels, Split};
use crate::diagnostics::flow::{FlowRecorder, RecordAt};
use crate::diagnostics::spectrum::jacobian_spectrum;
use crate::diagnostics::verdict::{
    verdict, Learning, UpdateTracker, Verdict, VerdictInputs, WakeTracker, VANISH_WINDOW,
};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::DenseGrads;
use crate::loss::{Loss, Targets};
use crate::lsuv::{lsuv, LsuvLayer};
use crate::matrix::norm;
use crate::matrix::Matrix;
use crate::network::{init_params, Mlp, Params, Workspace};
use crate::optim::{clip_grad_norm, warmup_factor, Optimizer};
use crate::output::json::{f64_or_null, vec_f64_or_null};
use crate::output::safetensors::WeightsFile;
use crate::rng::{self, Stream};
use crate::scalar::Float;

/// Rows evaluated at once when computing full-split losses.
const EVAL_CHUNK: usize = 1024;

/// One value of one metric at one step; `layer` is 1-based, `None` for whole-network metrics.
/// `value` may be NaN or infinite (metrics.csv writes `NaN`, `inf`, `-inf`; JSON null reads back
/// as NaN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    pub step: usize,
    pub metric: String,
    pub layer: Option<usize>,
    #[serde(deserialize_with = "f64_or_null")]
    pub value: f64,
}

/// A histogram of one layer's weights or gradients at one step (for TensorBoard). In
/// `histograms.json` non-finite figures are null and read back as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramRecord {
    pub step: usize,
    pub layer: usize,
    /// "weights" or "grads".
    pub name: String,
    #[serde(deserialize_with = "f64_or_null")]
    pub min: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub max: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub num: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub sum: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub sum_squares: f64,
    /// Right edges of equal-width buckets over [min, max].
    #[serde(deserialize_with = "vec_f64_or_null")]
    pub bucket_limit: Vec<f64>,
    #[serde(deserialize_with = "vec_f64_or_null")]
    pub bucket: Vec<f64>,
}

impl HistogramRecord {
    pub fn new(step: usize, layer: usize, name: &str, values: &[f64], buckets: usize) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (min, max) = if values.is_empty() {
            (0.0, 0.0)
        } else {
            (min, max)
        };
        let buckets = buckets.max(1);
        let width = (max - min) / buckets as f64;
        let mut bucket = vec![0.0; buckets];
        for &v in values {
            let i = if width > 0.0 {
                (((v - min) / width) as usize).min(buckets - 1)
            } else {
                0
            };
            bucket[i] += 1.0;
        }
        let bucket_limit = (1..=buckets)
            .map(|i| {
                if i == buckets {
                    max
                } else {
                    min + width * i as f64
                }
            })
            .collect();
        HistogramRecord {
            step,
            layer,
            name: name.to_string(),
            min,
            max,
            num: values.len() as f64,
            sum: values.iter().sum(),
            sum_squares: values.iter().map(|v| v * v).sum(),
            bucket_limit,
            bucket,
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The loss became NaN or infinite; the run stopped there. A result, not an error.
    Diverged,
}

/// The figures of one evaluation. Non-finite losses are written to JSON as null and read back as
/// NaN ([`crate::output::json`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    #[serde(deserialize_with = "f64_or_null")]
    pub train_loss: f64,
    pub train_acc: Option<f64>,
    #[serde(deserialize_with = "f64_or_null")]
    pub test_loss: f64,
    pub test_acc: Option<f64>,
    /// Validation figures, when the data has a validation split.
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
}

/// `summary.json`. Accuracies are null for regression. Non-finite figures (the losses of a
/// diverged run, an overflowing norm) are written as null, which JSON readers such as Python's
/// `json.load` see as None, and read back here as NaN (or None for the optional figures); see
/// [`crate::output::json`]. Fields added later carry serde defaults, so older files still load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub status: Status,
    /// Updates taken.
    pub steps: usize,
    /// The step whose loss was not finite, when diverged.
    pub diverged_at_step: Option<usize>,
    /// Full training-set loss at the initialization (step 0).
    #[serde(deserialize_with = "f64_or_null")]
    pub loss_start: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub train_loss: f64,
    pub train_acc: Option<f64>,
    #[serde(deserialize_with = "f64_or_null")]
    pub test_loss: f64,
    pub test_acc: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    pub num_params: usize,
    /// What LSUV did per layer (empty unless an `lsuv` initializer was used).
    pub lsuv: Vec<LsuvLayer>,
    pub precision: String,
    #[serde(deserialize_with = "f64_or_null")]
    pub wall_seconds: f64,
    #[serde(deserialize_with = "f64_or_null")]
    pub samples_per_second: f64,
    /// Diagnostic values recorded NaN or infinite (see [`nonfinite_diagnostics`]): a run whose
    /// loss stayed finite can still overflow its norms (weights near 1e155 square past f64's
    /// range). metrics.csv keeps the values; 0 in files written before the field existed.
    #[serde(default)]
    pub nonfinite_diagnostics: usize,
    /// The metrics those values belong to, in order of first appearance.
    #[serde(default)]
    pub nonfinite_metrics: Vec<String>,
    /// The first of them in recording order.
    #[serde(default)]
    pub nonfinite_first: Option<MetricAt>,
    /// The verdict fields (layers, baseline, breakers, verdict, summary), as `explain` gives them.
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl Summary {
    /// The learning judgement: as recorded, or (in summaries written before it existed) judged
    /// from the recorded figures by the same rule ([`Learning::judge`]).
    pub fn learning(&self) -> Learning {
        self.verdict.learning.unwrap_or_else(|| {
            Learning::judge(
                self.status == Status::Diverged,
                self.train_loss,
                self.verdict.loss_constant_baseline,
            )
        })
    }
}

/// Where a metric value was recorded: metric name, layer (1-based, None for whole-network
/// metrics) and step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricAt {
    pub metric: String,
    pub layer: Option<usize>,
    pub step: usize,
}

/// The metrics that are evaluation figures (losses, accuracies) or settings (the learning rate),
/// not diagnostics: a non-finite loss is reported as divergence, not as a diagnostic.
pub const EVAL_METRICS: &[&str] = &[
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "val_loss",
    "val_acc",
    "batch_loss",
    "lr",
];

/// The non-finite diagnostic values among `metrics`: their count, their metric names (in order of
/// first appearance) and the first of them. Evaluation figures ([`EVAL_METRICS`]) are not
/// diagnostics, and a ratio left undefined by a zero denominator (`grad_to_weight` or
/// `update_ratio` of a layer whose `weight_norm` is exactly 0 at that step: NaN by definition,
/// e.g. every zero-initialized layer at step 0) is not counted.
pub fn nonfinite_diagnostics(metrics: &[MetricRecord]) -> (usize, Vec<String>, Option<MetricAt>) {
    let zero_weights: std::collections::HashSet<(usize, Option<usize>)> = metrics
        .iter()
        .filter(|m| m.metric == "weight_norm" && m.value == 0.0)
        .map(|m| (m.step, m.layer))
        .collect();
    let mut count = 0;
    let mut names: Vec<String> = Vec::new();
    let mut first = None;
    for m in metrics {
        if m.value.is_finite() || EVAL_METRICS.contains(&m.metric.as_str()) {
            continue;
        }
        let undefined_ratio = m.value.is_nan()
            && matches!(m.metric.as_str(), "grad_to_weight" | "update_ratio")
            && zero_weights.contains(&(m.step, m.layer));
        if undefined_ratio {
            continue;
        }
        count += 1;
        if !names.contains(&m.metric) {
            names.push(m.metric.clone());
        }
        first.get_or_insert_with(|| MetricAt {
            metric: m.metric.clone(),
            layer: m.layer,
            step: m.step,
        });
    }
    (count, names, first)
}

/// Everything a run produces.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub config: RunConfig,
    pub summary: Summary,
    pub evals: Vec<EvalPoint>,
    pub metrics: Vec<MetricRecord>,
    /// Weight and gradient histograms at init, powers of two and the end (diagnostics on).
    pub histograms: Vec<HistogramRecord>,
    /// Start of the run, seconds since the Unix epoch (for TensorBoard's wall time).
    pub started_at: f64,
    /// Starting parameters (after LSUV or --init-from).
    pub initial_params: Params,
    /// Final parameters (exact in f64 for both precisions).
    pub params: Params,
}

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

/// A split in the training precision (borrowed when the data is stored in it), with targets in
/// the form the loss needs.
pub struct Prepared<'a, T: Float> {
    pub x: std::borrow::Cow<'a, Matrix<T>>, // (n, input)
    pub classes: Option<Vec<u32>>,          // labels, for cross-entropy and accuracy
    pub dense: Option<Matrix<T>>,           // (n, output): regression targets or one-hot/0-1 labels
}

impl<'a, T: Float> Prepared<'a, T> {
    pub fn new(split: &'a Split, loss: Loss, outputs: usize) -> Self {
        let x = split.x.as_matrix::<T>();
        match &split.y {
            Labels::Classes(c) => {
                let dense = (!loss.wants_classes()).then(|| {
                    let mut m = Matrix::zeros(c.len(), outputs);
                    for (i, &y) in c.iter().enumerate() {
                        if outputs == 1 {
                            m.set(i, 0, T::from_f64(y as f64));
                        } else {
                            m.set(i, y as usize, T::ONE);
                        }
                    }
                    m
                });
                Prepared {
                    x,
                    classes: Some(c.clone()),
                    dense,
                }
            }
            Labels::Values(v) => Prepared {
                x,
                classes: None,
                dense: Some(Matrix::from_f64(v)),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }
}

/// The targets of the rows currently loaded into a workspace.
pub struct BatchTargets<T> {
    pub classes: Vec<u32>,
    pub dense: Matrix<T>, // (batch, outputs)
}

impl<T: Float> BatchTargets<T> {
    pub fn new(capacity: usize, outputs: usize) -> Self {
        BatchTargets {
            classes: Vec::with_capacity(capacity),
            dense: Matrix::zeros(capacity, outputs),
        }
    }

    /// Copies the targets of rows `idx`.
    pub fn load(&mut self, data: &Prepared<T>, idx: &[usize]) {
        self.classes.clear();
        if let Some(c) = &data.classes {
            self.classes.extend(idx.iter().map(|&i| c[i]));
        }
        if let Some(d) = &data.dense {
            self.dense.set_rows(idx.len());
            for (r, &i) in idx.iter().enumerate() {
                self.dense.row_mut(r).copy_from_slice(d.row(i));
            }
        }
    }

    pub fn targets(&self, loss: Loss) -> Targets<'_, T> {
        if loss.wants_classes() {
            Targets::Classes(&self.classes)
        } else {
            Targets::Dense(&self.dense)
        }
    }
}

/// Mean loss and accuracy (None for regression) of `net` on all of `data`, in chunks.
pub fn evaluate<T: Float>(
    net: &Mlp<T>,
    ws: &mut Workspace<T>,
    bt: &mut BatchTargets<T>,
    idx: &mut Vec<usize>,
    data: &Prepared<T>,
    loss: Loss,
) -> (f64, Option<f64>) {
    let n = data.len();
    if n == 0 {
        return (f64::NAN, None);
    }
    let (mut total, mut correct) = (0.0, 0usize);
    let chunk = ws.capacity;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        idx.clear();
        idx.extend(start..end);
        ws.load_rows(&data.x, idx);
        bt.load(data, idx);
        let logits = net.forward(ws, None);
        total += loss.forward_backward(logits, bt.targets(loss), None) * (end - start) as f64;
        if data.classes.is_some() {
            correct += loss.correct(logits, &bt.classes);
        }
        start = end;
    }
    let acc = data.classes.as_ref().map(|_| correct as f64 / n as f64);
    (total / n as f64, acc)
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
        loss_constant_baseline: cfg.loss.constant_baseline(&data.train.y, outputs),
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
    act: crate::Activation,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::verdict::{GradState, LayerVerdict, VerdictKind};

    /// A summary whose every f64 field holds `x`, and whose optional figures are `Some(x)`.
    fn summary_with(x: f64) -> Summary {
        Summary {
            run_id: "r".into(),
            status: Status::Diverged,
            steps: 3,
            diverged_at_step: Some(3),
            loss_start: x,
            train_loss: x,
            train_acc: Some(x),
            test_loss: x,
            test_acc: Some(x),
            val_loss: Some(x),
            val_acc: Some(x),
            num_params: 10,
            lsuv: vec![LsuvLayer {
                layer: 1,
                iterations: 2,
                variance: x,
                converged: false,
            }],
            precision: "f64".into(),
            wall_seconds: x,
            samples_per_second: x,
            nonfinite_diagnostics: 2,
            nonfinite_metrics: vec!["weight_norm".into()],
            nonfinite_first: Some(MetricAt {
                metric: "weight_norm".into(),
                layer: Some(1),
                step: 0,
            }),
            verdict: Verdict {
                layers: vec![LayerVerdict {
                    layer: 1,
                    fan_in: 2,
                    fan_out: 2,
                    activation: "identity".into(),
                    grad_w_norm_step0: x,
                    grad_b_norm_step0: x,
                    wake_step: Some(0),
                    weights_unchanged: false,
                    width_init: 2,
                    width_end: 2,
                    width_init_tol: 2,
                    width_end_tol: 2,
                    grad_state: Some(GradState::Alive),
                    grad_w_norm_end: Some(1.0),
                }],
                loss_constant_baseline: x,
                symmetry_breakers: Vec::new(),
                symmetry_broken: false,
                verdict: VerdictKind::Full,
                learning: Some(Learning::Learned),
                verdict_version: 2,
                summary: "full".into(),
            },
        }
    }

    #[test]
    fn records_with_non_finite_figures_read_back_as_nan() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN] {
            let json = serde_json::to_string_pretty(&summary_with(x)).unwrap();
            assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
            let back: Summary = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("summary with {x} does not read back: {e}"));
            let v = &back.verdict;
            for (name, f) in [
                ("loss_start", back.loss_start),
                ("train_loss", back.train_loss),
                ("test_loss", back.test_loss),
                ("wall_seconds", back.wall_seconds),
                ("samples_per_second", back.samples_per_second),
                ("lsuv.variance", back.lsuv[0].variance),
                ("grad_w_norm_step0", v.layers[0].grad_w_norm_step0),
                ("grad_b_norm_step0", v.layers[0].grad_b_norm_step0),
                ("loss_constant_baseline", v.loss_constant_baseline),
            ] {
                assert!(f.is_nan(), "{name}: {x} read back as {f}");
            }
            // Optional figures: null is None.
            assert_eq!(
                (back.train_acc, back.test_acc, back.val_loss, back.val_acc),
                (None, None, None, None)
            );
            // Everything else survives unchanged.
            let mut expect = summary_with(0.0);
            (
                expect.train_acc,
                expect.test_acc,
                expect.val_loss,
                expect.val_acc,
            ) = (None, None, None, None);
            let mut got = back.clone();
            got.loss_start = 0.0;
            got.train_loss = 0.0;
            got.test_loss = 0.0;
            got.wall_seconds = 0.0;
            got.samples_per_second = 0.0;
            got.lsuv[0].variance = 0.0;
            got.verdict.layers[0].grad_w_norm_step0 = 0.0;
            got.verdict.layers[0].grad_b_norm_step0 = 0.0;
            got.verdict.loss_constant_baseline = 0.0;
            assert_eq!(got, expect);

            let e = EvalPoint {
                step: 1,
                train_loss: x,
                train_acc: Some(x),
                test_loss: x,
                test_acc: None,
                val_loss: Some(x),
                val_acc: None,
            };
            let back: EvalPoint = serde_json::from_str(&serde_json::to_string(&e).unwrap())
                .expect("eval point reads back");
            assert!(back.train_loss.is_nan() && back.test_loss.is_nan());

            let m = MetricRecord {
                step: 0,
                metric: "grad_norm".into(),
                layer: Some(1),
                value: x,
            };
            let back: MetricRecord = serde_json::from_str(&serde_json::to_string(&m).unwrap())
                .expect("metric record reads back");
            assert!(back.value.is_nan());

            let h = HistogramRecord {
                step: 0,
                layer: 1,
                name: "weights".into(),
                min: x,
                max: x,
                num: x,
                sum: x,
                sum_squares: x,
                bucket_limit: vec![x, 0.5, 1.0],
                bucket: vec![3.0, x, 1.0],
            };
            let back: Vec<HistogramRecord> =
                serde_json::from_str(&serde_json::to_string(&vec![h.clone()]).unwrap())
                    .expect("histograms read back");
            let b = &back[0];
            for f in [b.min, b.max, b.num, b.sum, b.sum_squares] {
                assert!(f.is_nan());
            }
            assert!(b.bucket_limit[0].is_nan() && b.bucket[1].is_nan());
            assert_eq!(b.bucket_limit[1..], h.bucket_limit[1..]);
            assert_eq!(b.bucket[0], h.bucket[0]);
        }
    }

    #[test]
    fn summaries_written_before_the_nonfinite_fields_still_load() {
        let mut v = serde_json::to_value(summary_with(1.0)).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in [
            "nonfinite_diagnostics",
            "nonfinite_metrics",
            "nonfinite_first",
        ] {
            assert!(o.remove(k).is_some(), "{k} is written");
        }
        let back: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(back.nonfinite_diagnostics, 0);
        assert!(back.nonfinite_metrics.is_empty() && back.nonfinite_first.is_none());
    }

    #[test]
    fn summaries_written_before_the_learning_judgement_still_load() {
        let mut v = serde_json::to_value(summary_with(1.0)).unwrap();
        let o = v.as_object_mut().unwrap();
        assert_eq!(o.remove("learning").unwrap(), "learned");
        assert_eq!(o.remove("verdict_version").unwrap(), 2);
        let l = o["layers"][0].as_object_mut().unwrap();
        assert_eq!(l.remove("grad_state").unwrap(), "alive");
        assert_eq!(l.remove("grad_w_norm_end").unwrap(), 1.0);
        let mut back: Summary = serde_json::from_value(v).unwrap();
        // Judged from the recorded figures by the same rule.
        assert_eq!(back.learning(), Learning::Diverged);
        back.status = Status::Ok;
        assert_eq!(back.learning(), Learning::Stalled, "loss 1 = baseline 1");
        back.train_loss = 0.5;
        assert_eq!(back.learning(), Learning::Learned);
        let v = &back.verdict;
        assert_eq!((v.learning, v.verdict_version), (None, 1));
        assert_eq!(
            (v.layers[0].grad_state, v.layers[0].grad_w_norm_end),
            (None, None)
        );
    }

    #[test]
    fn nonfinite_diagnostics_counts_overflow_but_not_losses_or_undefined_ratios() {
        let m = |step: usize, metric: &str, layer: Option<usize>, value: f64| MetricRecord {
            step,
            metric: metric.into(),
            layer,
            value,
        };
        let metrics = vec![
            m(0, "train_loss", None, f64::NAN),
            m(0, "batch_loss", None, f64::INFINITY),
            // Layer 1 is all zeros: its ratios are undefined, not overflowed.
            m(0, "grad_to_weight", Some(1), f64::NAN),
            m(0, "weight_norm", Some(1), 0.0),
            m(0, "update_ratio", Some(1), f64::NAN),
            // Layer 2 overflows.
            m(0, "grad_to_weight", Some(2), f64::NAN),
            m(0, "weight_norm", Some(2), f64::INFINITY),
            m(1, "sigma_max", Some(2), f64::INFINITY),
            m(1, "weight_norm", Some(2), f64::INFINITY),
            m(1, "weight_norm", Some(1), 3.0),
        ];
        let (count, names, first) = nonfinite_diagnostics(&metrics);
        assert_eq!(count, 4);
        assert_eq!(names, ["grad_to_weight", "weight_norm", "sigma_max"]);
        assert_eq!(
            first,
            Some(MetricAt {
                metric: "grad_to_weight".into(),
                layer: Some(2),
                step: 0
            })
        );
        assert_eq!(nonfinite_diagnostics(&metrics[..5]), (0, Vec::new(), None));
    }
}
