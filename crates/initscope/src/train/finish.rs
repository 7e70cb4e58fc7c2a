//! Finish: the final evaluation, the gradient statistics at the final parameters, the structure,
//! histograms and Jacobian at the end, the verdict and the summary.

use super::eval::{push_step_metrics, record_eval};
use super::{record_jacobian, Event, Run, JACOBIAN_INPUTS};
use crate::diagnostics::flow::RecordAt;
use crate::diagnostics::symmetry::UnitGraph;
use crate::diagnostics::verdict::{verdict, GraphWidths, TensorWake, VerdictInputs};
use crate::diagnostics::wake::{compare, MismatchCause, WakeMismatch};
use crate::nn::{Anatomy, Module, Params, Pass};
use crate::optim::warmup_factor;
use crate::records::{nonfinite_diagnostics, RunOutput, Status, Summary};
use crate::scalar::Float;

/// The distinct dropout probabilities of `modules` (and of the blocks inside them), in forward
/// order.
fn dropout_probabilities<T: Float>(modules: &[Box<dyn Module<T>>], out: &mut Vec<f64>) {
    for m in modules {
        let p = match m.anatomy() {
            Anatomy::Dropout(p) => p,
            Anatomy::Linear { dropout, .. } => dropout,
            Anatomy::Residual(body) => {
                dropout_probabilities(body, out);
                0.0
            }
            _ => 0.0,
        };
        if p > 0.0 && !out.contains(&p) {
            out.push(p);
        }
    }
}

