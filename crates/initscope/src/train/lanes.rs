//! Runs of one small network trained side by side, [`LANES`] at a time: every step the
//! engine would take as a fused SGD update that records nothing (`Run::fuses_unrecorded`) is
//! taken in lockstep with the other runs' ([`LanePack`]: one SIMD instruction per operation
//! across the runs); every other step (step 0, the steps until every layer is awake, the steps
//! that record gradient flow, the last window that measures the updates) and every evaluation
//! goes through each run's own engine, as in a run alone.
//!
//! Which path a step takes is decided by its run alone, lanes never mix, and the engine's small
//! layers sum their products in the lanes' order ([`crate::small`]), so a run ends with the
//! same bits in a pack as alone (`train`), whichever runs share its pack. `sweep` trains this
//! way every group of runs that can share a pack ([`share_a_pack`]).
//!
//! ```text
//! per step, per lane:   evaluation due?  -> its engine (the lane's parameters unpacked first)
//!                       fused update?    -> the pack, with the other lanes due
//!                       else             -> its engine's step (the lane leaves the pack)
//! ```

use super::{Event, Live, Run};
use crate::config::{Batch, RunConfig};
use crate::lockstep::{LanePack, LANES};
use crate::scalar::Float;

/// The lockstep state of up to [`LANES`] runs trained side by side: the pack and, per lane,
/// where its current parameters are.
pub struct Lanes<T: Float> {
    pack: LanePack<T>,
    /// The pack's lane holds the run's current parameters.
    in_pack: [bool; LANES],
    /// The run's network is behind the pack: steps were taken in lockstep since it was set.
    stale: [bool; LANES],
    /// The lane's full-batch rows are loaded (they never change).
    rows_loaded: [bool; LANES],
    /// Updates taken in the pack, over all lanes.
    pack_steps: usize,
}

impl<T: Float> Lanes<T> {
    /// A pack for runs of `run`'s network (all the runs of a pack share it, their data and
    /// their batch size).
    pub(super) fn new(run: &Run<'_, T>) -> Self {
        let cfg = run.cfg;
        Lanes {
            pack: LanePack::for_net(&run.net, cfg.loss, cfg.batch_size(run.train.len()).max(1))
                .expect("a lockstep config's modules run in a pack"),
            in_pack: [false; LANES],
            stale: [false; LANES],
            rows_loaded: [false; LANES],
            pack_steps: 0,
        }
    }

    /// Brings lane `r`'s run up to date with the pack.
    fn sync(&mut self, r: usize, run: &mut Run<'_, T>) {
        if self.stale[r] {
            run.net.set_values(&self.pack.params(r));
            self.stale[r] = false;
        }
    }

    /// Lane `r` leaves the pack (its run is current; the pack's lane may change under it).
    fn release(&mut self, r: usize, run: &mut Run<'_, T>) {
        self.sync(r, run);
        self.in_pack[r] = false;
    }

    /// Loads lane `r` for step `step` of `run`: its parameters, when the pack does not hold
    /// them, and its minibatch.
    fn load(&mut self, r: usize, run: &Run<'_, T>, step: usize) {
        if !self.in_pack[r] {
            self.pack
                .set_params(r, &run.net.params())
                .expect("runs of one pack share their architecture");
            self.in_pack[r] = true;
            self.stale[r] = false;
        }
        let full = run.cfg.batch == Batch::Full;
        if !(full && self.rows_loaded[r]) {
            self.pack
                .set_batch(
                    r,
                    &run.train.x,
                    run.train.targets(run.cfg.loss),
                    run.batch_rows(step),
                )
                .expect("runs of one pack share their data");
            self.rows_loaded[r] = full;
        }
    }
}

