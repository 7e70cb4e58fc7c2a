//! One page's session: a thread that owns the run and trains it, and a worker thread for the
//! slow questions (the verdict so far, the archive, the explanation).
//!
//! The trainer takes commands between chunks of steps (a chunk is about [`CHUNK`] of work, so a
//! command waits at most that long for the CPU time the thread gets) and sends events to every
//! open event stream of the page: `state` when a stream opens and after every restart, `update`
//! at most every [`UPDATE_EVERY`] while training, `verdict` when the worker has one. The session
//! ends when no stream has been open for [`IDLE`] (the page went away) or when it is deleted.
//!
//! Rewind rebuilds the run from its configuration: the same seed gives the same starting
//! parameters and the same steps, bit for bit. The verdict and the archive at step s replay the
//! configuration for s steps on the worker (what `initscope train ... --steps s` computes), so the
//! trainer is never paused for them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use initscope::config::Precision;
use initscope::diagnostics::probe::{Probe, UnitValues};
use initscope::diagnostics::symmetry::UnitGraph;
use initscope::explain::{explain_with, Explanation, Format};
use initscope::output::folder::MARKER;
use initscope::output::FolderKind;
use initscope::records::{EvalPoint, RunOutput};
use initscope::scalar::Float;
use initscope::train::{initial_params, Live};
use initscope::RunConfig;
use serde_json::{json, Value};
use tokio::sync::{mpsc as tmpsc, oneshot};

use super::settings::{task, Setup};

/// Work between two looks at the command queue.
pub const CHUNK: Duration = Duration::from_millis(1);

/// The shortest time between two updates of a training session (40 per second at most).
pub const UPDATE_EVERY: Duration = Duration::from_millis(25);

/// The longest time between two updates of a training session, whatever an update costs (a
/// page under load still gets at least 3 per second).
pub const MAX_UPDATE_GAP: Duration = Duration::from_millis(300);

/// How long a session lives without an open event stream (`serve --idle-seconds`).
pub const IDLE: Duration = Duration::from_secs(10);

/// Events a stream may hold before it is sent a fresh `state` instead of the ones it missed.
pub const STREAM_QUEUE: usize = 64;

/// Layers with more weights than this are not sent for drawing edges.
const MAX_DRAWN_WEIGHTS: usize = 4096;

/// A server-sent event: its name and JSON text.
#[derive(Clone, Debug)]
pub struct Msg {
    pub event: &'static str,
    pub data: Arc<str>,
}

/// What a page asks its session.
pub enum Action {
    Play,
    Pause,
    Step(usize),
    Rewind,
    /// Steps per second while playing (None: as fast as the engine goes).
    Speed(Option<f64>),
}

/// The pace a session starts at, in steps per second: slow enough to watch a short run.
pub const DEFAULT_SPEED: f64 = 500.0;

pub type Reply<T> = oneshot::Sender<Result<T, String>>;

pub enum Command {
    Control(Action, Reply<Value>),
    Settings(Box<Setup>, Reply<Value>),
    Subscribe(tmpsc::Sender<Msg>),
    Unit {
        layer: usize,
        unit: usize,
        reply: Reply<Value>,
    },
    Explain(Reply<Value>),
    Archive(Reply<(String, Vec<u8>)>),
    Stop,
}

/// Counts the threads sessions hold (the status endpoint and the leak test read it).
#[derive(Clone, Default)]
pub struct ThreadCount(Arc<AtomicUsize>);

impl ThreadCount {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts the calling thread until the guard drops.
    fn enter(&self) -> ThreadGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ThreadGuard(self.0.clone())
    }
}

struct ThreadGuard(Arc<AtomicUsize>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running session as the server holds it.
pub struct Session {
    pub commands: mpsc::Sender<Command>,
    pub thread: std::thread::JoinHandle<()>,
    /// Event streams open (the API bounds them).
    pub streams: Arc<AtomicUsize>,
}

/// Starts a session's threads, paused at step 0 of `setup`.
pub fn start(
    id: String,
    setup: Setup,
    threads: ThreadCount,
    idle: Duration,
) -> std::io::Result<Session> {
    let (tx, rx) = mpsc::channel();
    let sid = id.clone();
    // Counted from before the thread starts, so the count never misses a live thread.
    let guard = threads.enter();
    let thread = std::thread::Builder::new()
        .name(format!("session-{id}"))
        .spawn(move || {
            let _guard = guard;
            let worker = Worker::start(&sid, threads.clone());
            let mut trainer = Trainer {
                id: sid,
                rx,
                streams: Vec::new(),
                idle_since: Some(Instant::now()),
                worker,
                speed: Some(DEFAULT_SPEED),
                idle,
            };
            let mut setup = Arc::new(setup);
            let mut generation = 0;
            loop {
                generation += 1;
                let next = match setup.cfg.precision {
                    Precision::F32 => trainer.run::<f32>(&setup, generation),
                    Precision::F64 => trainer.run::<f64>(&setup, generation),
                };
                match next {
                    Next::Restart(s) => setup = s,
                    Next::Stop => break,
                }
            }
        })?;
    Ok(Session {
        commands: tx,
        thread,
        streams: Arc::default(),
    })
}

/// What ends one configuration's run loop.
enum Next {
    Restart(Arc<Setup>),
    Stop,
}

/// An open event stream and whether it missed events (it then gets a fresh `state`).
struct Stream {
    tx: tmpsc::Sender<Msg>,
    missed: bool,
}

struct Trainer {
    id: String,
    rx: mpsc::Receiver<Command>,
    streams: Vec<Stream>,
    /// Since when no stream has been open.
    idle_since: Option<Instant>,
    worker: Worker,
    /// How long the session lives without an open event stream.
    idle: Duration,
    /// Steps per second the page asked for (None: as fast as the engine goes); kept across
    /// rewinds and settings changes.
    speed: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Paused,
    Running,
    /// Taking the updates of a `step` action (unpaced), then paused.
    Stepping,
    Done,
    Diverged,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Paused => "paused",
            Status::Running | Status::Stepping => "running",
            Status::Done => "done",
            Status::Diverged => "diverged",
        }
    }

    /// Training (playing or taking a step's updates).
    fn moving(self) -> bool {
        matches!(self, Status::Running | Status::Stepping)
    }
}

