//! A run taken a few steps at a time: the loop of [`super::train`] with pauses between calls,
//! for a caller that watches a run as it trains (`initscope serve`).
//!
//! [`super::train`] is `Live::new`, one `advance(steps)` and `finish`, so the two cannot drift
//! apart: a run advanced in any pattern of calls takes the same steps in the same order and ends
//! with the same bits. Between calls the caller may read the network, the evaluations and the
//! wake-up steps; reading changes nothing.

use super::{Event, InitialState, Run};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::nn::Net;
use crate::records::{EvalPoint, RunOutput};
use crate::scalar::Float;

/// One run in progress that the caller advances: [`super::train`] is `Live::new`, one
/// `advance(steps)` and `finish`, so a run advanced in any pattern of calls takes the same steps
/// in the same order and ends with the same bits. Between calls the caller may read the network,
/// the evaluations and the wake-up steps; reading changes nothing.
pub struct Live<'a, T: Float> {
    pub(super) run: Run<'a, T>,
    /// The run reached `cfg.steps` or diverged: `advance` takes no more steps.
    pub(super) ended: bool,
}

impl<'a, T: Float> Live<'a, T> {
    /// The run at step 0, from `start` (shapes must match `cfg.arch`).
    pub fn new(cfg: &'a RunConfig, data: &'a Dataset, start: InitialState) -> Self {
        Live {
            run: Run::set_up(cfg, data, start),
            ended: cfg.steps == 0,
        }
    }

    /// Takes up to `max` more updates, each preceded by its evaluation when one is due (every
    /// `eval_every` steps), and stops early at the end of the run or at the first non-finite
    /// loss; the state a run ends in is evaluated then. Returns the number of updates taken.
    pub fn advance(&mut self, max: usize, observer: &mut dyn FnMut(&Event)) -> usize {
        let cfg = self.run.cfg;
        let mut taken = 0;
        while taken < max && !self.ended {
            let step = self.run.steps_done;
            self.run.start_epoch_if_due(step);
            let is_eval = step.is_multiple_of(cfg.eval_every);
            if (is_eval && !self.evaluated(step) && !self.run.evaluate_at(step, observer))
                || !self.run.step(step, is_eval)
            {
                self.ended = true;
                break;
            }
            taken += 1;
            observer(&Event::Step {
                step: self.run.steps_done,
                total: cfg.steps,
            });
            self.ended = self.run.steps_done >= cfg.steps;
        }
        if self.ended {
            // The final state's figures now, not at finish, so a watcher sees them.
            self.run.evaluate_end(observer);
        }
        taken
    }

    /// Evaluates the current state now when an evaluation is due at this step (the step that
    /// follows would evaluate it first anyway), so a watcher sees it before the run goes on.
    /// Ends the run when the loss is not finite.
    pub fn evaluate_due(&mut self, observer: &mut dyn FnMut(&Event)) {
        let step = self.run.steps_done;
        if !self.ended
            && step.is_multiple_of(self.run.cfg.eval_every)
            && !self.evaluated(step)
            && !self.run.evaluate_at(step, observer)
        {
            self.ended = true;
        }
    }

    /// Whether `step` has been evaluated.
    fn evaluated(&self, step: usize) -> bool {
        self.run.evals.last().is_some_and(|e| e.step == step)
    }

    /// Updates taken so far.
    pub fn steps_done(&self) -> usize {
        self.run.steps_done
    }

    /// Whether the run is over: it took `cfg.steps` updates or diverged.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The step whose loss was not finite, when the run diverged.
    pub fn diverged_at(&self) -> Option<usize> {
        self.run.diverged_at
    }

    /// The network at the current parameters.
    pub fn net(&self) -> &Net<T> {
        &self.run.net
    }

    /// The evaluations so far, in step order.
    pub fn evals(&self) -> &[EvalPoint] {
        &self.run.evals
    }

    /// Per linear layer, the first step at which its weight gradient had a nonzero entry.
    pub fn wake(&self) -> &[Option<usize>] {
        &self.run.wake.wake
    }

    /// Ends the run where it is ([`super::train`]'s finish: the final evaluation, the end-of-run
    /// diagnostics, the verdict and the summary).
    pub fn finish(self, observer: &mut dyn FnMut(&Event)) -> RunOutput {
        self.run.finish(observer)
    }
}