/// Advances every run of `lives` (at most [`LANES`], of one lockstep architecture, data and
/// batch size) by up to `max` updates, as [`Live::advance`] would each alone, taking their fused
/// updates together in `lanes`. `observer` hears each run's events with its index. Returns the
/// updates each run took. Run `k` is lane `k` of `lanes`: across calls, `lives` keeps its order
/// and its runs take no steps elsewhere (the pack holds their parameters between calls).
pub(super) fn advance_together<T: Float>(
    lives: &mut [Live<'_, T>],
    lanes: &mut Lanes<T>,
    max: usize,
    observer: &mut dyn FnMut(usize, &Event),
) -> Vec<usize> {
    assert!(lives.len() <= LANES, "a pack holds at most {LANES} runs");
    let mut taken = vec![0usize; lives.len()];
    let mut due: Vec<(usize, usize, bool)> = Vec::with_capacity(LANES);
    loop {
        due.clear();
        let mut active = false;
        for (r, live) in lives.iter_mut().enumerate() {
            if live.ended || taken[r] >= max {
                continue;
            }
            active = true;
            let run = &mut live.run;
            let cfg = run.cfg;
            let step = run.steps_done;
            run.start_epoch_if_due(step);
            let is_eval = step % cfg.eval_every == 0;
            if is_eval && run.evals.last().is_none_or(|e| e.step != step) {
                lanes.sync(r, run);
                if !run.evaluate_at(step, &mut |e| observer(r, e)) {
                    live.ended = true;
                    continue;
                }
            }
            if run.fuses_unrecorded(step) {
                due.push((r, step, is_eval));
                continue;
            }
            lanes.release(r, run);
            if !run.step(step, is_eval) {
                live.ended = true;
                continue;
            }
            taken[r] += 1;
            observer(
                r,
                &Event::Step {
                    step: run.steps_done,
                    total: cfg.steps,
                },
            );
            live.ended = run.steps_done >= cfg.steps;
        }
        if !active {
            break;
        }
        if due.is_empty() {
            continue;
        }
        // Lanes that sit this step out leave the pack first: the step changes every lane.
        for (r, live) in lives.iter_mut().enumerate() {
            if !due.iter().any(|&(d, _, _)| d == r) {
                lanes.release(r, &mut live.run);
            }
        }
        let mut lr = [0.0; LANES];
        for &(r, step, _) in &due {
            let run = &lives[r].run;
            lanes.load(r, run, step);
            lr[r] = run.lr_at(step);
        }
        let mut active = [false; LANES];
        for &(r, _, _) in &due {
            active[r] = true;
        }
        let losses = lanes.pack.step_lanes(lr, active);
        lanes.pack_steps += due.len();
        for &(r, step, is_eval) in &due {
            lanes.stale[r] = true;
            let live = &mut lives[r];
            if !live.run.stepped_outside(step, is_eval, losses[r], lr[r]) {
                live.ended = true;
                continue;
            }
            taken[r] += 1;
            let cfg = live.run.cfg;
            observer(
                r,
                &Event::Step {
                    step: live.run.steps_done,
                    total: cfg.steps,
                },
            );
            live.ended = live.run.steps_done >= cfg.steps;
        }
    }
    for (r, live) in lives.iter_mut().enumerate() {
        lanes.sync(r, &mut live.run);
        if live.ended {
            // The final state's figures now, as a run alone evaluates them.
            live.run.evaluate_end(&mut |e| observer(r, e));
        }
    }
    taken
}

/// Whether runs of `a` and `b` on the same data can share a pack: both train in lockstep
/// ([`RunConfig::lockstep`]) with the same network (widths, activation, biases, `--net`), loss,
/// precision and minibatch size.
pub fn share_a_pack(a: &RunConfig, b: &RunConfig, train_rows: usize) -> bool {
    a.lockstep(train_rows)
        && b.lockstep(train_rows)
        && a.arch == b.arch
        && a.net == b.net
        && a.bias == b.bias
        && a.act == b.act
        && a.loss == b.loss
        && a.precision == b.precision
        && a.batch_size(train_rows) == b.batch_size(train_rows)
}

/// Trains runs side by side on `data`, [`LANES`] at a time: run `k` of config `cfgs[k]` from
/// `starts[k]`, each to the bit as [`super::train_from`] trains it alone, timing aside. The
/// configs must share a pack ([`share_a_pack`]); a config that does not is refused by its
/// index, and so is a start that does not hold its config's network.
pub fn train_together(
    cfgs: &[&RunConfig],
    data: &crate::data::Dataset<'_>,
    starts: Vec<super::InitialState>,
) -> crate::error::Result<Vec<crate::records::RunOutput>> {
    let n = data.train.len();
    if let Some(first) = cfgs.first() {
        if let Some(k) = (0..cfgs.len()).find(|&k| !share_a_pack(first, cfgs[k], n)) {
            return Err(crate::error::Error::config(
                "lockstep",
                format!(
                    "run {k} cannot share a pack with run 0 (each must train in lockstep, with the same network, loss, precision and batch size)"
                ),
            ));
        }
    }
    if cfgs.len() != starts.len() {
        return Err(crate::error::Error::config(
            "lockstep",
            format!(
                "{} configs but {} starting states",
                cfgs.len(),
                starts.len()
            ),
        ));
    }
    for (k, (cfg, start)) in cfgs.iter().zip(&starts).enumerate() {
        let fits = match &cfg.net {
            None => {
                start.params.is_plain()
                    && start.params.len() + 1 == cfg.arch.len()
                    && start.params.iter().zip(cfg.arch.windows(2)).all(|(l, w)| {
                        l.weight.shape() == (w[1], w[0])
                            && l.bias.as_ref().map(Vec::len) == cfg.bias.then_some(w[1])
                    })
            }
            // A network of modules sets each layer's bias itself: the start must have the
            // tensors of the network its spec builds.
            Some(spec) => crate::nn::build::build_net::<f64>(spec, &cfg.build_options())
                .is_ok_and(|net| net.params().same_tensors(&start.params)),
        };
        if !fits {
            let what = match &cfg.net {
                None => format!(
                    "a {} network{}",
                    crate::nn::arch_text(&cfg.arch),
                    if cfg.bias { "" } else { " without biases" }
                ),
                Some(spec) => format!("the tensors of --net '{spec}'"),
            };
            return Err(crate::error::Error::config(
                "lockstep",
                format!("run {k}: its starting parameters are not {what}"),
            ));
        }
    }
    Ok(together(cfgs, data, starts).0)
}

/// [`train_together`] after its checks; also returns the updates taken in packs (all runs).
fn together(
    cfgs: &[&RunConfig],
    data: &crate::data::Dataset<'_>,
    starts: Vec<super::InitialState>,
) -> (Vec<crate::records::RunOutput>, usize) {
    fn typed<T: Float>(
        cfgs: &[&RunConfig],
        data: &crate::data::Dataset<'_>,
        starts: Vec<super::InitialState>,
    ) -> (Vec<crate::records::RunOutput>, usize) {
        let mut packed = 0;
        let mut out = Vec::with_capacity(cfgs.len());
        let mut starts = starts.into_iter();
        for chunk in cfgs.chunks(LANES) {
            let mut lives: Vec<Live<'_, T>> = chunk
                .iter()
                .map(|cfg| Live::new(cfg, data, starts.next().expect("one start per config")))
                .collect();
            let mut lanes = Lanes::new(&lives[0].run);
            let most = chunk.iter().map(|c| c.steps).max().unwrap_or(0);
            advance_together(&mut lives, &mut lanes, most, &mut |_, _| {});
            packed += lanes.pack_steps;
            out.extend(lives.into_iter().map(|live| live.finish(&mut |_| {})));
        }
        (out, packed)
    }
    match cfgs.first().map(|c| c.precision) {
        None => (Vec::new(), 0),
        Some(crate::config::Precision::F32) => typed::<f32>(cfgs, data, starts),
        Some(crate::config::Precision::F64) => typed::<f64>(cfgs, data, starts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, RawConfig};
    use crate::train::initial_params;

    /// A run that trains in lockstep (a pack of one) against the same run through the
    /// single-run engine: every output to the bit, timing aside, in both precisions (the
    /// engine's small layers sum their products in the lanes' order), with diagnostics on
    /// (recording steps through the engine) and off.
    #[test]
    fn a_lockstep_run_is_the_single_run_engine_to_the_bit() {
        for text in [
            "data = \"moons:n=120\"\nhidden = \"10,10\"\nbatch = 24\nsteps = 120\neval_every = 10",
            "data = \"xor\"\nhidden = \"6\"\nbatch = \"full\"\nsteps = 300\nlayer_init = [\"2=zeros\"]\nlayer_bias_init = [\"2=zeros\"]",
            "data = \"spirals:n=90\"\nhidden = \"32,7\"\nact = \"relu\"\nbatch = 16\nsteps = 150\nlr = 0.05\nschedule = \"cosine\"",
            "data = \"moons:n=100\"\nhidden = \"12\"\nbatch = 20\nsteps = 700\neval_every = 50\ndiagnostics = \"on\"",
            // Networks of modules: residual blocks (nested, at the input, after a linear layer
            // whose derivative the skip's gradient must not skip), gates, shifts, standalone
            // activations, a layer without bias, a gate after the output layer.
            "data = \"moons:n=96\"\nnet = \"linear(12) tanh res(linear(12) tanh linear(12) gate(0))*2 linear\"\nbatch = 24\nsteps = 200",
            "data = \"xor\"\nnet = \"res(linear(2) tanh linear(2)) linear(10) tanh res(res(tanh linear(10)) shift(0.1)) relu linear(10, bias=none) tanh linear\"\nbatch = \"full\"\nsteps = 300",
            // An activation first, linear layers without activations in a row, a block last.
            "data = \"spirals:n=90\"\nnet = \"tanh res(linear(2) linear(2)) linear(6) linear(3, bias=none) shift(0.2) res(tanh gate(0.5))\"\nbatch = 30\nsteps = 200",
            "data = \"spirals:n=90\"\nnet = \"linear(8) res(linear(8) tanh linear(8) gate(0.5)) tanh linear(3) gate(1)\"\nbatch = 15\nsteps = 150\nlr = 0.05",
            "data = \"moons:n=80\"\nnet = \"linear(6) relu res(linear(6) relu linear(6) gate(1) shift(0))*3 linear\"\npreset = \"fixup\"\nbatch = 16\nsteps = 400\neval_every = 40\ndiagnostics = \"on\"",
            "data = \"moons:n=80\"\nnet = \"linear(6) relu res(linear(6) relu linear(6) gate(1) shift(0))*3 linear\"\npreset = \"fixup\"\nbatch = 16\nsteps = 400\neval_every = 40",
        ] {
          for precision in ["f64", "f32"] {
            let diagnostics = if text.contains("diagnostics") {
                ""
            } else {
                "\ndiagnostics = \"off\""
            };
            let raw: RawConfig = toml::from_str(&format!(
                "{text}{diagnostics}\nprecision = \"{precision}\""
            ))
            .unwrap();
            let (cfg, data) = validate(&raw).unwrap();
            assert!(cfg.lockstep(data.train.len()));
            let start = initial_params(&cfg, &data).unwrap();
            let (mut outs, pack_steps) = together(&[&cfg], &data, vec![start.clone()]);
            let packed = outs.remove(0);
            // Most updates were taken in the pack (not every step through the engine).
            assert!(
                pack_steps * 2 > cfg.steps,
                "{text} {precision}: {pack_steps} of {} updates in the pack",
                cfg.steps
            );
            let engine = crate::train::train_from(&cfg, &data, start, &mut |_| {});
            let untimed = |o: &crate::records::RunOutput| {
                let mut o = o.clone();
                o.summary.wall_seconds = 0.0;
                o.summary.samples_per_second = 0.0;
                o.started_at = 0.0;
                o
            };
            // The first metric that differs, then everything.
            if let Some((a, b)) = packed
                .metrics
                .iter()
                .zip(&engine.metrics)
                .find(|(a, b)| a != b && !(a.value.is_nan() && b.value.is_nan()))
            {
                panic!("{text} {precision}: pack {a:?}, engine {b:?}");
            }
            assert_eq!(packed.params, engine.params, "{text} {precision}");
            // Compared as text, which prints every float exactly and NaN as NaN (a metric may
            // be NaN: grad_to_weight of a zero weight).
            assert!(
                format!("{:?}", untimed(&packed)) == format!("{:?}", untimed(&engine)),
                "{text} {precision}: the outputs differ"
            );
            if text.contains("diagnostics") {
                assert!(packed.metrics.len() > 1000, "{text}: diagnostics recorded");
            }
            // Below the zero output layer, layer 1 gets no gradient at step 0 and wakes at
            // step 1: the steps until then go through the engine, the rest in lockstep.
            if text.contains("zeros") {
                assert_eq!(packed.summary.verdict.layers[0].wake_step, Some(1), "{text}");
            }
          }
        }
    }
}