/// The figures of the network's structure, recomputed at most every tenth of the time since
/// the last computation took (colour refinement on a wide network is not free).
struct Structure {
    classes: Vec<Option<Vec<usize>>>,
    exact: Vec<Option<usize>>,
    tol: Vec<Option<usize>>,
    at_step: Option<usize>,
    cost: Duration,
    computed: Instant,
}

/// One configuration's run as the trainer holds it.
struct RunState<'a, T: Float> {
    setup: &'a Arc<Setup>,
    generation: u64,
    live: Live<'a, T>,
    probe: Probe<'a, T>,
    status: Status,
    /// Evaluations already sent in updates.
    sent_evals: usize,
    last_update: Option<Instant>,
    /// What the last update took to compute (updates take at most a fifth of the time).
    update_cost: Duration,
    /// While stepping: the step to stop at and the `step` request's answer, sent then.
    step_to: Option<(usize, Reply<Value>)>,
    /// (time, steps done) a second or so ago, for steps per second.
    rate_mark: (Instant, usize),
    steps_per_second: f64,
    /// Adaptive chunk size in steps.
    chunk: usize,
    /// (time, steps done) when play was pressed or the speed changed: the pace counts from here.
    pace_mark: (Instant, usize),
    structure: Structure,
    /// The latest verdict event (for `state` and late streams).
    verdict: Option<Value>,
    verdict_requested: Option<(usize, Instant)>,
}

