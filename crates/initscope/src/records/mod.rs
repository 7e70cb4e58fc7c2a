//! What a run records and produces: metric and histogram records, evaluation points, the run's
//! summary (`summary.json`) with its verdict, and the whole [`RunOutput`]. The training loop
//! fills them; diagnostics, outputs, reports, `explain` and `gradcheck` read them, so they depend
//! on this module rather than on the training loop.
//!
//! Non-finite figures are written to JSON as null and read back as NaN ([`crate::json`]).

pub mod verdict;

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::json::{f64_or_null, vec_f64_or_null};
use crate::lsuv::LsuvLayer;
use crate::nn::Params;
use verdict::{Learning, Verdict};

/// One value of one metric at one step; `layer` is 1-based, `None` for whole-network metrics.
/// `value` may be NaN or infinite (metrics.csv writes `NaN`, `inf`, `-inf`; JSON null reads back
/// as NaN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    pub step: usize,
    pub metric: String,
    pub layer: Option<usize>,
    /// The tensor's `state_dict` name for a metric of a tensor outside the linear layers (a
    /// norm's gain or bias, a gate, a shift: `2.body.0.weight`); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
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
/// NaN ([`crate::json`]).
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
/// [`crate::json`]. Fields added later carry serde defaults, so older files still load.
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
#[derive(Clone, Debug, PartialEq)]
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

#[cfg(test)]
mod tests {
    use super::verdict::{GradState, LayerVerdict, VerdictKind};
    use super::*;

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
                streams: Vec::new(),
                tensors: Vec::new(),
                layers: vec![LayerVerdict {
                    layer: 1,
                    fan_in: 2,
                    fan_out: 2,
                    activation: "identity".into(),
                    grad_w_norm_step0: x,
                    grad_b_norm_step0: x,
                    wake_step: Some(0),
                    weights_unchanged: false,
                    width_init: Some(2),
                    width_end: Some(2),
                    width_init_tol: Some(2),
                    width_end_tol: Some(2),
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
                module: None,
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
            module: None,
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
