//! Gradient flow and activation statistics recorded while training (metrics.csv).
//!
//! Schedule: every step for the first 100 steps, then log-spaced (about ten per decade: the next
//! recorded step is ceil(1.2589 · previous)), and the last step (the gradient at the final
//! parameters, without its update: no `update_ratio` there). The expensive figures (full SVD for the numerical
//! rank, the symmetry partitions for the effective width) are recorded only at step 0 and at
//! powers of two, and at the end. σ_max comes from power iteration warm-started from the previous
//! recorded step (3 iterations), so the stable rank is cheap enough for the dense schedule.
//!
//! Per layer l (1-based): `grad_norm` ||dW||_F, `grad_mean_abs`, `grad_max_abs`,
//! `grad_to_weight` ||dW||_F/||W||_F, `update_ratio` ||ΔW||_F/||W||_F, `weight_norm`,
//! `sigma_max`, `stable_rank` ||W||_F²/σ_max²; for hidden layers `act_mean`, `act_std`,
//! `saturation` (tanh/softsign |a| ≥ 0.99, sigmoid a ≤ 0.01 or ≥ 0.99), `dead_fraction`
//! (ReLU-like units with z ≤ 0 on every row of the batch); on the sparse schedule
//! `numerical_rank`, and for hidden layers and residual streams `width_exact` and `width_tol`.

use crate::activation::Activation;
use crate::diagnostics::spectrum::{numerical_rank, sigma_max, singular_values, stable_rank};
use crate::diagnostics::symmetry::UnitGraph;
use crate::matrix::Matrix;
use crate::nn::{Net, Workspace};
use crate::records::{HistogramRecord, MetricRecord};
use crate::scalar::Float;

/// Steps below this are all recorded.
const DENSE_STEPS: usize = 100;
/// 10^(1/10): ten recorded steps per decade after the dense start.
const LOG_FACTOR: f64 = 1.258_925_411_794_167_2;

/// Which figures to record at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordAt {
    pub dense: bool,
    pub sparse: bool,
}

/// Stateful recorder for one run.
pub struct FlowRecorder<T> {
    next_log: usize,
    before: Vec<Matrix<T>>, // W_l before the update of a recorded step
    power_v: Vec<Vec<f64>>,
    power_u: Vec<Vec<f64>>,
    tol: f64,
    /// Weight and gradient histograms, recorded on the sparse schedule.
    pub histograms: Vec<HistogramRecord>,
}

/// Buckets per histogram.
const HISTOGRAM_BUCKETS: usize = 30;

fn is_saturating(act: Activation) -> bool {
    matches!(
        act,
        Activation::Tanh | Activation::Sigmoid | Activation::Softsign
    )
}

fn is_relu_like(act: Activation) -> bool {
    matches!(
        act,
        Activation::Relu
            | Activation::ReluGrad1
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Selu
    )
}

impl<T: Float> FlowRecorder<T> {
    /// `tol` is the relative tolerance of the equitable partition.
    pub fn new(net: &Net<T>, tol: f64) -> Self {
        FlowRecorder {
            next_log: DENSE_STEPS,
            before: net.layers().map(|l| l.weight.clone()).collect(),
            power_v: net.layers().map(|l| vec![0.0; l.fan_in()]).collect(),
            power_u: net.layers().map(|l| vec![0.0; l.fan_out()]).collect(),
            tol,
            histograms: Vec::new(),
        }
    }

    /// Whether [`FlowRecorder::schedule`] records `step` (without moving the schedule on).
    pub fn due(&self, step: usize) -> bool {
        step == 0 || step.is_power_of_two() || step < DENSE_STEPS || step >= self.next_log
    }

    /// Whether `step` is recorded, and how much.
    pub fn schedule(&mut self, step: usize) -> Option<RecordAt> {
        if !self.due(step) {
            return None;
        }
        let sparse = step == 0 || step.is_power_of_two();
        if step >= DENSE_STEPS && step >= self.next_log {
            self.next_log = ((step as f64 * LOG_FACTOR).ceil() as usize).max(step + 1);
        }
        Some(RecordAt {
            dense: true,
            sparse,
        })
    }