impl Trainer {
    /// Runs `setup` from step 0 until a restart or the end of the session.
    fn run<T: Float>(&mut self, setup: &Arc<Setup>, generation: u64) -> Next {
        let start = match initial_params(&setup.cfg, &setup.data) {
            Ok(s) => s,
            Err(e) => {
                // Validation ran; only a file changed on disk gets here.
                let fatal = json!({"error": format!("initscope: error: {e}")});
                self.broadcast_value("fatal", &fatal);
                return self.wait_for_restart(&fatal);
            }
        };
        let mut live = Live::<T>::new(&setup.cfg, &setup.data, start);
        // The loss curve starts at the initialization.
        live.evaluate_due(&mut |_| {});
        self.worker.generation.store(generation, Ordering::SeqCst);
        let probe = Probe::new(&setup.cfg, &setup.data, live.net());
        let now = Instant::now();
        let mut st = RunState {
            setup,
            generation,
            live,
            probe,
            status: Status::Paused,
            sent_evals: 0,
            last_update: None,
            update_cost: Duration::ZERO,
            step_to: None,
            rate_mark: (now, 0),
            steps_per_second: 0.0,
            chunk: 1,
            pace_mark: (now, 0),
            structure: Structure {
                classes: Vec::new(),
                exact: Vec::new(),
                tol: Vec::new(),
                at_step: None,
                cost: Duration::ZERO,
                computed: now,
            },
            verdict: None,
            verdict_requested: None,
        };
        // A run whose loss is not finite at step 0 is over before it starts.
        self.settle_status(&mut st);
        let state = self.state_json(&mut st);
        self.broadcast_value("state", &state);
        self.request_verdict(&mut st);
        loop {
            // Paced: the time until the next step is allowed.
            let wait = match st.status {
                Status::Running => self.pace_wait(&st),
                Status::Stepping => Duration::ZERO,
                _ => Duration::from_millis(250),
            };
            let cmd = if wait.is_zero() {
                match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return Next::Stop,
                }
            } else {
                match self.rx.recv_timeout(wait) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Next::Stop,
                }
            };
            if let Some(cmd) = cmd {
                if let Some(next) = self.handle(cmd, &mut st) {
                    return next;
                }
            }
            self.poll_worker(&mut st);
            self.prune_streams();
            self.resync(&mut st);
            if self
                .idle_since
                .is_some_and(|t| t.elapsed() >= self.idle && self.streams.is_empty())
            {
                return Next::Stop;
            }
            let go = match st.status {
                Status::Running => self.pace_wait(&st).is_zero(),
                Status::Stepping => true,
                _ => false,
            };
            if go {
                self.train_chunk(&mut st);
                if st.status == Status::Stepping
                    && st
                        .step_to
                        .as_ref()
                        .is_none_or(|(to, _)| st.live.steps_done() >= *to)
                {
                    st.status = Status::Paused;
                }
                // Updates take at most a fifth of the time (a wide network's grid and
                // gradient probe are not free).
                let due = st.last_update.is_none_or(|t| {
                    t.elapsed() >= UPDATE_EVERY.max(st.update_cost * 4).min(MAX_UPDATE_GAP)
                });
                if due || !st.status.moving() {
                    self.send_update(&mut st);
                }
                // At the end of the run or of a step, and every so often while it trains.
                if !st.status.moving() {
                    self.request_verdict(&mut st);
                    self.end_stepping(&mut st);
                } else if self.verdict_due(&st) {
                    self.request_verdict(&mut st);
                }
            }
        }
    }

    /// After a run could not start: waits for new settings or the end; a stream that opens
    /// meanwhile gets the `fatal` event.
    fn wait_for_restart(&mut self, fatal: &Value) -> Next {
        loop {
            match self.rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Command::Settings(setup, reply)) => {
                    let _ = reply.send(Ok(json!({"restarted": true})));
                    return Next::Restart(Arc::new(*setup));
                }
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return Next::Stop,
                Ok(Command::Subscribe(tx)) => {
                    let msg = Msg {
                        event: "fatal",
                        data: fatal.to_string().into(),
                    };
                    if tx.try_send(msg).is_ok() {
                        self.streams.push(Stream { tx, missed: false });
                    }
                }
                Ok(other) => refuse(other, "the run could not start; change the settings"),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.prune_streams();
            if self
                .idle_since
                .is_some_and(|t| t.elapsed() >= self.idle && self.streams.is_empty())
            {
                return Next::Stop;
            }
        }
    }

    /// Applies one command; `Some` ends this configuration's run.
    fn handle<T: Float>(&mut self, cmd: Command, st: &mut RunState<'_, T>) -> Option<Next> {
        match cmd {
            Command::Control(action, reply) => match action {
                Action::Rewind => {
                    self.end_stepping(st);
                    let _ = reply.send(Ok(json!({"status": "paused", "step": 0})));
                    return Some(Next::Restart(st.setup.clone()));
                }
                Action::Play => {
                    self.end_stepping(st);
                    if !st.live.ended() {
                        st.status = Status::Running;
                        st.rate_mark = (Instant::now(), st.live.steps_done());
                        st.pace_mark = st.rate_mark;
                    }
                    let _ = reply.send(Ok(self.control_reply(st)));
                }
                Action::Speed(speed) => {
                    self.speed = speed;
                    st.pace_mark = (Instant::now(), st.live.steps_done());
                    let _ = reply.send(Ok(self.control_reply(st)));
                }
                Action::Pause => {
                    if st.status.moving() {
                        st.status = Status::Paused;
                    }
                    self.end_stepping(st);
                    self.send_update(st);
                    self.request_verdict(st);
                    let _ = reply.send(Ok(self.control_reply(st)));
                }
                Action::Step(n) => {
                    // Taken in chunks by the loop, which keeps answering commands meanwhile;
                    // the answer goes out when the updates are taken (or a pause cuts them short).
                    self.end_stepping(st);
                    if st.live.ended() {
                        let _ = reply.send(Ok(self.control_reply(st)));
                    } else {
                        st.status = Status::Stepping;
                        st.step_to = Some((st.live.steps_done().saturating_add(n), reply));
                    }
                }
            },
            Command::Settings(setup, reply) => {
                self.end_stepping(st);
                let _ = reply.send(Ok(json!({"restarted": true})));
                return Some(Next::Restart(Arc::new(*setup)));
            }
            Command::Subscribe(tx) => {
                let state = self.state_json(st);
                let msg = Msg {
                    event: "state",
                    data: state.to_string().into(),
                };
                if tx.try_send(msg).is_ok() {
                    self.streams.push(Stream { tx, missed: false });
                    self.idle_since = None;
                }
            }
            Command::Unit { layer, unit, reply } => {
                let _ = reply.send(unit_json(st, layer, unit));
            }
            Command::Explain(reply) => {
                self.worker.send(Job::Explain {
                    setup: st.setup.clone(),
                    reply,
                });
            }
            Command::Archive(reply) => {
                self.worker.send(Job::Archive {
                    setup: st.setup.clone(),
                    steps: replay_steps(st),
                    reply,
                });
            }
            Command::Stop => return Some(Next::Stop),
        }
        None
    }

    /// Answers the `step` request in progress, if any, with where the run is.
    fn end_stepping<T: Float>(&self, st: &mut RunState<'_, T>) {
        if let Some((_, reply)) = st.step_to.take() {
            if st.status == Status::Stepping {
                st.status = Status::Paused;
            }
            let _ = reply.send(Ok(self.control_reply(st)));
        }
    }

    fn control_reply<T: Float>(&self, st: &RunState<'_, T>) -> Value {
        json!({"status": st.status.name(), "step": st.live.steps_done(), "speed": self.speed})
    }

    /// How long until the pace allows the next step (zero when unpaced or behind).
    fn pace_wait<T: Float>(&self, st: &RunState<'_, T>) -> Duration {
        let Some(speed) = self.speed else {
            return Duration::ZERO;
        };
        let (t0, s0) = st.pace_mark;
        let due = t0 + Duration::from_secs_f64((st.live.steps_done() - s0) as f64 / speed);
        due.saturating_duration_since(Instant::now())
            .min(UPDATE_EVERY)
    }

    /// Trains for about [`CHUNK`], adapting the number of steps to the measured speed.
    fn train_chunk<T: Float>(&mut self, st: &mut RunState<'_, T>) {
        let t = Instant::now();
        let done = st.live.steps_done();
        let chunk = match (st.status, self.speed, &st.step_to) {
            // A step's updates: unpaced, up to the step's end.
            (Status::Stepping, _, Some((to, _))) => st.chunk.min(to.saturating_sub(done).max(1)),
            // Paced: no more steps than the pace allows by now (at least one).
            (_, Some(speed), _) => {
                let (t0, s0) = st.pace_mark;
                // Saturating: a huge speed (1e300 steps/s) is as fast as the engine goes.
                let allowed = s0
                    .saturating_add((t0.elapsed().as_secs_f64() * speed) as usize)
                    .saturating_add(1);
                st.chunk.min(allowed.saturating_sub(done).max(1))
            }
            _ => st.chunk,
        };
        let taken = st.live.advance(chunk, &mut |_| {});
        let spent = t.elapsed();
        if taken == st.chunk && chunk == st.chunk {
            // Aim the next chunk at CHUNK of work (within a factor 2 per chunk).
            let ratio = CHUNK.as_secs_f64() / spent.as_secs_f64().max(1e-7);
            st.chunk = ((st.chunk as f64 * ratio.clamp(0.5, 2.0)) as usize).max(1);
        }
        let (t0, s0) = st.rate_mark;
        let dt = t0.elapsed().as_secs_f64();
        if dt >= 0.5 {
            st.steps_per_second = (st.live.steps_done() - s0) as f64 / dt;
            st.rate_mark = (Instant::now(), st.live.steps_done());
        }
        self.settle_status(st);
    }

    /// Done or diverged once the run is over.
    fn settle_status<T: Float>(&self, st: &mut RunState<'_, T>) {
        if st.live.ended() {
            st.status = if st.live.diverged_at().is_some() {
                Status::Diverged
            } else {
                Status::Done
            };
        }
    }

    fn verdict_due<T: Float>(&self, st: &RunState<'_, T>) -> bool {
        match st.verdict_requested {
            None => st.live.steps_done() > 0,
            // Every 3 s while training, and no more than a twentieth of the time on replays (20
            // sessions' replays would otherwise crowd the trainers off 2 cores).
            Some((_, at)) => at.elapsed() >= Duration::from_secs(3).max(self.worker.last_cost * 20),
        }
    }

    fn request_verdict<T: Float>(&mut self, st: &mut RunState<'_, T>) {
        let steps = st.live.steps_done();
        // Step 0 has a verdict only when the run ends there (a loss not finite at the start).
        if (steps == 0 && !st.live.ended()) || st.verdict_requested.is_some_and(|(s, _)| s == steps)
        {
            return;
        }
        st.verdict_requested = Some((steps, Instant::now()));
        self.worker.send(Job::Verdict {
            setup: st.setup.clone(),
            generation: st.generation,
            steps: replay_steps(st),
        });
    }

    /// Forwards the worker's finished verdicts of this configuration.
    /// While the run stands still only the verdict of the step it stands at is news: one of
    /// an earlier step, asked for while it trained, would show after the current one.
    fn poll_worker<T: Float>(&mut self, st: &mut RunState<'_, T>) {
        while let Ok((generation, verdict, cost)) = self.worker.verdicts.try_recv() {
            self.worker.last_cost = cost;
            let current =
                st.status.moving() || verdict["step"].as_u64() == Some(st.live.steps_done() as u64);
            if generation == st.generation && current {
                self.broadcast_value("verdict", &verdict);
                st.verdict = Some(verdict);
            }
        }
    }

    fn send_update<T: Float>(&mut self, st: &mut RunState<'_, T>) {
        let t = Instant::now();
        let update = update_json(st, true);
        self.broadcast_value("update", &update);
        st.update_cost = t.elapsed();
        st.last_update = Some(Instant::now());
    }

    /// The `state` event: everything a page needs to draw the session from scratch.
    fn state_json<T: Float>(&self, st: &mut RunState<'_, T>) -> Value {
        let update = update_json(st, false);
        let setup = &**st.setup;
        let (task_name, classes) = task(&setup.data);
        let net = st.live.net();
        let mut layers = vec![json!({"layer": 0, "name": "input", "width": net.layer(0).fan_in()})];
        let n = net.num_layers();
        for (i, l) in net.layers().enumerate() {
            layers.push(json!({
                "layer": i + 1,
                "name": format!("linear {}", i + 1),
                "width": l.fan_out(),
                "act": l.activation.to_string(),
                "output": i + 1 == n,
            }));
        }
        let points = st.probe.bounds().map(|_| {
            let split = |s: &initscope::data::Split| -> Vec<Value> {
                let labels = match &s.y {
                    initscope::data::Labels::Classes(c) => {
                        c.iter().map(|&v| json!(v)).collect::<Vec<_>>()
                    }
                    initscope::data::Labels::Values(v) => {
                        (0..v.rows()).map(|i| json!(short(v.get(i, 0)))).collect()
                    }
                };
                (0..s.len())
                    .map(|i| json!([short(s.x.get(i, 0)), short(s.x.get(i, 1)), labels[i]]))
                    .collect()
            };
            json!({"train": split(&setup.data.train), "test": split(&setup.data.test)})
        });
        json!({
            "id": self.id,
            "step": st.live.steps_done(),
            "total": setup.cfg.steps,
            "status": st.status.name(),
            "speed": self.speed,
            "settings": setup.settings,
            "command": setup.command,
            "headline": setup.cfg.headline(),
            "run_id": setup.cfg.run_id(),
            "task": task_name,
            "classes": classes,
            "inputs": setup.data.input_dim(),
            "outputs": net.layer(n - 1).fan_out(),
            "bounds": st.probe.bounds(),
            "points": points,
            "layers": layers,
            "evals": st.live.evals().iter().map(eval_json).collect::<Vec<_>>(),
            "update": update,
            "verdict": st.verdict,
        })
    }

    fn broadcast_value(&mut self, event: &'static str, v: &Value) {
        self.broadcast(event, v.clone());
    }

    /// Sends an event to every open stream; a stream whose queue is full misses it, and every
    /// later one until [`Trainer::resync`] sends it a fresh `state`.
    fn broadcast(&mut self, event: &'static str, v: Value) {
        let msg = Msg {
            event,
            data: v.to_string().into(),
        };
        for s in &mut self.streams {
            if !s.missed && s.tx.try_send(msg.clone()).is_err() {
                s.missed = true;
            }
        }
    }

    /// Sends a `state` to every stream that missed events and has room again.
    fn resync<T: Float>(&mut self, st: &mut RunState<'_, T>) {
        if !self
            .streams
            .iter()
            .any(|s| s.missed && s.tx.capacity() > STREAM_QUEUE / 2)
        {
            return;
        }
        let msg = Msg {
            event: "state",
            data: self.state_json(st).to_string().into(),
        };
        for s in &mut self.streams {
            if s.missed && s.tx.capacity() > STREAM_QUEUE / 2 && s.tx.try_send(msg.clone()).is_ok()
            {
                s.missed = false;
            }
        }
    }

    /// Drops closed streams and notes when the last one went.
    fn prune_streams(&mut self) {
        self.streams.retain(|s| !s.tx.is_closed());
        if self.streams.is_empty() {
            self.idle_since.get_or_insert_with(Instant::now);
        } else {
            self.idle_since = None;
        }
    }
}