impl<T: Float> Run<'_, T> {
    /// Ends the run: evaluates the final state (always, diverged or not: a diverged run records
    /// its NaNs), records the end-of-run diagnostics and computes the verdict and summary.
    pub(super) fn finish(mut self, observer: &mut dyn FnMut(&Event)) -> RunOutput {
        let cfg = self.cfg;
        let steps_done = self.steps_done;
        self.evaluate_end(observer);
        if self.diverged_at.is_none()
            && self.evals.last().is_some_and(|e| !e.train_loss.is_finite())
        {
            self.diverged_at = Some(steps_done);
        }
        let final_params = self.net.params();
        self.record_end(&final_params);
        let first = self
            .evals
            .first()
            .expect("step 0 or the final step is always evaluated");
        let last = self.evals.last().expect("at least one evaluation");
        let mut breakers = Vec::new();
        if cfg.dropout > 0.0 {
            breakers.push(format!("dropout {}", cfg.dropout));
        } else {
            // A --net network's dropout modules (and dropout fused into a linear), blocks
            // included: each distinct probability once, in forward order.
            let mut ps: Vec<f64> = Vec::new();
            dropout_probabilities(self.net.modules(), &mut ps);
            for p in ps {
                breakers.push(format!("dropout {p}"));
            }
        }
        if cfg.grad_noise > 0.0 {
            breakers.push(format!("gradient noise std {}", cfg.grad_noise));
        }
        // Where the measured wake-up steps differ from the predicted ones (--net networks).
        let mismatches = self
            .tensor_wake
            .as_ref()
            .map(|(p, m)| compare(&self.net, p, m))
            .unwrap_or_default();
        if let Some(r) = self.rounding_breaker(&mismatches) {
            breakers.push(r);
        }
        // One graph at a time, each dropped once its widths are taken (a graph copies every
        // weight); a plain MLP's straight from its parameters.
        let tol = cfg.symmetry_tolerance();
        let initial_widths = GraphWidths::of(
            &if self.initial.is_plain() {
                UnitGraph::of_layers(&self.initial)
            } else {
                UnitGraph::of_net(&cfg.network::<f64>(&self.initial))
            },
            tol,
        );
        let last_widths = GraphWidths::of(&UnitGraph::of_net(&self.net), tol);
        let verdict = verdict(VerdictInputs {
            initial: &self.initial,
            last: &final_params,
            initial_widths: &initial_widths,
            last_widths: &last_widths,
            activations: self.net.layers().map(|l| l.activation).collect(),
            wake: &self.wake.wake,
            grad_states: &self.updates.states(&self.wake.wake),
            grad_norms_end: &self.updates.grad_norm_end,
            grad_norms_step0: &self.grad_norms_step0,
            steps: steps_done,
            diverged: self.diverged_at.is_some(),
            loss_start: first.train_loss,
            loss_end: last.train_loss,
            loss_constant_baseline: self.data.train.y.constant_baseline(cfg.loss, self.outputs),
            tol: cfg.symmetry_tolerance(),
            symmetry_breakers: breakers,
            tensors: self.tensor_wakes(&mismatches),
        });
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let (nonfinite_count, nonfinite_metrics, nonfinite_first) =
            nonfinite_diagnostics(&self.metrics);
        let summary = Summary {
            run_id: cfg.run_id(),
            status: if self.diverged_at.is_some() {
                Status::Diverged
            } else {
                Status::Ok
            },
            steps: steps_done,
            diverged_at_step: self.diverged_at,
            loss_start: first.train_loss,
            train_loss: last.train_loss,
            train_acc: last.train_acc,
            test_loss: last.test_loss,
            test_acc: last.test_acc,
            val_loss: last.val_loss,
            val_acc: last.val_acc,
            num_params: self.net.num_params(),
            lsuv: self.lsuv,
            precision: T::NAME.to_string(),
            wall_seconds,
            samples_per_second: (steps_done * self.bs) as f64 / wall_seconds.max(1e-9),
            nonfinite_diagnostics: nonfinite_count,
            nonfinite_metrics,
            nonfinite_first,
            verdict,
        };
        let histograms = self.flow.map(|f| f.histograms).unwrap_or_default();
        RunOutput {
            config: cfg.clone(),
            summary,
            evals: self.evals,
            metrics: self.metrics,
            histograms,
            started_at: self.started_at,
            initial_params: self.initial,
            params: final_params,
        }
    }

    /// Evaluates the state the run ended in, unless that step was evaluated.
    pub(super) fn evaluate_end(&mut self, observer: &mut dyn FnMut(&Event)) {
        if self.evals.last().map(|l| l.step) != Some(self.steps_done) {
            let e = self.evaluation(self.steps_done);
            record_eval(&mut self.metrics, &e);
            observer(&Event::Eval(&e));
            self.evals.push(e);
        }
    }

    /// The `rounding` breaker: a gradient that is exactly 0 in exact arithmetic (before the
    /// tensor's predicted wake-up) came out nonzero in floating point, and that residue grew:
    /// another tensor then woke with a clear gradient before its own predicted step
    /// ([`MismatchCause::Cascade`]). Names the first residue's module and step.
    fn rounding_breaker(&self, mismatches: &[WakeMismatch]) -> Option<String> {
        let (_, m) = self.tensor_wake.as_ref()?;
        mismatches
            .iter()
            .find_map(|x| match &x.cause {
                MismatchCause::Cascade { source, step } => {
                    let module = self
                        .net
                        .find_param(source)
                        .map(|k| self.net.prefixes()[self.net.param_infos()[k].module].clone())
                        .unwrap_or_default();
                    let clear = m.clear[x.tensor].map_or_else(|| "?".to_string(), |s| s.to_string());
                    Some(if *source == x.name {
                        format!(
                            "rounding (a residue in {source}, module {module}, at step {step}: its gradient is 0 in exact arithmetic; it grew into a clear gradient by step {clear})"
                        )
                    } else {
                        format!(
                            "rounding (a residue in {source}, module {module}, at step {step}: its gradient is 0 in exact arithmetic; it grew until {} had a clear gradient at step {clear}, ahead of its predicted step)",
                            x.name
                        )
                    })
                }
                _ => None,
            })
    }

    /// Every tensor's wake-up step, predicted and measured, with the reason where they differ.
    fn tensor_wakes(&self, mismatches: &[WakeMismatch]) -> Vec<TensorWake> {
        let Some((p, m)) = &self.tensor_wake else {
            return Vec::new();
        };
        let states = self.updates.tensor_states(&m.nonzero);
        self.net
            .param_infos()
            .iter()
            .enumerate()
            .map(|(k, info)| TensorWake {
                name: info.name.clone(),
                wake_predicted: p.wake[k],
                wake_measured: m.nonzero[k],
                note: mismatches
                    .iter()
                    .find(|x| x.tensor == k)
                    .map(|x| x.sentence()),
                grad_state: states.get(k).copied(),
            })
            .collect()
    }

    /// The end-of-run diagnostics (diagnostics on): the gradient at the final parameters on the
    /// batch that would come next, so gradient curves end at the last step like the losses (no
    /// update follows it); the structure and weight histograms; activation histograms on the
    /// first training rows; the Jacobian spectrum with `jacobian_end`.
    fn record_end(&mut self, final_params: &Params) {
        let cfg = self.cfg;
        let steps_done = self.steps_done;
        let Some(f) = self.flow.as_mut() else {
            return;
        };
        if self.diverged_at.is_none() && self.last_flow_step.is_some_and(|s| s < steps_done) {
            let pos = steps_done % self.steps_per_epoch;
            let idx = &self.order[pos * self.bs..((pos + 1) * self.bs).min(self.n)];
            self.ws.load_rows(&self.train.x, idx);
            self.bt.load(&self.train, idx);
            let pass = Pass::Train(&mut self.dropout_rng);
            let batch_loss =
                self.net
                    .loss_and_grads(&mut self.ws, cfg.loss, self.bt.targets(cfg.loss), pass);
            let at = RecordAt {
                dense: true,
                sparse: false,
            };
            f.before_update(steps_done, at, &self.net, &self.ws, &mut self.metrics);
            let lr = cfg.schedule.lr(cfg.optim.lr, steps_done, cfg.steps)
                * warmup_factor(steps_done, cfg.warmup);
            push_step_metrics(&mut self.metrics, steps_done, batch_loss, lr);
        }
        f.record_structure(steps_done, &self.net, &mut self.metrics);
        f.record_weight_histograms(steps_done, &self.net);
        let idx: Vec<usize> = (0..self.bs.min(self.n)).collect();
        self.ws.load_rows(&self.train.x, &idx);
        self.net.forward(&mut self.ws, Pass::Eval);
        f.record_activation_histograms(steps_done, &self.net, &self.ws);
        if cfg.jacobian_end {
            record_jacobian(
                &mut self.metrics,
                steps_done,
                cfg,
                final_params,
                &self.data.train.x.head_f64(JACOBIAN_INPUTS),
            );
        }
    }
}