    /// Records the statistics of the gradient just computed in `ws` (before the update) and
    /// remembers the weights for the update ratio.
    pub fn before_update(
        &mut self,
        step: usize,
        at: RecordAt,
        net: &Net<T>,
        ws: &Workspace<T>,
        out: &mut Vec<MetricRecord>,
    ) {
        let hidden = net.num_layers() - 1;
        for (i, layer) in net.layers().enumerate() {
            let (g, _) = net.layer_grads(&ws.grads, i);
            let mut push = |metric: &str, value: f64| {
                out.push(MetricRecord {
                    step,
                    metric: metric.to_string(),
                    layer: Some(i + 1),
                    value,
                    module: None,
                })
            };
            let dw = g.as_slice();
            let (gn, wn) = (g.norm(), layer.weight.norm());
            push("grad_norm", gn);
            push(
                "grad_mean_abs",
                dw.iter().map(|x| x.to_f64().abs()).sum::<f64>() / dw.len() as f64,
            );
            push(
                "grad_max_abs",
                dw.iter().fold(0.0, |m: f64, x| m.max(x.to_f64().abs())),
            );
            push("grad_to_weight", if wn > 0.0 { gn / wn } else { f64::NAN });
            push("weight_norm", wn);
            let s = sigma_max(
                &layer.weight,
                &mut self.power_v[i],
                &mut self.power_u[i],
                if step == 0 { 30 } else { 3 },
            );
            push("sigma_max", s);
            push("stable_rank", stable_rank(wn, s));
            if i < hidden {
                let act = layer.activation;
                let a = net.layer_cache(ws, i).act.as_slice();
                let n = a.len().max(1) as f64;
                let mean = a.iter().map(|x| x.to_f64()).sum::<f64>() / n;
                let var = a.iter().map(|x| (x.to_f64() - mean).powi(2)).sum::<f64>() / n;
                push("act_mean", mean);
                push("act_std", var.sqrt());
                if is_saturating(act) {
                    let saturated = a
                        .iter()
                        .filter(|x| {
                            let v = x.to_f64();
                            match act {
                                Activation::Sigmoid => !(0.01..=0.99).contains(&v),
                                _ => v.abs() >= 0.99,
                            }
                        })
                        .count();
                    push("saturation", saturated as f64 / n);
                }
                if is_relu_like(act) {
                    let pre = &net.layer_cache(ws, i).pre;
                    let units = pre.cols();
                    let dead = (0..units)
                        .filter(|&u| (0..pre.rows()).all(|r| pre.get(r, u) <= T::ZERO))
                        .count();
                    push("dead_fraction", dead as f64 / units as f64);
                }
            }
            self.before[i]
                .as_mut_slice()
                .copy_from_slice(layer.weight.as_slice());
        }
        // Tensors outside the linear layers (norm gains and biases, gates, shifts): their norm
        // and their gradient's, by tensor path; a one-entry tensor's value too.
        for (k, (info, v)) in net.values().enumerate() {
            if info.layer.is_some() {
                continue;
            }
            let mut push = |metric: &str, value: f64| {
                out.push(MetricRecord {
                    step,
                    metric: metric.into(),
                    layer: None,
                    value,
                    module: Some(info.name.clone()),
                })
            };
            push("tensor_norm", crate::matrix::norm(v));
            push("tensor_grad_norm", ws.grads[k].norm());
            if v.len() == 1 {
                push("tensor_value", v[0].to_f64());
            }
        }
        if at.sparse {
            self.record_structure(step, net, out);
            self.record_weight_histograms(step, net);
            self.record_activation_histograms(step, net, ws);
            for i in 0..net.num_layers() {
                let (g, _) = net.layer_grads(&ws.grads, i);
                let v: Vec<f64> = g.as_slice().iter().map(|x| x.to_f64()).collect();
                self.histograms.push(HistogramRecord::new(
                    step,
                    i + 1,
                    "grads",
                    &v,
                    HISTOGRAM_BUCKETS,
                ));
            }
        }
    }