/// The `--steps` of the run that is the session's so far: the steps done, or the configured
/// steps once the run is over. (A run that diverged in its last update stopped short of it;
/// `--steps` of the steps done would take that update's place with an evaluation and end
/// differently.)
fn replay_steps<T: Float>(st: &RunState<'_, T>) -> usize {
    if st.live.ended() {
        st.setup.cfg.steps
    } else {
        st.live.steps_done()
    }
}

/// Answers a command that cannot be served now.
fn refuse(cmd: Command, why: &str) {
    let e = format!("initscope: error: {why}");
    match cmd {
        Command::Control(_, r)
        | Command::Unit { reply: r, .. }
        | Command::Explain(r)
        | Command::Settings(_, r) => {
            let _ = r.send(Err(e));
        }
        Command::Archive(r) => {
            let _ = r.send(Err(e));
        }
        Command::Subscribe(_) | Command::Stop => {}
    }
}

/// A number for the page, to 5 significant digits (the page draws; it does not compute).
fn short(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    let s = format!("{v:.4e}");
    json!(s.parse::<f64>().unwrap_or(v))
}

/// An evaluation at full precision (the losses are what a person compares with the CLI's).
fn eval_json(e: &EvalPoint) -> Value {
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    json!({
        "step": e.step,
        "train_loss": num(e.train_loss),
        "test_loss": num(e.test_loss),
        "train_acc": e.train_acc.map(num),
        "test_acc": e.test_acc.map(num),
    })
}

