//! Many independent runs of one small network, trained in lockstep with SIMD lanes across runs.
//!
//! Initialization studies train the same tiny architecture from many starting points (seeds,
//! initializers) on the same small data set. One such run is a few hundred FLOPs per layer and
//! point: any GEMM library spends more time dispatching than computing. Here `LANES` runs share
//! every loop, each scalar of the single-run engine becomes a pack `[T; LANES]` (one value per
//! run), and every operation is one SIMD instruction across runs (one AVX-512 instruction per
//! 16 f32 lanes, two AVX2 ones where the CPU has no AVX-512); JAX's `vmap` does the same. The
//! lanes' arithmetic is the same on every instruction set with FMA (test
//! `avx512_and_avx2_packs_agree_bit_for_bit`).
//!
//! ```text
//! pack of runs r = 0..LANES:   W_l[j][i][r],  b_l[j][r],  z_l[p][j][r],  a_l[p][j][r]
//! forward:   z_l[p][j] = b_l[j] + Σ_i a_{l-1}[p][i] W_l[j][i]      a_l = f(z_l)  (l < L)
//! backward:  dW_l[j][i] = Σ_p δ_l[p][j] a_{l-1}[p][i]      db_l[j] = Σ_p δ_l[p][j]
//!            δ_{l-1}[p][i] = f'(z_{l-1}[p][i]) Σ_j δ_l[p][j] W_l[j][i]
//! update:    W_l -= lr dW_l,  b_l -= lr db_l                       (full-batch gradient descent)
//! ```
//! The formulas are the single-run engine's ([`crate::nn`]), its elementwise ones are its
//! very code (activations by [`Activation`]'s row kernels on the flattened packs, losses by the
//! per-output and per-row functions of [`crate::loss`]), and each layer is packed from and
//! unpacked to [`LayerParams`] in its layout (a network of modules' other tensors, gates and
//! shifts, one pack each). The products of layers up to [`SMALL`] wide are
//! summed in the engine's order ([`crate::small`]), so a run ends with the same bits in a pack
//! as alone; wider layers agree to rounding with faer's products (test
//! `lockstep_matches_the_single_run_engine`).
//! Networks of modules run the same way ([`LanePack::for_net`]): the pack flattens the engine's
//! modules into one program (linear layers, activations, gates, shifts; a residual block is
//! its body then a skip, `y = x + body(x)` forward and `dx = dh_0 + dy` backward), each with
//! the engine's formula and order: a gate's `d alpha = Σ_ij dy_ij x_ij` summed in the same
//! order, lane by lane.
//!
//! Scope: plain SGD on minibatches, each lane reading its own rows of one data set and taking
//! its own learning rate ([`LanePack`]; [`train_lockstep`] is full-batch gradient descent, every
//! run seeing the whole data set each step), any activation, MSE, BCE-with-logits or
//! cross-entropy, with or without biases; no norms or dropout. Groups of packs run in parallel
//! on the current rayon pool, never one run across threads.

use rayon::prelude::*;

use crate::activation::Activation;
use crate::data::RowSource;
use crate::error::{Error, Result};
use crate::loss::{cross_entropy_row, Loss, Targets};
use crate::matrix::Matrix;
use crate::nn::{Anatomy, LayerParams, Module, Net, Params};
#[cfg(target_arch = "x86_64")]
use crate::scalar::Avx512;
use crate::scalar::Float;
#[cfg(target_arch = "x86_64")]
use crate::small::Avx2;
#[cfg(doc)]
use crate::small::SMALL;
use crate::small::{LaneOps, Portable};

/// Runs per pack: 16 f32 lanes fill one AVX-512 register (two AVX2 registers; an f64 pack
/// takes twice as many).
pub const LANES: usize = 16;

/// One value per lane: a pack of runs' scalar (16 lanes, unlike [`crate::small::Pack`]'s 8
/// columns).
pub type Lanes<T> = [T; LANES];

/// `v` in every lane.
#[inline(always)]
fn splat<T: Copy>(v: T) -> Lanes<T> {
    [v; LANES]
}

/// One run's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct LockstepRun {
    /// Parameters after the last step, in f64 (exact for both precisions); a run whose loss
    /// stopped being finite keeps those of the step before.
    pub params: Params,
    /// The full-batch loss before each step, then after the last one (`steps + 1` values).
    pub losses: Vec<f64>,
}

