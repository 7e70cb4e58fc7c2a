//! One training step: load the minibatch, forward and backward, the trackers and gradient-flow
//! records, gradient noise and clipping, and the optimizer's update (fused into the backward
//! pass when nothing reads the gradients and the optimizer is plain SGD).

use super::eval::push_step_metrics;
use super::Run;
use crate::config::Batch;
use crate::matrix::norm;
use crate::matrix::Matrix;
use crate::nn::Pass;
use crate::optim::{clip_grad_norm, warmup_factor};
use crate::rng;
use crate::scalar::Float;

impl<T: Float> Run<'_, T> {
    /// The learning rate of update `step` + 1: the schedule's, times the warm-up factor.
    pub(super) fn lr_at(&self, step: usize) -> f64 {
        let cfg = self.cfg;
        cfg.schedule.lr(cfg.optim.lr, step, cfg.steps) * warmup_factor(step, cfg.warmup)
    }

    /// Whether nothing reads step `step`'s gradients (every layer is awake, no noise or
    /// clipping, not in the last window that measures the updates) and the optimizer is plain
    /// SGD, gradient-flow records aside: then the update is fused into the backward pass
    /// (which saves the gradients' memory traffic and a pass over the weights), or taken in
    /// lockstep with other runs ([`super::lanes`]).
    pub(super) fn fuses(&self, step: usize) -> bool {
        let cfg = self.cfg;
        step > 0
            && self.wake.all_awake()
            && self
                .tensor_wake
                .as_ref()
                .is_none_or(|(p, m)| m.settled(p, step))
            && self.opt.config.is_plain_sgd()
            && cfg.grad_noise == 0.0
            && cfg.clip_grad_norm.is_none()
            && step < self.window_start
    }

    /// Whether step `step` is a fused update that records nothing ([`Run::fuses`], and no
    /// gradient-flow record is due): what a pack of runs may take in lockstep.
    pub(super) fn fuses_unrecorded(&self, step: usize) -> bool {
        self.fuses(step) && self.flow.as_ref().is_none_or(|f| !f.due(step))
    }

    /// The training rows of step `step`'s minibatch (the epoch's order must be drawn).
    pub(super) fn batch_rows(&self, step: usize) -> &[usize] {
        let pos = step % self.steps_per_epoch;
        &self.order[pos * self.bs..((pos + 1) * self.bs).min(self.n)]
    }

    /// Records update `step` + 1 taken outside the engine (in lockstep, [`super::lanes`]) with
    /// minibatch loss `batch_loss` at learning rate `lr`: what [`Run::step`] records for a
    /// fused step. Returns false when the loss is not finite: the run diverged at `step`.
    pub(super) fn stepped_outside(
        &mut self,
        step: usize,
        is_eval: bool,
        batch_loss: f64,
        lr: f64,
    ) -> bool {
        if !batch_loss.is_finite() {
            self.diverged_at = Some(step);
            return false;
        }
        if is_eval {
            push_step_metrics(&mut self.metrics, step, batch_loss, lr);
        }
        self.opt.steps += 1;
        self.steps_done = step + 1;
        true
    }

    /// Takes update `step` + 1 (the gradient at step `step`, then the update). `is_eval` says the
    /// step was just evaluated (its `lr` and `batch_loss` are recorded). Returns false when the
    /// minibatch loss is not finite: the run diverged at `step` and stops.
    pub(super) fn step(&mut self, step: usize, is_eval: bool) -> bool {
        let cfg = self.cfg;
        let pos = step % self.steps_per_epoch;
        let idx = &self.order[pos * self.bs..((pos + 1) * self.bs).min(self.n)];
        self.ws.load_rows(&self.train.x, idx);
        self.bt.load(&self.train, idx);
        // A training pass: dropout draws its masks from the run's stream (only modules that drop
        // units draw), norms use the batch's statistics.
        let lr = self.lr_at(step);
        let fuses = self.fuses(step);
        let pass = Pass::Train(&mut self.dropout_rng);
        let recorded = self
            .flow
            .as_mut()
            .and_then(|f| f.schedule(step).map(|at| (f, at)));
        let fused = fuses && recorded.is_none();
        let targets = self.bt.targets(cfg.loss);
        let batch_loss = if fused {
            self.net
                .loss_and_sgd_step(&mut self.ws, cfg.loss, targets, pass, lr)
        } else {
            self.net
                .loss_and_grads(&mut self.ws, cfg.loss, targets, pass)
        };
        if !batch_loss.is_finite() {
            self.diverged_at = Some(step);
            return false;
        }
        self.net.update_buffers(&self.ws);
        if !fused {
            self.wake.observe(step, &self.net, &self.ws.grads);
            if let Some((p, m)) = self.tensor_wake.as_mut() {
                if !m.settled(p, step) {
                    m.observe(step, &self.net, &self.ws.grads);
                }
            }
        }
        // Gradient norms before any added noise; the weights before the update.
        let in_window = !fused && step >= self.window_start;
        if in_window {
            self.updates.before_update(&self.net, &self.ws.grads);
        }
        if step == 0 {
            self.grad_norms_step0 = (0..self.net.num_layers())
                .map(|i| {
                    let (dw, db) = self.net.layer_grads(&self.ws.grads, i);
                    (dw.norm(), db.map_or(0.0, norm))
                })
                .collect();
        }
        let recorded = match recorded {
            Some((f, at)) => {
                f.before_update(step, at, &self.net, &self.ws, &mut self.metrics);
                self.last_flow_step = Some(step);
                true
            }
            None => false,
        };
        if is_eval || recorded {
            push_step_metrics(&mut self.metrics, step, batch_loss, lr);
        }
        if cfg.grad_noise > 0.0 {
            add_gradient_noise(&mut self.ws.grads, cfg.grad_noise, &mut self.noise_rng);
        }
        if let Some(max_norm) = cfg.clip_grad_norm {
            clip_grad_norm(&self.net, &mut self.ws.grads, max_norm);
        }
        if fused {
            self.opt.steps += 1;
        } else {
            self.opt.step(&mut self.net, &self.ws.grads, lr);
        }
        if in_window {
            self.updates.after_update(&self.net, lr / cfg.optim.lr);
        }
        if recorded {
            if let Some(f) = self.flow.as_mut() {
                f.after_update(step, &self.net, &mut self.metrics);
            }
        }
        self.steps_done = step + 1;
        true
    }

    /// Shuffles the training order at the start of every epoch (minibatch runs only).
    pub(super) fn start_epoch_if_due(&mut self, step: usize) {
        if step.is_multiple_of(self.steps_per_epoch) && self.cfg.batch != Batch::Full {
            rng::shuffle(&mut self.shuffle_rng, &mut self.order);
        }
    }
}

/// Adds N(0, std²) from the `GradNoise` stream to every entry of every parameter tensor's
/// gradient (the workspace's, in `state_dict` order; absent biases have no gradient).
fn add_gradient_noise<T: Float>(grads: &mut [Matrix<T>], std: f64, rng: &mut rng::Rng) {
    for g in grads {
        for x in g.as_mut_slice() {
            *x += T::from_f64(std * rng::normal(rng));
        }
    }
}