/// The `update` event: new evaluations, per-layer figures, the weights to draw, the grid.
/// `new_evals`: the evaluations since the last update go in it (and count as sent); without,
/// none do (a `state` carries them all).
fn update_json<T: Float>(st: &mut RunState<'_, T>, new_evals: bool) -> Value {
    let mut evals = Vec::new();
    if new_evals {
        evals = st.live.evals()[st.sent_evals..]
            .iter()
            .map(eval_json)
            .collect();
        st.sent_evals = st.live.evals().len();
    }
    let step = st.live.steps_done();
    refresh_structure(st, step);
    let norms = st.probe.grad_norms(st.live.net());
    let net = st.live.net();
    let wake = st.live.wake();
    let layers: Vec<Value> = (0..net.num_layers())
        .map(|i| {
            json!({
                "layer": i + 1,
                "grad_norm": short(norms[i]),
                "wake": wake[i],
                "width_exact": st.structure.exact.get(i).copied().flatten(),
                "width_tol": st.structure.tol.get(i).copied().flatten(),
                "classes": st.structure.classes.get(i).cloned().flatten(),
            })
        })
        .collect();
    let weights: Vec<Value> = net
        .layers()
        .enumerate()
        .filter(|(_, l)| l.weight.rows() * l.weight.cols() <= MAX_DRAWN_WEIGHTS)
        .map(|(i, l)| {
            json!({
                "layer": i + 1,
                "rows": l.weight.rows(),
                "cols": l.weight.cols(),
                "values": l.weight.as_slice().iter().map(|v| short(v.to_f64())).collect::<Vec<_>>(),
            })
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let grid = st.probe.grid_image(st.live.net()).map(|g| {
        json!({"res": g.res, "class": b64.encode(&g.class), "confidence": b64.encode(&g.confidence)})
    });
    json!({
        "step": step,
        "total": st.setup.cfg.steps,
        "status": st.status.name(),
        "steps_per_second": st.steps_per_second.round(),
        "evals": evals,
        "layers": layers,
        "weights": weights,
        "grid": grid,
    })
}

/// Recomputes the symmetry classes when the step moved and the last computation is old enough
/// (at most a tenth of the time goes to it).
fn refresh_structure<T: Float>(st: &mut RunState<'_, T>, step: usize) {
    let s = &mut st.structure;
    let fresh = s.at_step == Some(step);
    let paused = !st.status.moving();
    if fresh || (!paused && s.at_step.is_some() && s.computed.elapsed() < s.cost * 10) {
        return;
    }
    let t = Instant::now();
    let graph = UnitGraph::of_net(st.live.net());
    let exact = graph.exact_partition();
    let tol = graph.equitable_partition(st.setup.cfg.symmetry_tolerance());
    s.classes = graph.linear_classes(&tol);
    s.exact = graph.linear_widths(&exact);
    s.tol = graph.linear_widths(&tol);
    s.at_step = Some(step);
    s.cost = t.elapsed();
    s.computed = Instant::now();
}

/// A unit's incoming weights, bias, class and values over the grid or the data.
fn unit_json<T: Float>(
    st: &mut RunState<'_, T>,
    layer: usize,
    unit: usize,
) -> Result<Value, String> {
    let net = st.live.net();
    let n = net.num_layers();
    if layer == 0 || layer > n || unit >= net.layer(layer - 1).fan_out() {
        return Err(format!(
            "initscope: error: no unit {unit} in linear layer {layer} (the network has {n} linear layers)"
        ));
    }
    let l = net.layer(layer - 1);
    let weights: Vec<Value> = l
        .weight
        .row(unit)
        .iter()
        .map(|v| short(v.to_f64()))
        .collect();
    let bias = l.has_bias.then(|| short(l.bias[unit].to_f64()));
    let class = st
        .structure
        .classes
        .get(layer - 1)
        .and_then(|c| c.as_ref())
        .map(|c| c[unit]);
    let quantity = if st.setup.cfg.net.is_some() {
        "z"
    } else {
        "f(z)"
    };
    let values = st
        .probe
        .unit_values(st.live.net(), layer, unit)
        .ok_or_else(|| "initscope: error: no such unit".to_string())?;
    let activation = activation_json(&values);
    Ok(json!({
        "layer": layer,
        "unit": unit,
        "class": class,
        "bias": bias,
        "weights": weights,
        "quantity": quantity,
        "activation": activation,
    }))
}

fn activation_json(v: &UnitValues) -> Value {
    let finite = v.values.iter().copied().filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    match v.grid {
        Some(res) => json!({
            "kind": "grid",
            "res": res,
            "min": short(lo),
            "max": short(hi),
            "values": v.values.iter().map(|&x| short(x)).collect::<Vec<_>>(),
        }),
        None => {
            const BINS: usize = 20;
            // All values equal (a unit of a zero init): a unit-wide range centred on them.
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else if lo.is_finite() {
                (lo - 0.5, lo + 0.5)
            } else {
                (0.0, 1.0)
            };
            let width = (hi - lo) / BINS as f64;
            let mut counts = vec![0usize; BINS];
            for &x in &v.values {
                if x.is_finite() {
                    counts[(((x - lo) / width) as usize).min(BINS - 1)] += 1;
                }
            }
            let edges: Vec<Value> = (0..=BINS).map(|i| short(lo + width * i as f64)).collect();
            json!({"kind": "histogram", "edges": edges, "counts": counts})
        }
    }
}

/// Slow questions, answered on the session's second thread.
enum Job {
    Verdict {
        setup: Arc<Setup>,
        generation: u64,
        steps: usize,
    },
    Archive {
        setup: Arc<Setup>,
        steps: usize,
        reply: Reply<(String, Vec<u8>)>,
    },
    Explain {
        setup: Arc<Setup>,
        reply: Reply<Value>,
    },
}

/// The worker thread's handle.
struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    /// (configuration generation, verdict event, the replay's wall time)
    verdicts: mpsc::Receiver<(u64, Value, Duration)>,
    /// The last replay's wall time.
    last_cost: Duration,
    /// Set when the session ends: the job in progress stops within a step.
    cancel: Arc<AtomicBool>,
    /// The trainer's configuration generation: a verdict of an older one is not worth finishing.
    generation: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(id: &str, threads: ThreadCount) -> Worker {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (vtx, vrx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (stop, current) = (cancel.clone(), generation.clone());
        let guard = threads.enter();
        let thread = std::thread::Builder::new()
            .name(format!("session-{id}-worker"))
            .spawn(move || {
                let _guard = guard;
                let mut cache: Option<(Arc<Setup>, RunOutput)> = None;
                let cancelled = || stop.load(Ordering::SeqCst);
                while let Ok(first) = jobs_rx.recv() {
                    // Of the verdicts asked for meanwhile only the newest is worth a replay.
                    let mut jobs = vec![first];
                    jobs.extend(jobs_rx.try_iter());
                    let newest = jobs.iter().rposition(|j| matches!(j, Job::Verdict { .. }));
                    for (i, job) in jobs.into_iter().enumerate() {
                        if cancelled() {
                            return;
                        }
                        match job {
                            Job::Verdict {
                                setup,
                                generation,
                                steps,
                            } => {
                                if Some(i) != newest {
                                    continue;
                                }
                                let stale = || {
                                    cancelled() || current.load(Ordering::SeqCst) != generation
                                };
                                let t = Instant::now();
                                if let Some(out) = replayed(&mut cache, &setup, steps, &stale) {
                                    let v = verdict_json(&setup, out);
                                    let _ = vtx.send((generation, v, t.elapsed()));
                                }
                            }
                            Job::Archive {
                                setup,
                                steps,
                                reply,
                            } => {
                                // Nobody waits for an answer once the request went away.
                                let gone = || cancelled() || reply.is_closed();
                                if gone() {
                                    continue;
                                }
                                // Stopped: the reply is dropped (the session ended, or nobody
                                // waits for it).
                                if let Some(out) = replayed(&mut cache, &setup, steps, &gone) {
                                    let r = archive(out).map_err(|e| format!("initscope: error: {e}"));
                                    let _ = reply.send(r);
                                }
                            }
                            Job::Explain { setup, reply } => {
                                let gone = || cancelled() || reply.is_closed();
                                if gone() {
                                    continue;
                                }
                                let Some(r) = explained(&mut cache, &setup, &gone) else {
                                    continue;
                                };
                                let r = r.map(|x| {
                                    json!({
                                        "markdown": x.render(Format::Markdown),
                                        "text": x.render(Format::Text),
                                        "command": setup.command.replacen("initscope train", "initscope explain", 1),
                                    })
                                });
                                let _ = reply.send(r);
                            }
                        }
                    }
                }
            })
            .ok();
        Worker {
            jobs: Some(jobs_tx),
            verdicts: vrx,
            last_cost: Duration::ZERO,
            cancel,
            generation,
            thread,
        }
    }

    fn send(&mut self, job: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The run of `setup` for `steps` updates (what `initscope train ... --steps N` computes),
/// from the cache when it holds that run; None when `stop` said so.
fn replayed<'c>(
    cache: &'c mut Option<(Arc<Setup>, RunOutput)>,
    setup: &Arc<Setup>,
    steps: usize,
    stop: &dyn Fn() -> bool,
) -> Option<&'c RunOutput> {
    let hit = cache.as_ref().is_some_and(|(s, out)| {
        Arc::ptr_eq(s, setup) && out.summary.steps == steps && out.config.steps == steps
    });
    if !hit {
        let mut cfg = setup.cfg.clone();
        cfg.steps = steps;
        let out = match cfg.precision {
            Precision::F32 => replay::<f32>(&cfg, setup, stop)?,
            Precision::F64 => replay::<f64>(&cfg, setup, stop)?,
        };
        *cache = Some((setup.clone(), out));
    }
    cache.as_ref().map(|(_, out)| out)
}

/// `train` of `cfg` (Live::new, advance, finish), looking at `stop` before every step.
fn replay<T: Float>(cfg: &RunConfig, setup: &Setup, stop: &dyn Fn() -> bool) -> Option<RunOutput> {
    let start = initial_params(cfg, &setup.data).ok()?;
    let mut live = Live::<T>::new(cfg, &setup.data, start);
    while !live.ended() {
        if stop() {
            return None;
        }
        live.advance(1, &mut |_| {});
    }
    Some(live.finish(&mut |_| {}))
}

/// What [`initscope::explain::explain`] computes for `setup`, with the run of the configured
/// steps from the worker's cache (or replayed, looking at `stop` between steps) instead of a
/// training that nothing could stop: the same derivation of the same starting parameters,
/// the same run (`train` is `Live`), the same quotient widths. None when `stop` said so.
fn explained(
    cache: &mut Option<(Arc<Setup>, RunOutput)>,
    setup: &Arc<Setup>,
    stop: &dyn Fn() -> bool,
) -> Option<Result<Explanation, String>> {
    /// Why no explanation came: stopped, or the library's error.
    enum Why {
        Stopped,
        Error(initscope::Error),
    }
    impl From<initscope::Error> for Why {
        fn from(e: initscope::Error) -> Self {
            Why::Error(e)
        }
    }
    let (cfg, data) = (&setup.cfg, &setup.data);
    let r = explain_with(cfg, data, |_start| {
        replayed(cache, setup, cfg.steps, stop)
            .cloned()
            .ok_or(Why::Stopped)
    });
    match r {
        Ok(x) => Some(Ok(x)),
        Err(Why::Stopped) => None,
        Err(Why::Error(e)) => Some(Err(format!("initscope: error: {e}"))),
    }
}

/// The `verdict` event of a replayed run.
fn verdict_json(setup: &Setup, out: &RunOutput) -> Value {
    let v = &out.summary.verdict;
    let layers: Vec<Value> = v
        .layers
        .iter()
        .map(|l| {
            json!({
                "layer": l.layer,
                "grad_state": l.grad_state.map(|g| g.name()),
                "wake": l.wake_step,
                "width_start": l.width_init_tol,
                "width_end": l.width_end_tol,
            })
        })
        .collect();
    json!({
        "step": out.summary.steps,
        "verdict": v.verdict.name(),
        "learning": v.learning.map(|l| l.name()),
        "summary": v.summary,
        "layers": layers,
        "command": setup.command_with_steps(out.config.steps),
        "run_id": out.summary.run_id,
    })
}

/// The run directory `train --out` writes, as a zip archive in memory (nothing touches the
/// server's disk): `(file name, bytes)`.
fn archive(out: &RunOutput) -> Result<(String, Vec<u8>), String> {
    use std::io::Write as _;
    let mut files = initscope::output::run_files(out).map_err(|e| e.to_string())?;
    files.push((MARKER, FolderKind::Run.marker()));
    let dir = format!("initscope-run-{}", out.summary.run_id);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(format!("{dir}/{name}"), options)
            .map_err(|e| e.to_string())?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    let bytes = zip.finish().map_err(|e| e.to_string())?.into_inner();
    Ok((format!("{dir}.zip"), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::settings::{validate_settings, Limits};

    fn setup(settings: Value) -> Arc<Setup> {
        let limits = Limits {
            max_width: 256,
            max_layers: 16,
            max_steps: 100_000,
            max_points: 20_000,
            max_memory_mib: 64,
            max_work: 2e8,
        };
        let given = settings.as_object().cloned().unwrap_or_default();
        Arc::new(validate_settings(&given, &limits, &[]).expect("valid settings"))
    }

    /// The worker's explanation (a run that can be stopped, from its cache) is the library's.
    #[test]
    fn explained_is_what_explain_computes() {
        for settings in [
            json!({"steps": 30, "init": "zeros"}),
            json!({"steps": 30, "data": "blobs", "optim": "adam", "lr": 0.01}),
            json!({"steps": 20, "net": "linear(8) relu res(linear(8) relu linear(8) gate(0))*2 linear",
                   "init": "kaiming_normal", "lr": 0.05}),
        ] {
            let s = setup(settings.clone());
            let lib = initscope::explain::explain(&s.cfg, &s.data).unwrap();
            let mut cache = None;
            let ours = explained(&mut cache, &s, &|| false).unwrap().unwrap();
            assert_eq!(ours.quotient_init, lib.quotient_init, "{settings}");
            assert_eq!(ours.quotient_end, lib.quotient_end, "{settings}");
            assert_eq!(ours.run.params, lib.run.params, "{settings}");
            for format in [Format::Markdown, Format::Text] {
                assert_eq!(ours.render(format), lib.render(format), "{settings}");
            }
            // A stopped replay answers at once, without a result.
            let mut empty = None;
            assert!(explained(&mut empty, &s, &|| true).is_none());
        }
    }
}