/// Trains every run of `starts` (one parameter set each, all of one architecture) for `steps`
/// full-batch gradient-descent steps at learning rate `lr` on inputs `x` (batch, fan_in) and
/// `targets`, hidden layers with `act`, the output layer linear and fused into `loss`.
pub fn train_lockstep<T: Float>(
    starts: &[Params],
    act: Activation,
    loss: Loss,
    x: &Matrix<T>,
    targets: Targets<'_, T>,
    lr: f64,
    steps: usize,
) -> Result<Vec<LockstepRun>> {
    let Some(first) = starts.first() else {
        return Ok(Vec::new());
    };
    let dims = dims_of(first);
    let has_bias = first[0].bias.is_some();
    for (r, p) in starts.iter().enumerate() {
        if dims_of(p) != dims || p.iter().any(|l| l.bias.is_some() != has_bias) {
            return Err(Error::config(
                "lockstep",
                format!("run {r} has another architecture than run 0 ({dims:?})"),
            ));
        }
    }
    let all: Vec<usize> = (0..x.rows()).collect();
    let groups: Vec<Vec<LockstepRun>> = starts
        .par_chunks(LANES)
        .map(|chunk| {
            let mut pack = LanePack::<T>::new(&dims, has_bias, act, loss, x.rows());
            for lane in 0..LANES {
                // Empty lanes repeat run 0; their results are dropped.
                let r = if lane < chunk.len() { lane } else { 0 };
                pack.set_params(lane, &chunk[r])?;
            }
            pack.set_batch_all(x, targets, &all)?;
            let mut losses = pack.steps([lr; LANES], steps);
            losses.push(pack.loss());
            Ok((0..chunk.len())
                .map(|r| LockstepRun {
                    params: pack.params(r),
                    losses: losses.iter().map(|v| v[r]).collect(),
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(groups.into_iter().flatten().collect())
}

/// [`LANES`] runs of one small network, trained together by plain SGD: each lane holds its own
/// parameters and its own minibatch (rows of one data set, in its own order) and takes its own
/// learning rate, and every operation of a step is one SIMD instruction across the lanes.
/// Lanes never mix: a lane's numbers are the same whatever the other lanes hold. The network
/// is a plain MLP ([`LanePack::new`]) or a network of modules ([`LanePack::for_net`]: linear
/// layers, activations, residual blocks, gates and shifts), its output fused into `loss`.
pub struct LanePack<T> {
    group: Group<T>,
    loss: Loss,
}

impl<T: Float> LanePack<T> {
    /// A pack of MLPs of widths `dims` (hidden layers with `act`, the output layer linear),
    /// all parameters zero, for minibatches of up to `capacity` rows.
    ///
    /// # Panics
    /// When `dims` has fewer than two widths.
    pub fn new(
        dims: &[usize],
        has_bias: bool,
        act: Activation,
        loss: Loss,
        capacity: usize,
    ) -> Self {
        assert!(
            dims.len() >= 2,
            "a network has an input and an output width (dims {dims:?})"
        );
        LanePack {
            group: Group::new(
                Program::mlp(dims, has_bias, act),
                capacity,
                zeros(dims, has_bias),
            ),
            loss,
        }
    }

    /// A pack of copies of `net` (its parameters in no lane yet: all zero), for minibatches of
    /// up to `capacity` rows; `None` when `net` has a module the pack does not run (a norm,
    /// dropout) or no linear layer.
    pub fn for_net(net: &Net<T>, loss: Loss, capacity: usize) -> Option<Self> {
        let mut program = Program::default();
        program.modules(net.modules())?;
        if program.layers.is_empty() {
            return None;
        }
        Some(LanePack {
            group: Group::new(program, capacity, net.params()),
            loss,
        })
    }

    /// Widths of the linear layers, input first.
    pub fn dims(&self) -> &[usize] {
        &self.group.dims
    }

    /// Sets lane `lane`'s parameters (cast to `T`); they must be the pack's network's.
    pub fn set_params(&mut self, lane: usize, params: &Params) -> Result<()> {
        if lane >= LANES {
            return Err(Error::config("lockstep", format!("lane {lane} of {LANES}")));
        }
        let g = &mut self.group;
        if !params.same_tensors(&g.template) {
            return Err(Error::config(
                "lockstep",
                format!(
                    "lane {lane}: parameters of another network than the pack's \
                     (linear widths {:?})",
                    g.dims
                ),
            ));
        }
        for (packed, layer) in g.params.iter_mut().zip(params.iter()) {
            packed.set_lane(lane, layer);
        }
        for (packed, values) in g.others.iter_mut().zip(params.others()) {
            packed[lane] = T::from_f64(values[0]);
        }
        Ok(())
    }

    /// Lane `lane`'s parameters in f64 (exact for both precisions).
    ///
    /// # Panics
    /// When `lane` is not below [`LANES`].
    pub fn params(&self, lane: usize) -> Params {
        assert!(lane < LANES, "lane {lane} of {LANES}");
        let g = &self.group;
        let mut p = g.template.clone();
        for ((dst, l), &b) in p.iter_mut().zip(&g.params).zip(&g.has_bias) {
            *dst = l.unpack(lane, b);
        }
        for (dst, v) in p.others_mut().iter_mut().zip(g.others.iter()) {
            dst[0] = v[lane].to_f64();
        }
        p
    }

    /// Lane `lane`'s minibatch: rows `rows` of `x` (every row of the data set) with their
    /// targets. Every lane's minibatch has the same number of rows (at most the pack's
    /// capacity): the first minibatch loaded after a step fixes it, and a lane loaded with
    /// another number before the next step is refused (lanes never mix).
    pub fn set_batch(
        &mut self,
        lane: usize,
        x: &impl RowSource<T>,
        targets: Targets<'_, T>,
        rows: &[usize],
    ) -> Result<()> {
        self.group.load(Some(lane), x, targets, rows, self.loss)
    }

    /// Every lane's minibatch: the same rows for all (full-batch training).
    pub fn set_batch_all(
        &mut self,
        x: &impl RowSource<T>,
        targets: Targets<'_, T>,
        rows: &[usize],
    ) -> Result<()> {
        self.group.load(None, x, targets, rows, self.loss)
    }

    /// `steps` SGD steps on the lanes' current minibatches, lane `r` at learning rate `lr[r]`:
    /// `p -= lr g` after a forward and backward pass over the minibatch. Returns each lane's
    /// minibatch loss before each step. A lane whose loss is not finite keeps its parameters
    /// from then on (as the single-run engine, which does not take a diverged step).
    pub fn steps(&mut self, lr: [f64; LANES], steps: usize) -> Vec<[f64; LANES]> {
        self.advance(lr, [true; LANES], steps, false)
    }

    /// One step of the lanes where `active` is true, as [`LanePack::steps`]; the other lanes'
    /// contents are left undefined (their runs are elsewhere), so a diverged run parked in an
    /// inactive lane does not slow the others' updates.
    pub fn step_lanes(&mut self, lr: [f64; LANES], active: [bool; LANES]) -> [f64; LANES] {
        self.advance(lr, active, 1, false)[0]
    }

    /// Each lane's loss on its minibatch at its current parameters (the gradients are computed
    /// and left unused).
    pub fn loss(&mut self) -> [f64; LANES] {
        self.advance([0.0; LANES], [true; LANES], 0, true)[0]
    }

    fn advance(
        &mut self,
        lr: [f64; LANES],
        active: [bool; LANES],
        steps: usize,
        final_loss: bool,
    ) -> Vec<[f64; LANES]> {
        self.advance_on(Isa::Best, lr, active, steps, final_loss)
    }

    /// [`LanePack::advance`] on the instruction set `isa` (the best the CPU has when it lacks
    /// `isa`); tests compare them.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn advance_on(
        &mut self,
        isa: Isa,
        lr: [f64; LANES],
        active: [bool; LANES],
        steps: usize,
        final_loss: bool,
    ) -> Vec<[f64; LANES]> {
        self.group.batch_set = false;
        let job = Job {
            group: &mut self.group,
            loss: self.loss,
            lr: lr.map(T::from_f64),
            active,
            steps,
            final_loss,
        };
        // One dispatch for all the steps, so every loop below is compiled for the SIMD
        // instruction set in use: AVX-512 or AVX2+FMA explicitly where the CPU has it, else
        // portable lane loops on the widest set pulp finds. Each lane's arithmetic is the same
        // in all of them (one rounding per operation, FMAs where the engine has them).
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            if let Some(v4) = Avx512::try_new().filter(|_| isa != Isa::Avx2) {
                return v4.vectorize(v3, Train { job, ops: v4 });
            }
            return pulp::Simd::vectorize(v3, Train { job, ops: Avx2(v3) });
        }
        pulp::Arch::new().dispatch(Train { job, ops: Portable })
    }
}

/// Which instruction set a pack steps with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Isa {
    /// The widest the CPU has.
    Best,
    /// AVX2 and FMA even where the CPU has AVX-512.
    #[cfg_attr(not(test), allow(dead_code))]
    Avx2,
}

/// Steps of a pack as one SIMD operation: pulp compiles `with_simd` and everything
/// `#[inline(always)]` under it for each instruction set (a closure would not be inlined, and
/// `mul_add` outside an FMA-enabled function is a call to libm's `fmaf`).
struct Train<'a, T, O> {
    job: Job<'a, T>,
    ops: O,
}

/// What a pack is asked to do, whatever the lane operations.
struct Job<'a, T> {
    group: &'a mut Group<T>,
    loss: Loss,
    lr: Lanes<T>,
    /// The lanes whose runs are in the pack (the others' contents do not matter).
    active: [bool; LANES],
    steps: usize,
    /// Whether to end with the loss at the final parameters.
    final_loss: bool,
}

