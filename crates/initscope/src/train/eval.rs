//! Evaluation: the full train, test and validation splits at an evaluation step, recorded as an
//! [`EvalPoint`] and as metric records, and the per-step `batch_loss` and `lr` records.

use super::{Event, Run};
use crate::batch::evaluate;
use crate::records::{EvalPoint, MetricRecord};
use crate::scalar::Float;

impl<T: Float> Run<'_, T> {
    /// Evaluates the current parameters on every split (mean loss and accuracy).
    pub(super) fn evaluation(&mut self, step: usize) -> EvalPoint {
        let loss = self.cfg.loss;
        let (net, ws, bt, idx) = (&self.net, &mut self.ws, &mut self.bt, &mut self.eval_idx);
        let (train_loss, train_acc) = evaluate(net, ws, bt, idx, &self.train, loss);
        let (test_loss, test_acc) = evaluate(net, ws, bt, idx, &self.test, loss);
        let (val_loss, val_acc) = match &self.val {
            Some(v) => {
                let (l, a) = evaluate(net, ws, bt, idx, v, loss);
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
    }

    /// Evaluates at `step`, records the figures and reports them to `observer`. Returns false
    /// when the training loss is not finite: the run diverged at `step` and stops.
    pub(super) fn evaluate_at(&mut self, step: usize, observer: &mut dyn FnMut(&Event)) -> bool {
        let e = self.evaluation(step);
        record_eval(&mut self.metrics, &e);
        observer(&Event::Eval(&e));
        let finite = e.train_loss.is_finite();
        self.evals.push(e);
        if !finite {
            self.diverged_at = Some(step);
        }
        finite
    }
}

/// The figures of an evaluation as metric records (accuracies for classification, validation
/// figures when the data has a validation split).
pub(super) fn record_eval(metrics: &mut Vec<MetricRecord>, e: &EvalPoint) {
    let mut push = |name: &str, v: f64| {
        metrics.push(MetricRecord {
            step: e.step,
            metric: name.to_string(),
            layer: None,
            value: v,
            module: None,
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
}

/// The per-step metrics of an evaluation step: the minibatch loss and the learning rate.
pub(super) fn push_step_metrics(
    metrics: &mut Vec<MetricRecord>,
    step: usize,
    batch_loss: f64,
    lr: f64,
) {
    for (name, value) in [("batch_loss", batch_loss), ("lr", lr)] {
        metrics.push(MetricRecord {
            step,
            metric: name.to_string(),
            layer: None,
            value,
            module: None,
        });
    }
}