    /// Records ||ΔW||/||W|| for the update just taken at a recorded step.
    pub fn after_update(&mut self, step: usize, net: &Net<T>, out: &mut Vec<MetricRecord>) {
        for (i, (layer, before)) in net.layers().zip(&self.before).enumerate() {
            let (mut d2, mut w2) = (0.0, 0.0);
            for (a, b) in layer.weight.as_slice().iter().zip(before.as_slice()) {
                let (a, b) = (a.to_f64(), b.to_f64());
                d2 += (a - b) * (a - b);
                w2 += b * b;
            }
            out.push(MetricRecord {
                step,
                metric: "update_ratio".into(),
                layer: Some(i + 1),
                value: if w2 > 0.0 { (d2 / w2).sqrt() } else { f64::NAN },
                module: None,
            });
        }
    }

    /// Histograms of every hidden layer's activations f(z) on the batch in `ws`.
    pub fn record_activation_histograms(&mut self, step: usize, net: &Net<T>, ws: &Workspace<T>) {
        for i in 0..net.num_layers() - 1 {
            let v: Vec<f64> = net
                .layer_cache(ws, i)
                .act
                .as_slice()
                .iter()
                .map(|x| x.to_f64())
                .collect();
            self.histograms.push(HistogramRecord::new(
                step,
                i + 1,
                "activations",
                &v,
                HISTOGRAM_BUCKETS,
            ));
        }
    }

    /// Histograms of every layer's weights at `step`.
    pub fn record_weight_histograms(&mut self, step: usize, net: &Net<T>) {
        for (i, layer) in net.layers().enumerate() {
            let v: Vec<f64> = layer.weight.as_slice().iter().map(|x| x.to_f64()).collect();
            self.histograms.push(HistogramRecord::new(
                step,
                i + 1,
                "weights",
                &v,
                HISTOGRAM_BUCKETS,
            ));
        }
    }

    /// Numerical rank per layer and effective widths per hidden layer (the expensive figures).
    pub fn record_structure(&self, step: usize, net: &Net<T>, out: &mut Vec<MetricRecord>) {
        let params = net.params();
        let eps = if T::NAME == "f32" {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        for (i, p) in params.iter().enumerate() {
            let (r, c) = p.weight.shape();
            out.push(MetricRecord {
                step,
                metric: "numerical_rank".into(),
                layer: Some(i + 1),
                value: numerical_rank(&singular_values(&p.weight), r, c, eps) as f64,
                module: None,
            });
        }
        // Effective widths: every hidden linear layer's (the `layer` column) and, in a network
        // with residual blocks, every stream's (the `module` column: its first block's path).
        let graph = UnitGraph::of_net(net);
        let (exact, tol) = (graph.exact_partition(), graph.equitable_partition(self.tol));
        let per_layer = graph
            .linear_widths(&exact)
            .into_iter()
            .zip(graph.linear_widths(&tol))
            .enumerate()
            .filter_map(|(i, w)| match w {
                (Some(e), Some(t)) => Some((Some(i + 1), None, e, t)),
                _ => None,
            });
        let per_stream = graph
            .stream_widths(&exact)
            .into_iter()
            .zip(graph.stream_widths(&tol))
            .filter_map(|(e, t)| match (e.width, t.width) {
                (Some(we), Some(wt)) => Some((None, Some(e.first), we, wt)),
                _ => None,
            });
        for (layer, module, e, t) in per_layer.chain(per_stream) {
            for (metric, v) in [("width_exact", e), ("width_tol", t)] {
                out.push(MetricRecord {
                    step,
                    metric: metric.into(),
                    layer,
                    value: v as f64,
                    module: module.clone(),
                });
            }
        }
    }
}