impl<T: Float, O: LaneOps> pulp::WithSimd for Train<'_, T, O> {
    type Output = Vec<Lanes<f64>>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<Lanes<f64>> {
        let Train {
            job:
                Job {
                    group,
                    loss,
                    lr,
                    active,
                    steps,
                    final_loss,
                },
            ops,
        } = self;
        let mut losses = Vec::with_capacity(steps + 1);
        for _ in 0..steps {
            let value = group.loss_and_grads(ops, loss);
            // A lane whose loss is not finite keeps its parameters, as the single-run engine
            // does not take a diverged step.
            let take = std::array::from_fn(|r| !active[r] || value[r].is_finite());
            group.update(lr, take);
            losses.push(value);
        }
        if final_loss {
            losses.push(group.loss_and_grads(ops, loss));
        }
        losses
    }
}

/// A plain MLP's parameters of widths `dims`, all zero.
fn zeros(dims: &[usize], has_bias: bool) -> Params {
    dims.windows(2)
        .map(|w| LayerParams {
            weight: Matrix::zeros(w[1], w[0]),
            bias: has_bias.then(|| vec![0.0; w[1]]),
        })
        .collect()
}

fn dims_of(p: &Params) -> Vec<usize> {
    let mut d = vec![p[0].weight.cols()];
    d.extend(p.iter().map(|l| l.weight.rows()));
    d
}

/// One module of a pack's network, flattened: a residual block is its body's modules followed
/// by a [`Op::Skip`], so a pass is one loop (a recursive one could not be inlined into the SIMD
/// dispatch). Module `k` reads module `k - 1`'s output (the input for `k = 0`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    /// Linear layer `layer` (its index in the pack's layers): `z = b + x W^T`, `a = f(z)`; the
    /// output is `a` (`z` for the identity). `derived`: the linear layer above applies this
    /// one's `f'(z)` to each band of its delta product as the band is done (the engine applies
    /// it at the start of this layer's backward pass: the same products).
    Linear {
        layer: usize,
        act: Activation,
        derived: bool,
    },
    /// `y = f(x)` on its own.
    Act(Activation),
    /// `y = alpha x`, alpha the pack's other tensor `.0` (a gate).
    Scale(usize),
    /// `y = x + s`, s the pack's other tensor `.0` (a shift).
    Shift(usize),
    /// The end of a residual block: `y = h + x`, `h` the block's input (module `from`'s
    /// output, the network's input for `None`) and `x` its body's output.
    Skip { from: Option<usize> },
}

/// A module of the pack and its buffers, (batch, width) each: `pre` what the output is
/// computed from (a linear layer's `z`, a standalone activation's input), `out` the output
/// (empty when it is `pre`), `delta` dLoss/d(output), then what the backward pass leaves there.
struct Node<T> {
    op: Op,
    width: usize,
    pre: Packs<T>,
    out: Packs<T>,
    delta: Packs<T>,
}

impl<T: Float> Node<T> {
    fn new(op: Op, width: usize, capacity: usize) -> Self {
        let n = capacity * width;
        let (pre, out) = match op {
            Op::Linear {
                act: Activation::Identity,
                ..
            } => (n, 0),
            Op::Linear { .. } | Op::Act(_) => (n, n),
            Op::Scale(_) | Op::Shift(_) | Op::Skip { .. } => (0, n),
        };
        Node {
            op,
            width,
            pre: Packs::zeros(pre),
            out: Packs::zeros(out),
            delta: Packs::zeros(n),
        }
    }

    /// The output's first `rows` rows.
    #[inline(always)]
    fn output(&self, rows: usize) -> &[Lanes<T>] {
        let n = rows * self.width;
        if self.out.is_empty() {
            &self.pre[..n]
        } else {
            &self.out[..n]
        }
    }
}

/// The flat program of a network of modules ([`Op`]) with its widths and tensors, built from
/// the engine's own description of each module ([`Anatomy`]); `None` for a module the pack
/// does not run (norms, dropout).
#[derive(Default)]
struct Program {
    /// Each module and its output width.
    ops: Vec<(Op, usize)>,
    /// Each layer's widths (fan_in, fan_out) and whether it has a bias.
    layers: Vec<(usize, usize, bool)>,
    /// Other tensors (gates, shifts): one scalar each.
    others: usize,
}

impl Program {
    /// A plain MLP of widths `dims`: hidden layers with `act`, the output layer linear.
    fn mlp(dims: &[usize], has_bias: bool, act: Activation) -> Self {
        let layers = dims.len() - 1;
        let mut p = Program::default();
        for l in 0..layers {
            let act = crate::nn::layer_activation(l, layers, act);
            p.linear(dims[l], dims[l + 1], has_bias, act);
        }
        p
    }

    /// Appends the program of `modules` (a network's, or a block body's); `None` when one of
    /// them is not a kind the pack runs.
    fn modules<T: Float>(&mut self, modules: &[Box<dyn Module<T>>]) -> Option<()> {
        for m in modules {
            let width = m.out_width();
            match m.anatomy() {
                Anatomy::Linear {
                    activation,
                    dropout: 0.0,
                    has_bias,
                } => self.linear(m.in_width(), width, has_bias, activation),
                Anatomy::Activation(a) => self.ops.push((Op::Act(a), width)),
                Anatomy::Gate => {
                    self.ops.push((Op::Scale(self.others), width));
                    self.others += 1;
                }
                Anatomy::Shift => {
                    self.ops.push((Op::Shift(self.others), width));
                    self.others += 1;
                }
                Anatomy::Residual(body) => {
                    let from = self.ops.len().checked_sub(1);
                    self.modules(body)?;
                    // The block's input gets the skip's gradient added after the body's first
                    // product: a linear layer there takes its own derivative.
                    if let Some(Op::Linear { derived, .. }) = from.map(|s| &mut self.ops[s].0) {
                        *derived = false;
                    }
                    self.ops.push((Op::Skip { from }, width));
                }
                _ => return None,
            }
        }
        Some(())
    }

    /// Appends a linear layer; the linear layer just before it, if any, has its derivative
    /// taken by this one's product (undone when a block turns out to start there).
    fn linear(&mut self, fan_in: usize, fan_out: usize, has_bias: bool, act: Activation) {
        if let Some((
            Op::Linear {
                act: below,
                derived,
                ..
            },
            _,
        )) = self.ops.last_mut()
        {
            *derived = *below != Activation::Identity;
        }
        self.ops.push((
            Op::Linear {
                layer: self.layers.len(),
                act,
                derived: false,
            },
            fan_out,
        ));
        self.layers.push((fan_in, fan_out, has_bias));
    }
}

/// `LANES` runs of one network packed side by side, with their buffers (sized for `capacity`
/// rows; the current minibatch has `batch`).
struct Group<T> {
    dims: Vec<usize>,
    capacity: usize,
    batch: usize,
    /// A minibatch was loaded since the last step: its size is this step's.
    batch_set: bool,
    input: Packs<T>,         // (batch, dims[0]), each lane its own rows
    labels: Vec<Lanes<u32>>, // (batch), each lane's class labels (cross-entropy)
    dense: Packs<T>,         // (batch, out), each lane's dense targets (MSE, BCE)
    nodes: Vec<Node<T>>,     // the modules, flat ([`Op`])
    /// Module `s`'s delta gets the deltas of these blocks' ends added (inner blocks first)
    /// once the module above `s` has written it: the skips' share of dLoss/d(block input).
    skips_into: Vec<Vec<usize>>,
    params: Vec<PackedLayer<T>>, // layer l at index l - 1, as `Params`
    has_bias: Vec<bool>,         // per layer
    grads: Vec<PackedLayer<T>>,  // dW_l, db_l, shaped as `params`
    others: Packs<T>,            // the scalar tensors outside linear layers, in order
    other_grads: Packs<T>,
    /// The network's tensors (their values unused): what a lane's parameters must match
    /// ([`LanePack::set_params`]) and the structure [`LanePack::params`] fills.
    template: Params,
    row: Vec<T>, // (2 out), one lane's output row and its gradient
}

/// One layer of a pack: [`LayerParams`]' layout with a pack (one value per run) in place of
/// each scalar; also the layer's gradients.
struct PackedLayer<T> {
    weight: Packs<T>, // (fan_out, fan_in)
    bias: Packs<T>,   // (fan_out); zero and never updated without biases
}

impl<T: Float> PackedLayer<T> {
    /// Lane `r` holds `layer`, cast to `T` (a layer without biases: zeros).
    fn set_lane(&mut self, r: usize, layer: &LayerParams) {
        for (p, &w) in self.weight.iter_mut().zip(layer.weight.as_slice()) {
            p[r] = T::from_f64(w);
        }
        for (j, p) in self.bias.iter_mut().enumerate() {
            p[r] = T::from_f64(layer.bias.as_ref().map_or(0.0, |b| b[j]));
        }
    }

    fn zeros(fan_in: usize, fan_out: usize) -> Self {
        PackedLayer {
            weight: Packs::zeros(fan_out * fan_in),
            bias: Packs::zeros(fan_out),
        }
    }

    /// Lane `r` in f64 (exact for both precisions).
    fn unpack(&self, r: usize, has_bias: bool) -> LayerParams {
        let fan_out = self.bias.len();
        LayerParams {
            weight: Matrix::from_vec(
                fan_out,
                self.weight.len() / fan_out,
                self.weight.iter().map(|v| v[r].to_f64()).collect(),
            ),
            bias: has_bias.then(|| self.bias.iter().map(|v| v[r].to_f64()).collect()),
        }
    }
}

/// Packs in one buffer that starts on a cache line. A `Vec<Lanes<T>>` is aligned to `T` only:
/// whether its packs straddled cache lines (two loads for one in the lane GEMM) depended on
/// where the allocator put each buffer, and the allocation order alone moved tiny-moons by 5%.
struct Packs<T> {
    data: Vec<T>,
    /// Scalars of `data` before the first pack.
    start: usize,
    /// Number of packs.
    len: usize,
}

/// Bytes of a cache line, the alignment of every [`Packs`].
const LINE: usize = 64;

impl<T: Float> Packs<T> {
    fn zeros(n: usize) -> Self {
        let pad = LINE / std::mem::size_of::<T>();
        let data = vec![T::ZERO; n * LANES + pad];
        // `min`: align_offset may decline (never for a heap pointer to a float in practice).
        let start = data.as_ptr().align_offset(LINE).min(pad);
        Packs {
            data,
            start,
            len: n,
        }
    }
}

impl<T> std::ops::Deref for Packs<T> {
    type Target = [Lanes<T>];
    #[inline(always)]
    fn deref(&self) -> &[Lanes<T>] {
        pulp::as_arrays::<LANES, T>(&self.data[self.start..self.start + self.len * LANES]).0
    }
}

impl<T> std::ops::DerefMut for Packs<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [Lanes<T>] {
        pulp::as_arrays_mut::<LANES, T>(&mut self.data[self.start..self.start + self.len * LANES]).0
    }
}

impl<T: Float> Group<T> {
    /// Zero parameters and buffers of `program` for minibatches of up to `capacity` rows.
    fn new(program: Program, capacity: usize, template: Params) -> Self {
        let mut dims = vec![program.layers[0].0];
        dims.extend(program.layers.iter().map(|l| l.1));
        let nodes: Vec<Node<T>> = program
            .ops
            .iter()
            .map(|&(op, width)| Node::new(op, width, capacity))
            .collect();
        let mut skips_into = vec![Vec::new(); nodes.len()];
        for (k, n) in nodes.iter().enumerate() {
            if let Op::Skip { from: Some(s) } = n.op {
                skips_into[s].push(k);
            }
        }
        let out = nodes.last().expect("a network has modules").width;
        let packed = || {
            program
                .layers
                .iter()
                .map(|&(i, o, _)| PackedLayer::zeros(i, o))
                .collect()
        };
        Group {
            capacity,
            batch: 0,
            batch_set: false,
            input: Packs::zeros(capacity * dims[0]),
            labels: vec![[0; LANES]; capacity],
            dense: Packs::zeros(capacity * out),
            nodes,
            skips_into,
            params: packed(),
            has_bias: program.layers.iter().map(|l| l.2).collect(),
            grads: packed(),
            others: Packs::zeros(program.others),
            other_grads: Packs::zeros(program.others),
            template,
            row: vec![T::ZERO; 2 * out],
            dims,
        }
    }

    /// The network's output width.
    fn out(&self) -> usize {
        self.nodes.last().expect("a network has modules").width
    }

    /// Loads rows `rows` of `x` and their targets into lane `lane` (every lane when `None`).
    fn load(
        &mut self,
        lane: Option<usize>,
        x: &impl RowSource<T>,
        targets: Targets<'_, T>,
        rows: &[usize],
        loss: Loss,
    ) -> Result<()> {
        let (fan_in, out) = (self.dims[0], self.out());
        let refuse = |what: String| Err(Error::config("lockstep", what));
        // The data set's rows: as many as it has targets.
        let n = match targets {
            Targets::Classes(y) => y.len(),
            Targets::Dense(y) => y.rows(),
        };
        if x.rows() != n {
            return refuse(format!("{} input rows but targets for {n}", x.rows()));
        }
        if x.cols() != fan_in {
            return refuse(format!(
                "inputs have {} columns, the network takes {fan_in}",
                x.cols()
            ));
        }
        if rows.is_empty() || rows.len() > self.capacity {
            return refuse(format!(
                "a minibatch of {} rows (the pack holds 1 to {})",
                rows.len(),
                self.capacity
            ));
        }
        if let Some(&bad) = rows.iter().find(|&&i| i >= n) {
            return refuse(format!("row {bad} of {n} rows"));
        }
        match (loss, targets) {
            (Loss::CrossEntropy, Targets::Classes(y)) => {
                if let Some(&c) = y.iter().find(|&&c| c as usize >= out) {
                    return refuse(format!("class {c} but only {out} outputs"));
                }
            }
            (Loss::Mse | Loss::BceWithLogits, Targets::Dense(y)) if y.cols() == out => {}
            _ => {
                return refuse(format!(
                    "targets do not fit {loss} with {n} rows and {out} outputs"
                ))
            }
        }
        let lanes = match lane {
            Some(r) if r < LANES => r..r + 1,
            Some(r) => return refuse(format!("lane {r} of {LANES}")),
            None => 0..LANES,
        };
        // Lanes share the minibatch size: the first loaded since the last step sets it.
        if self.batch_set && rows.len() != self.batch {
            return refuse(format!(
                "a minibatch of {} rows where this step's others have {}",
                rows.len(),
                self.batch
            ));
        }
        self.batch = rows.len();
        self.batch_set = true;
        for (p, &i) in rows.iter().enumerate() {
            let src = x.row(i);
            for (dst, &v) in self.input[p * fan_in..(p + 1) * fan_in].iter_mut().zip(src) {
                for r in lanes.clone() {
                    dst[r] = v;
                }
            }
            match targets {
                Targets::Classes(y) => {
                    for r in lanes.clone() {
                        self.labels[p][r] = y[i];
                    }
                }
                Targets::Dense(y) => {
                    let src = &y.as_slice()[i * out..(i + 1) * out];
                    for (dst, &v) in self.dense[p * out..(p + 1) * out].iter_mut().zip(src) {
                        for r in lanes.clone() {
                            dst[r] = v;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Forward and backward over each lane's minibatch; returns each lane's loss and leaves the
    /// gradients in `grads` and `other_grads`. Module by module the engine's passes
    /// ([`crate::nn::Net`]): the same formulas in the same order, lane by lane.
    #[inline(always)]
    fn loss_and_grads<O: LaneOps>(&mut self, ops: O, loss: Loss) -> Lanes<f64> {
        let b = self.batch;
        let fused = O::FMA;
        // Forward.
        for k in 0..self.nodes.len() {
            let (before, rest) = self.nodes.split_at_mut(k);
            let Node {
                op,
                width,
                pre,
                out,
                ..
            } = &mut rest[0];
            let n = b * *width;
            let x: &[Lanes<T>] = match before.last() {
                None => &self.input[..b * self.dims[0]],
                Some(below) => below.output(b),
            };
            match *op {
                Op::Linear { layer, act, .. } => {
                    // z = b + x W^T, as a lane GEMM (batch, fan_in) x (fan_in, fan_out).
                    let p = &self.params[layer];
                    let fan_in = p.weight.len() / *width;
                    let x = View::row_major(x, fan_in);
                    let wt = View::row_major(&p.weight, fan_in).t();
                    let z = &mut pre[..n];
                    if act == Activation::Identity {
                        lane_gemm(ops, z, x, wt, Start::Row(&p.bias), ());
                    } else {
                        // a = f(z), a band of rows at a time while the band is in L1, so the
                        // activation's arithmetic overlaps the next band's FMAs.
                        let activate = Activate {
                            act,
                            a: &mut out[..n],
                            fused,
                        };
                        lane_gemm(ops, z, x, wt, Start::Row(&p.bias), activate);
                    }
                }
                Op::Act(act) => {
                    pre[..n].copy_from_slice(x);
                    act.forward_rows_inline(
                        None,
                        pre[..n].as_flattened_mut(),
                        out[..n].as_flattened_mut(),
                        fused,
                    );
                }
                Op::Scale(t) => {
                    let alpha = self.others[t];
                    for (y, x) in out[..n].iter_mut().zip(x) {
                        for r in 0..LANES {
                            y[r] = alpha[r] * x[r];
                        }
                    }
                }
                Op::Shift(t) => {
                    let s = self.others[t];
                    for (y, x) in out[..n].iter_mut().zip(x) {
                        for r in 0..LANES {
                            y[r] = x[r] + s[r];
                        }
                    }
                }
                Op::Skip { from } => {
                    let h = match from {
                        None => &self.input[..n],
                        Some(s) => before[s].output(b),
                    };
                    for ((y, h), x) in out[..n].iter_mut().zip(h).zip(x) {
                        for r in 0..LANES {
                            y[r] = h[r] + x[r];
                        }
                    }
                }
            }
        }
        // Loss and dLoss/d(output).
        let out = self.out();
        let Node {
            pre, out: a, delta, ..
        } = self.nodes.last_mut().expect("a network has modules");
        let logits = if a.is_empty() { &pre[..] } else { &a[..] };
        let value = output_grad(
            loss,
            &logits[..b * out],
            &self.labels[..b],
            &self.dense[..b * out],
            &mut delta[..b * out],
            out,
            &mut self.row,
        );
        // Backward: module k's delta holds dLoss/d(output) on entry; it writes its tensors'
        // gradients and dLoss/d(input) into module k - 1's delta (none for module 0, as the
        // engine computes none for the network's input).
        for k in (0..self.nodes.len()).rev() {
            let (before, rest) = self.nodes.split_at_mut(k);
            let (node, above) = rest.split_first_mut().expect("module k");
            let n = b * node.width;
            let (x, below): (&[Lanes<T>], _) = match before.last_mut() {
                None => (&self.input[..b * self.dims[0]], None),
                Some(Node {
                    op,
                    width,
                    pre,
                    out,
                    delta,
                }) => {
                    let m = b * *width;
                    let x: &[Lanes<T>] = if out.is_empty() { &pre[..m] } else { &out[..m] };
                    (x, Some((*op, &pre[..], &out[..], &mut delta[..m])))
                }
            };
            let d = &mut node.delta[..n];
            match node.op {
                Op::Linear {
                    layer,
                    act,
                    derived,
                } => {
                    if act != Activation::Identity && !derived {
                        act.backward_in_place_inline(
                            node.pre[..n].as_flattened(),
                            node.out[..n].as_flattened(),
                            d.as_flattened_mut(),
                        );
                    }
                    let fan_in = self.params[layer].weight.len() / node.width;
                    let dv = View::row_major(d, node.width);
                    let xv = View::row_major(x, fan_in);
                    // dW = δ^T x: (fan_out, batch) x (batch, fan_in).
                    let g = &mut self.grads[layer];
                    lane_gemm(ops, &mut g.weight, dv.t(), xv, Start::Zero, ());
                    // db = Σ_p δ[p], with adds (the FMA units are the busy ones).
                    if self.has_bias[layer] {
                        column_sums(ops, d, &mut g.bias);
                    }
                    if let Some((below_op, z, a, dx)) = below {
                        // δ W: (batch, fan_out) x (fan_out, fan_in); a linear layer below
                        // whose derivative this product takes gets it a band of rows at a
                        // time, as the forward activation.
                        let w = View::row_major(&self.params[layer].weight, fan_in);
                        match below_op {
                            Op::Linear {
                                act, derived: true, ..
                            } => {
                                let derive = Derive {
                                    act,
                                    z: &z[..dx.len()],
                                    a: &a[..dx.len()],
                                };
                                lane_gemm(ops, dx, dv, w, Start::Zero, derive);
                            }
                            _ => lane_gemm(ops, dx, dv, w, Start::Zero, ()),
                        }
                    }
                }
                Op::Act(act) => {
                    act.backward_in_place_inline(
                        node.pre[..n].as_flattened(),
                        node.out[..n].as_flattened(),
                        d.as_flattened_mut(),
                    );
                    if let Some((_, _, _, dx)) = below {
                        dx.copy_from_slice(d);
                    }
                }
                Op::Scale(t) => {
                    // d alpha = Σ_ij dy_ij x_ij, in the engine's order; dx = alpha dy.
                    let mut g = splat(T::ZERO);
                    for (d, x) in d.iter().zip(x) {
                        for r in 0..LANES {
                            g[r] += d[r] * x[r];
                        }
                    }
                    self.other_grads[t] = g;
                    if let Some((_, _, _, dx)) = below {
                        let alpha = self.others[t];
                        for (o, d) in dx.iter_mut().zip(d.iter()) {
                            for r in 0..LANES {
                                o[r] = alpha[r] * d[r];
                            }
                        }
                    }
                }
                Op::Shift(t) => {
                    // ds = Σ_ij dy_ij; dx = dy.
                    let mut g = splat(T::ZERO);
                    for d in d.iter() {
                        for r in 0..LANES {
                            g[r] += d[r];
                        }
                    }
                    self.other_grads[t] = g;
                    if let Some((_, _, _, dx)) = below {
                        dx.copy_from_slice(d);
                    }
                }
                // The body's last module starts from the block's dy.
                Op::Skip { .. } => {
                    if let Some((_, _, _, dx)) = below {
                        dx.copy_from_slice(d);
                    }
                }
            }
            // Module k - 1's delta is now dLoss/d(its output) through the modules above it;
            // blocks that start there add their dy: dx = dh_0 + dy.
            if let Some(below) = before.last_mut() {
                let m = b * below.width;
                for &j in &self.skips_into[k - 1] {
                    let dy = &above[j - k - 1].delta[..m];
                    for (o, d) in below.delta[..m].iter_mut().zip(dy) {
                        for r in 0..LANES {
                            o[r] += d[r];
                        }
                    }
                }
            }
        }
        value
    }

    /// `p -= lr * g` for every tensor (biases where the layer has them), as torch.optim.SGD,
    /// lane `r` at its own `lr[r]`, the lanes where `take` is false left as they are.
    #[inline(always)]
    fn update(&mut self, lr: Lanes<T>, take: [bool; LANES]) {
        let all = take.iter().all(|&t| t);
        let step = |p: &mut [Lanes<T>], g: &[Lanes<T>]| {
            for (p, g) in p.iter_mut().zip(g) {
                if all {
                    for r in 0..LANES {
                        p[r] -= lr[r] * g[r];
                    }
                } else {
                    for r in (0..LANES).filter(|&r| take[r]) {
                        p[r] -= lr[r] * g[r];
                    }
                }
            }
        };
        for ((p, g), &has_bias) in self.params.iter_mut().zip(&self.grads).zip(&self.has_bias) {
            step(&mut p.weight, &g.weight);
            if has_bias {
                step(&mut p.bias, &g.bias);
            }
        }
        step(&mut self.others, &self.other_grads);
    }
}

/// A matrix of packs: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [Lanes<T>],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    /// `data` as a row-major matrix with `cols` columns.
    fn row_major(data: &'a [Lanes<T>], cols: usize) -> Self {
        View {
            data,
            rows: data.len() / cols,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// Whether element `(r, c)` lies in `data` (its offset computed without overflow).
    fn in_bounds(&self, r: usize, c: usize) -> bool {
        r.checked_mul(self.rs)
            .zip(c.checked_mul(self.cs))
            .and_then(|(x, y)| x.checked_add(y))
            .is_some_and(|o| o < self.data.len())
    }

    /// The transpose (no copy: the strides swap).
    fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// What a product adds to.
#[derive(Clone, Copy)]
enum Start<'a, T> {
    /// `c = a b`.
    Zero,
    /// `c += a b`.
    Current,
    /// `c[i][j] = row[j] + (a b)[i][j]`: a bias added to every row.
    Row(&'a [Lanes<T>]),
}

/// An elementwise epilogue fused into [`lane_gemm`]: `band` is `c[at..at + band.len()]`, whole
/// rows of the product, final, while they are still in L1. A trait with an `#[inline(always)]`
/// method rather than a closure: a closure is not reliably inlined, and out of line it loses
/// the SIMD dispatch's instruction set (measured: 15x slower, with a libm `fmaf` call per FMA).
trait Finish<T> {
    fn finish(&mut self, at: usize, band: &mut [Lanes<T>]);
}

/// No epilogue.
impl<T> Finish<T> for () {
    #[inline(always)]
    fn finish(&mut self, _: usize, _: &mut [Lanes<T>]) {}
}

/// `a = f(z)` for the rows of `z` in the band (forward through a hidden layer).
struct Activate<'a, T> {
    act: Activation,
    a: &'a mut [Lanes<T>],
    /// Whether the code is compiled with FMA ([`LaneOps::FMA`]).
    fused: bool,
}

impl<T: Float> Finish<T> for Activate<'_, T> {
    #[inline(always)]
    fn finish(&mut self, at: usize, z: &mut [Lanes<T>]) {
        let a = &mut self.a[at..at + z.len()];
        self.act
            .forward_rows_inline(None, z.as_flattened_mut(), a.as_flattened_mut(), self.fused);
    }
}

/// `δ ∘= f'(z)` for the rows of `δ` in the band (backward through a hidden layer; `a = f(z)`).
struct Derive<'a, T> {
    act: Activation,
    z: &'a [Lanes<T>],
    a: &'a [Lanes<T>],
}

impl<T: Float> Finish<T> for Derive<'_, T> {
    #[inline(always)]
    fn finish(&mut self, at: usize, d: &mut [Lanes<T>]) {
        let rows = at..at + d.len();
        self.act.backward_in_place_inline(
            self.z[rows.clone()].as_flattened(),
            self.a[rows].as_flattened(),
            d.as_flattened_mut(),
        );
    }
}

/// `c = start + a b` lane by lane: `c[i][j] = start[i][j] + Σ_t a(i, t) ∘ b(t, j)`, with `c`
/// row-major (m, n), `a` (m, k) and `b` (k, n) of any strides; then `finish` on each band of
/// rows as soon as it is final. Every inner product of the engine (forward, weight and input
/// gradients) is this one kernel.
///
/// Register tiles of `MR x NR` outputs: per `t`, `MR + NR` loads feed `MR NR` FMAs into
/// independent accumulators held in registers (a pack of 16 f32 in one of the 32 AVX-512
/// registers: 4 x 4, 8 loads per 16 FMAs; in two of the 16 AVX2 ones: 2 x 3; f64 packs take
/// twice the registers and smaller tiles). The `k` dimension is cut into
/// blocks whose slices of `a` and `b` fit in L1 together, so the weight gradient (k = the
/// batch) reads the batch from L2 once per block instead of once per tile.
#[inline(always)]
fn lane_gemm<T: Float, O: LaneOps>(
    ops: O,
    c: &mut [Lanes<T>],
    a: View<'_, T>,
    b: View<'_, T>,
    start: Start<'_, T>,
    finish: impl Finish<T>,
) {
    debug_assert_eq!(a.cols, b.rows);
    debug_assert_eq!(c.len(), a.rows * b.cols);
    // Registers per pack: 16 lanes of f32 are one AVX-512 register or two AVX2 ones.
    let regs = LANES * std::mem::size_of::<T>() / if O::WIDE { 64 } else { 32 };
    match regs {
        1 => lane_gemm_tiled::<T, 4, 4>(ops, c, a, b, start, finish),
        2 if O::WIDE => lane_gemm_tiled::<T, 3, 3>(ops, c, a, b, start, finish),
        2 => lane_gemm_tiled::<T, 2, 3>(ops, c, a, b, start, finish),
        _ => lane_gemm_tiled::<T, 1, 2>(ops, c, a, b, start, finish),
    }
}

/// Bytes of `a` and `b` that one `k` block may span: half of a 32 KiB L1 data cache.
const K_BLOCK_BYTES: usize = 16 * 1024;

#[inline(always)]
fn lane_gemm_tiled<T: Float, const MR: usize, const NR: usize>(
    ops: impl LaneOps,
    c: &mut [Lanes<T>],
    a: View<'_, T>,
    b: View<'_, T>,
    start: Start<'_, T>,
    mut finish: impl Finish<T>,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let per_t = (m + n) * std::mem::size_of::<Lanes<T>>();
    let kb = (K_BLOCK_BYTES / per_t.max(1)).max(8);
    let mut t0 = 0;
    loop {
        let ts = t0..k.min(t0 + kb);
        let start = if t0 == 0 { start } else { Start::Current };
        let last = ts.end == k;
        let mut i = 0;
        while i < m {
            let rows = if i + MR <= m {
                tile_row::<T, MR, NR>(ops, c, n, i, ts.clone(), a, b, start);
                MR
            } else {
                tile_row::<T, 1, NR>(ops, c, n, i, ts.clone(), a, b, start);
                1
            };
            if last {
                finish.finish(i * n, &mut c[i * n..(i + rows) * n]);
            }
            i += rows;
        }
        if last {
            break;
        }
        t0 += kb;
    }
}

/// `out[j] = Σ_i c[i][j]` for `c` row-major with `out.len()` columns, `NB` columns at a time
/// in registers.
#[inline(always)]
fn column_sums<T: Float>(ops: impl LaneOps, c: &[Lanes<T>], out: &mut [Lanes<T>]) {
    const NB: usize = 8;
    let n = out.len();
    let mut j = 0;
    while j < n {
        let nb = if j + NB <= n { NB } else { 1 };
        if nb == NB {
            sum_columns::<T, NB>(ops, c, n, j, out);
        } else {
            sum_columns::<T, 1>(ops, c, n, j, out);
        }
        j += nb;
    }
}

#[inline(always)]
fn sum_columns<T: Float, const NB: usize>(
    ops: impl LaneOps,
    c: &[Lanes<T>],
    n: usize,
    j: usize,
    out: &mut [Lanes<T>],
) {
    let mut acc = [splat(T::ZERO); NB];
    for row in c.chunks_exact(n) {
        let row: &[Lanes<T>; NB] = row[j..j + NB].try_into().expect("NB columns");
        for (acc, v) in acc.iter_mut().zip(row) {
            *acc = ops.add(*acc, v);
        }
    }
    out[j..j + NB].copy_from_slice(&acc);
}

/// Tiles of `MR` rows from row `i`, across the `n` columns `NR` at a time, then one by one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile_row<T: Float, const MR: usize, const NR: usize>(
    ops: impl LaneOps,
    c: &mut [Lanes<T>],
    n: usize,
    i: usize,
    ts: std::ops::Range<usize>,
    a: View<'_, T>,
    b: View<'_, T>,
    start: Start<'_, T>,
) {
    let mut j = 0;
    while j + NR <= n {
        tile::<T, MR, NR>(ops, c, n, (i, j), ts.clone(), a, b, start);
        j += NR;
    }
    while j < n {
        tile::<T, MR, 1>(ops, c, n, (i, j), ts.clone(), a, b, start);
        j += 1;
    }
}

/// `c[i + r][j + s] (+)= Σ_{t in ts} a(i + r, t) ∘ b(t, j + s)` for `r < MR`, `s < NR`, with
/// the `MR NR` accumulators in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<T: Float, const MR: usize, const NR: usize>(
    ops: impl LaneOps,
    c: &mut [Lanes<T>],
    n: usize,
    (i, j): (usize, usize),
    ts: std::ops::Range<usize>,
    a: View<'_, T>,
    b: View<'_, T>,
    start: Start<'_, T>,
) {
    let mut acc = [[splat(T::ZERO); NR]; MR];
    match start {
        Start::Zero => {}
        Start::Current => {
            for (r, row) in acc.iter_mut().enumerate() {
                row.copy_from_slice(&c[(i + r) * n + j..(i + r) * n + j + NR]);
            }
        }
        Start::Row(bias) => {
            for row in acc.iter_mut() {
                row.copy_from_slice(&bias[j..j + NR]);
            }
        }
    }
    if ts.is_empty() {
        return store(c, n, (i, j), &acc);
    }
    // The largest offset read below, for each operand: strides are non-negative, so these
    // bound every (r, s, t) of the tile, and computed without overflow they bound the loop's.
    let last = ts.end - 1;
    assert!(
        a.in_bounds(i + MR - 1, last) && b.in_bounds(last, j + NR - 1),
        "lane_gemm: tile out of bounds"
    );
    let (pa, pb) = (a.data.as_ptr(), b.data.as_ptr());
    for t in ts {
        // SAFETY: every offset is at most one asserted in bounds above. Unchecked, the loads
        // are plain vmovups with strength-reduced addresses; checked, each cost a multiply, a
        // compare and a branch (profiled with 8-lane 3 x 4 tiles: about 50 instructions per
        // 12 FMAs instead of 25 in the forward loop).
        let mut av = [splat(T::ZERO); MR];
        for (r, v) in av.iter_mut().enumerate() {
            *v = unsafe { *pa.add((i + r) * a.rs + t * a.cs) };
        }
        for s in 0..NR {
            let bv = unsafe { &*pb.add(t * b.rs + (j + s) * b.cs) };
            for (row, x) in acc.iter_mut().zip(&av) {
                row[s] = ops.fma(row[s], x, bv);
            }
        }
    }
    store(c, n, (i, j), &acc);
}

/// Writes a tile's accumulators back to `c`.
#[inline(always)]
fn store<T: Float, const MR: usize, const NR: usize>(
    c: &mut [Lanes<T>],
    n: usize,
    (i, j): (usize, usize),
    acc: &[[Lanes<T>; NR]; MR],
) {
    for (r, row) in acc.iter().enumerate() {
        c[(i + r) * n + j..(i + r) * n + j + NR].copy_from_slice(row);
    }
}

/// The loss of every lane (mean over the batch) and dLoss/dz of the output layer into `delta`,
/// by the formulas of [`Loss::forward_backward`]; `z` and `delta` are (batch, k), `row` holds
/// 2 k scalars.
#[inline(always)]
fn output_grad<T: Float>(
    loss: Loss,
    z: &[Lanes<T>],
    labels: &[Lanes<u32>],
    dense: &[Lanes<T>],
    delta: &mut [Lanes<T>],
    k: usize,
    row: &mut [T],
) -> Lanes<f64> {
    match loss {
        // A constant loss per arm: its formulas' match is resolved outside the loop.
        Loss::Mse => elementwise(Loss::Mse, z, dense, delta),
        Loss::BceWithLogits => elementwise(Loss::BceWithLogits, z, dense, delta),
        Loss::CrossEntropy => {
            // A lane's row of logits is strided across the packs: it is gathered into `row`,
            // and its gradient scattered back.
            let batch = z.len() / k;
            let inv_b = T::from_f64(1.0 / batch as f64);
            let (zs, gs) = row.split_at_mut(k);
            let mut total = [0.0f64; LANES];
            for (p, label) in labels.iter().enumerate() {
                let (zr, dr) = (&z[p * k..(p + 1) * k], &mut delta[p * k..(p + 1) * k]);
                for (r, total) in total.iter_mut().enumerate() {
                    for (s, v) in zs.iter_mut().zip(zr) {
                        *s = v[r];
                    }
                    let value = cross_entropy_row(zs, label[r] as usize, Some((&mut *gs, inv_b)));
                    *total += value.to_f64();
                    for (d, &g) in dr.iter_mut().zip(gs.iter()) {
                        d[r] = g;
                    }
                }
            }
            total.map(|t| t / batch as f64)
        }
    }
}

/// [`output_grad`] of an elementwise loss: the mean of [`Loss::term`] over the batch and the
/// outputs, lane by lane, and [`Loss::term_grad`]; `y` is (batch, k), each lane's targets.
#[inline(always)]
fn elementwise<T: Float>(
    loss: Loss,
    z: &[Lanes<T>],
    y: &[Lanes<T>],
    delta: &mut [Lanes<T>],
) -> Lanes<f64> {
    let n = z.len();
    let scale = loss.grad_scale::<T>(n);
    let mut total = [0.0f64; LANES];
    for ((zv, dv), t) in z.iter().zip(delta.iter_mut()).zip(y) {
        for r in 0..LANES {
            total[r] += loss.term(zv[r], t[r]).to_f64();
            dv[r] = loss.term_grad(zv[r], t[r], scale);
        }
    }
    total.map(|t| t / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::nn::{init_params, LayerInits};

    /// Each lane's parameters and losses after 25 steps of a 3-7-12-9-K network (K = 3 for
    /// cross-entropy, else 1) on its own rows of one data set, stepped on `isa`.
    fn trained<T: Float>(isa: Isa, act: Activation, loss: Loss) -> Vec<(Params, Vec<f64>)> {
        let (n, batch) = (60, 20);
        let k = if loss == Loss::CrossEntropy { 3 } else { 1 };
        let dims = [3, 7, 12, 9, k];
        let x = Matrix::<T>::from_vec(
            n,
            3,
            (0..3 * n)
                .map(|i| T::from_f64((i as f64 * 0.37).sin() * 1.5))
                .collect(),
        );
        let classes: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let values =
            Matrix::<T>::from_vec(n, 1, (0..n).map(|i| T::from_f64((i % 2) as f64)).collect());
        let mut pack = LanePack::<T>::new(&dims, true, act, loss, batch);
        let inits = vec![
            LayerInits {
                weight: Init::Pytorch,
                bias: Init::Pytorch
            };
            dims.len() - 1
        ];
        for lane in 0..LANES {
            pack.set_params(lane, &init_params(&dims, &inits, true, lane as u64, act))
                .unwrap();
        }
        let lr = std::array::from_fn(|r| 0.05 + 0.01 * r as f64);
        let mut losses = vec![Vec::new(); LANES];
        for step in 0..25 {
            for lane in 0..LANES {
                let rows: Vec<usize> = (0..batch).map(|p| (step * 7 + p * 3 + lane) % n).collect();
                let targets = match loss {
                    Loss::CrossEntropy => Targets::Classes(&classes),
                    _ => Targets::Dense(&values),
                };
                pack.set_batch(lane, &x, targets, &rows).unwrap();
            }
            let l = pack.advance_on(isa, lr, [true; LANES], 1, false);
            for (lane, losses) in losses.iter_mut().enumerate() {
                losses.push(l[0][lane]);
            }
        }
        losses
            .into_iter()
            .enumerate()
            .map(|(lane, l)| (pack.params(lane), l))
            .collect()
    }

    /// The lanes' arithmetic is the same on every instruction set with FMA: AVX-512 packs and
    /// AVX2 packs end with the same bits (so do runs alone: `small` sums in the lanes' order).
    /// Where the CPU lacks AVX-512, both train on AVX2 and the test compares nothing new.
    #[test]
    fn avx512_and_avx2_packs_agree_bit_for_bit() {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Gelu,
            Activation::Silu,
            Activation::Softplus,
        ] {
            for loss in [Loss::CrossEntropy, Loss::BceWithLogits, Loss::Mse] {
                agree::<f32>(act, loss);
                agree::<f64>(act, loss);
            }
        }
    }

    /// Asserts that the lanes end with the same bits on the best instruction set as on AVX2.
    fn agree<T: Float>(act: Activation, loss: Loss) {
        let wide = trained::<T>(Isa::Best, act, loss);
        let narrow = trained::<T>(Isa::Avx2, act, loss);
        // As text: `==` would take -0.0 for +0.0 (`max` may return either zero).
        let what = format!("{} {act:?} {loss:?}", T::NAME);
        assert_eq!(format!("{wide:?}"), format!("{narrow:?}"), "{what}");
        assert!(
            wide.iter().all(|(_, l)| l.iter().all(|v| v.is_finite())),
            "{what}"
        );
    }
}
