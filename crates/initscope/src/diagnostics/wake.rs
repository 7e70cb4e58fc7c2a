//! Wake-up steps: the first training step at which each parameter tensor's gradient can be
//! nonzero, predicted from the network's zero pattern ([`predict`]), measured over a run
//! ([`WakeMeasure`]), and the two compared ([`compare`]). Steps count from 0 (the gradient at the
//! initialization).
//!
//! # The prediction: abstract interpretation over steps
//!
//! At step t every parameter tensor is in an abstract state: whether it has moved (some earlier
//! gradient was nonzero, so its values are no longer the initial ones), whether every entry is
//! exactly 0, whether its entries are all equal (a vector), its rows all equal (`W = 1 w^T`: every
//! output unit computes the same thing) or each row constant (`W = v 1^T`: the input units are
//! interchangeable). Step 0 reads the actual numbers; a tensor that has not moved still holds them
//! at every later step when the optimizer has no weight decay. Weight decay shrinks a tensor
//! whose gradient is 0 (coupled decay under Adam or RMSprop by about lr per entry, towards 0, not
//! in proportion), which keeps zeros zero and equal entries equal but can change signs that a
//! rule read (the negative bias that holds a relu dead); with decay, the other numbers are read
//! at step 0 only. A tensor whose gradient can be nonzero at step t has moved from step t + 1
//! on and is from then on generic (nonzero, no equalities) except for the equalities every gradient
//! so far had: an elementwise optimizer (SGD, momentum, Adam, weight decay: every one of
//! `crate::optim`) keeps equal entries equal when their gradients are equal, and a zero gradient
//! leaves a tensor as it is (up to weight decay, see below).
//!
//! One step is a forward and a backward pass on these states. Every value (a module's output,
//! `(batch, width)`) carries: its row when every row of the batch is the same known row
//! (it depends only on unmoved tensors), and whether its rows are all equal ("equal across the
//! batch", the output does not depend on the input row) and whether each row's units are equal
//! ("equal across the units"). Zero is the known row 0. Every delta (dLoss/d(value)) carries:
//! zero, equal across the units, equal across the batch, its columns summing to 0 over the batch
//! and its rows summing to 0 over the units. "Nonzero" always means generically nonzero: a rule
//! concludes zero only from an identity that holds for every input and every value of the moved
//! tensors, so the prediction errs only towards waking early; an exact cancellation in a
//! particular data set (balanced classes with a full batch) is the measurement's business.
//! The data is generic (its rows differ, its units differ, the batch has 2 rows or more); the
//! loss delta at the output is generically nonzero, and for cross-entropy its rows sum to 0
//! (softmax minus one-hot). A width-1 value is equal across its units.
//!
//! The rules per module kind ([`Anatomy`]); `x` is the input, `y` the output, `dy` the delta
//! arriving, `dx` the delta passed down:
//!
//! ```text
//! linear    z = x W^T + b      W zero or x zero: z = b for every row (known when b unmoved;
//!                              equal across units when b is); else equal across the batch when
//!                              x is, across the units when W's rows are equal and b uniform
//!           dW = dz^T x        zero when dz or x is zero, or dz's columns sum to 0 and x is
//!                              equal across the batch (dW = (Σ_r dz_r)^T x_0); rows equal when
//!                              dz is equal across units, each row constant when x is
//!           db = Σ_r dz        zero when dz is zero or its columns sum to 0; uniform when dz is
//!                              equal across units
//!           dx = dz W          zero when dz or W is zero, or dz's rows sum to 0 and W's rows are
//!                              equal; equal across units when each row of W is constant
//! activation a = f(z)          known rows map through f (f(0) = 0 for tanh, relu, gelu, ...;
//!                              sigmoid(0) = 1/2, softplus(0) = ln 2); equalities kept
//!           dz = dy ⊙ f'(z)    zero when dy is, or z is a known row on which f' is 0 everywhere
//!                              (relu'(0) = 0, PyTorch's convention; relu of a negative bias);
//!                              equalities and zero sums kept where f'(z) has the same equality
//! dropout   y = x ⊙ m          zero stays zero; anything else loses every equality (the masks
//!                              are per entry), both ways
//! layernorm y = γ x̂ + β        x equal across units: x - mean = 0, x̂ = 0, y = β (0 without
//!                              affine); γ zero: y = β
//!           dx = rstd (g - mean_j g - x̂ mean_j(g x̂)),  g = dy ⊙ γ: zero when g is zero or equal
//!                              across units (the map kills 1 because mean_j x̂ = 0; with x̂ = 0
//!                              it is (γ/sqrt(eps))(I - 11^T/n)); its rows always sum to 0
//!           dγ = Σ_r dy ⊙ x̂    zero when dy is zero, x̂ = 0, or dy's columns sum to 0 and x is
//!                              equal across the batch
//!           dβ = Σ_r dy        zero when dy is zero or its columns sum to 0
//! rmsnorm   y = γ x / rms(x)   x zero or γ zero: y = 0
//!           dx = rstd (g - x̂ mean_j(g x̂))  zero when g = dy ⊙ γ is zero (x = 0 gives g/sqrt(eps))
//!           dγ = Σ_r dy ⊙ x̂    zero when dy or x is zero, or dy's columns sum to 0 and x is equal
//!                              across the batch
//! batchnorm y = γ x̂ + β        x equal across the batch: x̂ = 0, y = β; γ zero: y = β
//!           dx = γ rstd (dy - mean_r dy - x̂ mean_r(dy x̂))  zero when dy is zero or equal across
//!                              the batch, or γ is zero; its columns always sum to 0
//!           dγ = Σ_r dy ⊙ x̂    zero when dy is zero or equal across the batch, or x̂ = 0
//!           dβ = Σ_r dy        zero when dy is zero or its columns sum to 0
//! residual  y = x + F(x)       zero when both are; dx = dy + (delta through F)
//! gate      y = α x            α zero: y = 0 and dx = 0; dα = Σ dy ⊙ x zero when dy or x is
//!                              zero, or a zero sum of dy meets an equality of x
//! shift     y = x + s          dx = dy; ds = Σ dy zero when dy is zero or sums to 0 either way
//! ```
//! Values through a norm are no longer known rows unless they are β (their exact numbers are not
//! needed for any rule). The states only lose properties (a tensor moves once; an equality, once
//! lost, is lost), so after at most 4 changes per tensor a step repeats its predecessor's states:
//! that fixed point ends the prediction, and a tensor not awake by then never wakes.
//!
//! # The measurement
//!
//! [`WakeMeasure::observe`] looks at each step's backprop gradients (before any added noise,
//! clipping or weight decay) and records per tensor the first step with a nonzero entry, and the
//! first with an entry above the rounding floor: u^(1/3) of the run's precision (4.8e-6 in f64,
//! 3.9e-3 in f32; [`residue_floor`]) times the step's largest gradient entry over all tensors. An
//! identity that holds in exact arithmetic can leave rounding residues in floating point (a bias
//! before a batchnorm: its gradient sums a delta whose columns sum to 0; a layernorm of equal units
//! amplifies its input's rounding by 1/sqrt(eps), 316 for eps 1e-5, an rmsnorm of zeros by 6.7e7
//! with its default eps), and [`compare`] says so instead of calling the rules wrong. An optimizer
//! that normalises its step by the gradient's size (Adam, RMSprop) turns such a residue into a full
//! step, after which other tensors can get clear gradients the exact-arithmetic prediction puts
//! later: [`compare`] names the residue that came first ([`MismatchCause::Cascade`]). Only a clear
//! gradient before its predicted step with no earlier residue anywhere is a wrong rule
//! ([`MismatchCause::RuleGap`]).

use crate::activation::Activation;
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::nn::{Anatomy, Module, Net};
use crate::optim::OptimConfig;
use crate::scalar::Float;

/// The predicted wake-up step of every parameter tensor ([`predict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WakePrediction {
    /// Per tensor, in `state_dict` order ([`Net::param_infos`]): the first step whose gradient
    /// can be nonzero, or `None`: zero at every step in exact arithmetic.
    pub wake: Vec<Option<usize>>,
    /// The step whose abstract states every later step repeats (the fixed point).
    pub fixed_point: usize,
}

/// Predicts, for every parameter tensor of `net` (its modules and current values as the
/// initialization) trained on `loss` by `optim`, the first step whose gradient can be nonzero.
/// The rules are in the module documentation; the optimizer matters only through its weight
/// decay.
pub fn predict<T: Float>(net: &Net<T>, loss: Loss, optim: &OptimConfig) -> WakePrediction {
    let infos = net.param_infos();
    let init: Vec<Vec<f64>> = (0..infos.len())
        .map(|k| net.param_values(k).iter().map(|v| v.to_f64()).collect())
        .collect();
    let mut states: Vec<TensorState> = infos
        .iter()
        .zip(&init)
        .map(|(info, v)| TensorState {
            moved: false,
            pattern: Pattern::of(v, &info.dims),
        })
        .collect();
    let mut wake = vec![None; infos.len()];
    // Each state change flips at least one of a tensor's four monotone flags (moved with zero,
    // uniform, rows equal, rows constant), so the states repeat within 4n + 1 steps.
    let limit = 4 * infos.len() + 1;
    for t in 0..=limit {
        let exact = t == 0 || optim.weight_decay == 0.0;
        let grads = Step::run(net, &states, &init, exact, loss);
        for (w, g) in wake.iter_mut().zip(&grads) {
            if w.is_none() && !g.zero {
                *w = Some(t);
            }
        }
        let next: Vec<TensorState> = states.iter().zip(&grads).map(|(s, g)| s.after(g)).collect();
        if next == states {
            return WakePrediction {
                wake,
                fixed_point: t,
            };
        }
        states = next;
    }
    unreachable!("the abstract states only lose properties, so they repeat within {limit} steps")
}

/// The measured wake-up of every parameter tensor over a run: call [`WakeMeasure::observe`] at
/// every step with the backprop gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct WakeMeasure {
    /// Per tensor, in `state_dict` order: the first step whose gradient had a nonzero entry.
    pub nonzero: Vec<Option<usize>>,
    /// Per tensor: the first step whose gradient had an entry above the rounding floor
    /// ([`residue_floor`] times that step's largest gradient entry over every tensor).
    pub clear: Vec<Option<usize>>,
    /// Per tensor: the largest |entry| relative to its step's largest gradient entry, over the
    /// steps before `clear` whose gradient was nonzero (rounding residues); 0 when none.
    pub residue: Vec<f64>,
    /// The number of steps observed (the last observed step + 1).
    pub steps: usize,
}

/// The rounding floor of precision `T`, relative to a step's largest gradient entry: u^(1/3)
/// for the unit roundoff u, 4.8e-6 in f64 and 3.9e-3 in f32. A residue of an exact identity is
/// a few roundings (u) amplified by a norm's 1/sqrt(eps) where its units are equal or zero; eps
/// can be as small as the machine epsilon 2u (rmsnorm's default), which makes the residue about
/// sqrt(u) (1.7e-9 measured in f64), still u^(-1/6) (about 460 in f64) below the floor.
pub fn residue_floor<T: Float>() -> f64 {
    T::UNIT_ROUNDOFF.cbrt()
}

impl WakeMeasure {
    /// A measure for `tensors` parameter tensors, nothing observed yet.
    pub fn new(tensors: usize) -> Self {
        WakeMeasure {
            nonzero: vec![None; tensors],
            clear: vec![None; tensors],
            residue: vec![0.0; tensors],
            steps: 0,
        }
    }

    /// Looks at the backprop gradients of `step` (before any added noise, clipping or weight
    /// decay): `grads` is the workspace's, one per tensor of `net`.
    pub fn observe<T: Float>(&mut self, step: usize, net: &Net<T>, grads: &[Matrix<T>]) {
        assert_eq!(
            grads.len(),
            net.param_infos().len(),
            "one gradient per tensor"
        );
        assert_eq!(grads.len(), self.nonzero.len(), "the network measured");
        let largest = |g: &Matrix<T>| {
            g.as_slice()
                .iter()
                .fold(0.0f64, |m, v| m.max(v.to_f64().abs()))
        };
        let scale = grads.iter().map(largest).fold(0.0, f64::max);
        let floor = residue_floor::<T>() * scale;
        for (k, g) in grads.iter().enumerate() {
            let m = largest(g);
            if m == 0.0 {
                continue;
            }
            self.nonzero[k].get_or_insert(step);
            if m > floor {
                self.clear[k].get_or_insert(step);
            } else if self.clear[k].is_none() {
                self.residue[k] = self.residue[k].max(m / scale);
            }
        }
        self.steps = self.steps.max(step + 1);
    }

    /// Whether every tensor has had a clear gradient (later steps change nothing).
    pub fn all_awake(&self) -> bool {
        self.clear.iter().all(Option::is_some)
    }

    /// Whether nothing is left to measure at `step`: every tensor has had a clear gradient or is
    /// predicted never to wake (its gradient is 0 in exact arithmetic at every step) and `step`
    /// is past the prediction's fixed point. Training stops measuring then (and may fuse its
    /// update into the backward pass): a rounding residue of a never-waking tensor after that
    /// step goes unrecorded.
    pub fn settled(&self, predicted: &WakePrediction, step: usize) -> bool {
        self.clear
            .iter()
            .zip(&predicted.wake)
            .all(|(c, p)| c.is_some() || (p.is_none() && step > predicted.fixed_point))
    }
}

/// A tensor whose measured wake-up differs from the prediction ([`compare`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WakeMismatch {
    /// The tensor's index in `state_dict` order.
    pub tensor: usize,
    /// Its `state_dict` key.
    pub name: String,
    pub predicted: Option<usize>,
    /// The first step with a nonzero entry ([`WakeMeasure::nonzero`]).
    pub measured: Option<usize>,
    /// The steps observed.
    pub steps: usize,
    pub cause: MismatchCause,
}

/// Why a measured wake-up differs from the predicted one.
#[derive(Clone, Debug, PartialEq)]
pub enum MismatchCause {
    /// Measured later than predicted, or never: the gradient was exactly zero where it is
    /// generically nonzero (an exact cancellation in this data, or, under weight decay, values
    /// the prediction reads at step 0 only).
    ExactZero,
    /// Measured earlier than predicted, but only with entries below the rounding floor: zero in
    /// exact arithmetic. `relative`: the largest residue relative to its step's largest entry.
    Residue { relative: f64 },
    /// Measured earlier than predicted with a clear gradient, after another tensor's gradient
    /// was a rounding residue at an earlier step (`source` at `step`, the first such): the
    /// optimizer moved that tensor off its exact-arithmetic path (an update normalised by the
    /// gradient's size, Adam's or RMSprop's, turns a residue of 1e-17 into a full step), so the
    /// run no longer follows the prediction's arithmetic.
    Cascade { source: String, step: usize },
    /// Measured earlier than predicted with a clear gradient, before any residue elsewhere: a
    /// rule of [`predict`] is wrong.
    RuleGap,
}

impl WakeMismatch {
    /// One sentence saying what differs and why.
    pub fn sentence(&self) -> String {
        let name = &self.name;
        let predicted = match self.predicted {
            Some(s) => format!("predicted to wake at step {s}"),
            None => "predicted never to wake".to_string(),
        };
        let measured = match self.measured {
            Some(s) => format!("at step {s}"),
            None => format!("never in {} steps", self.steps),
        };
        match &self.cause {
            MismatchCause::ExactZero => format!(
                "{name}: {predicted}, woke {measured}: the gradient was exactly zero though \
                 generically nonzero, through signs or cancellations the rules do not track (in \
                 this data, e.g. ReLU units negative on every input, balanced classes with a full \
                 batch or outputs that already fit the mean; under weight decay, initial values \
                 the prediction reads at step 0 only; explain's step-0 derivation names the zero \
                 factor)"
            ),
            MismatchCause::Residue { relative } => format!(
                "{name}: {predicted}, nonzero {measured} but only by rounding residues (at most \
                 {relative:.1e} of the step's largest gradient entry): zero in exact arithmetic"
            ),
            MismatchCause::Cascade { source, step } if source == name => format!(
                "{name}: {predicted}, nonzero {measured}: a rounding residue (its gradient at \
                 step {step} is zero in exact arithmetic but was not in the run) that grew into a \
                 clear gradient"
            ),
            MismatchCause::Cascade { source, step } => format!(
                "{name}: {predicted}, woke {measured} with a clear gradient after rounding \
                 residues moved other tensors ({source}'s gradient at step {step} is zero in exact \
                 arithmetic but was not in the run; an optimizer that normalises its step, like \
                 Adam, turns such a residue into a full step)"
            ),
            MismatchCause::RuleGap => format!(
                "{name}: {predicted}, woke {measured} with a clear gradient: a rule of the \
                 wake-up prediction is wrong (a bug; please report it)"
            ),
        }
    }
}

/// The tensors of `net` whose measured wake-up differs from the predicted one, within the
/// steps observed (a prediction past them is not a difference).
pub fn compare<T: Float>(
    net: &Net<T>,
    predicted: &WakePrediction,
    measured: &WakeMeasure,
) -> Vec<WakeMismatch> {
    let steps = measured.steps;
    let infos = net.param_infos();
    assert_eq!(predicted.wake.len(), infos.len(), "the network predicted");
    assert_eq!(measured.nonzero.len(), infos.len(), "the network measured");
    // Each tensor's step window before its predicted wake-up (all steps when never).
    let predicted_in = |k: usize| predicted.wake[k].filter(|&p| p < steps);
    let before = |k: usize, s: usize| predicted_in(k).is_none_or(|p| s < p);
    // The first rounding residue anywhere: a gradient nonzero before its predicted step, and
    // below the floor there.
    let first_residue = (0..infos.len())
        .filter_map(|j| {
            let s = measured.nonzero[j]?;
            (before(j, s) && measured.clear[j] != Some(s)).then_some((s, j))
        })
        .min();
    let mut out = Vec::new();
    for (k, info) in infos.iter().enumerate() {
        let p = predicted_in(k);
        let m = measured.nonzero[k];
        let cause = match m {
            _ if m == p => continue,
            Some(s) if before(k, s) => match measured.clear[k].filter(|&c| before(k, c)) {
                None => MismatchCause::Residue {
                    relative: measured.residue[k],
                },
                Some(c) => match first_residue {
                    Some((step, j)) if step < c => MismatchCause::Cascade {
                        source: infos[j].name.clone(),
                        step,
                    },
                    _ => MismatchCause::RuleGap,
                },
            },
            _ => MismatchCause::ExactZero,
        };
        out.push(WakeMismatch {
            tensor: k,
            name: info.name.clone(),
            predicted: predicted.wake[k],
            measured: m,
            steps,
            cause,
        });
    }
    out
}

/// What is known of a tensor's entries, or of a gradient's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pattern {
    /// Every entry exactly 0.
    zero: bool,
    /// Every entry equal.
    uniform: bool,
    /// A matrix whose rows are all the same (`W = 1 w^T`); a vector: `uniform`.
    rows_equal: bool,
    /// A matrix whose every row is constant (`W = v 1^T`); a vector: `uniform`.
    rows_constant: bool,
}

impl Pattern {
    const ZERO: Pattern = Pattern {
        zero: true,
        uniform: true,
        rows_equal: true,
        rows_constant: true,
    };

    /// The pattern of `values` (flat, row-major) shaped `dims`.
    fn of(values: &[f64], dims: &[usize]) -> Self {
        let all_equal = |v: &[f64]| v.windows(2).all(|w| w[0] == w[1]);
        let uniform = all_equal(values);
        let (rows_equal, rows_constant) = match dims {
            [_, cols] if *cols > 0 => {
                let first = &values[..*cols];
                (
                    values.chunks(*cols).all(|r| r == first),
                    values.chunks(*cols).all(all_equal),
                )
            }
            _ => (uniform, uniform),
        };
        Pattern {
            zero: values.iter().all(|&v| v == 0.0),
            uniform,
            rows_equal,
            rows_constant,
        }
    }

    /// A nonzero matrix gradient with the given equalities.
    fn matrix(rows_equal: bool, rows_constant: bool) -> Self {
        Pattern {
            zero: false,
            uniform: rows_equal && rows_constant,
            rows_equal,
            rows_constant,
        }
    }

    /// A nonzero vector (or scalar) gradient.
    fn vector(uniform: bool) -> Self {
        Pattern {
            zero: false,
            uniform,
            rows_equal: uniform,
            rows_constant: uniform,
        }
    }
}

/// A parameter tensor's abstract state at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TensorState {
    /// Some earlier gradient was nonzero: the values are no longer the initial ones.
    moved: bool,
    pattern: Pattern,
}

impl TensorState {
    /// The state after a step whose gradient has pattern `g`: unchanged when `g` is zero, else
    /// moved, generically nonzero, keeping the equalities both have.
    fn after(self, g: &Pattern) -> Self {
        if g.zero {
            return self;
        }
        let p = self.pattern;
        TensorState {
            moved: true,
            pattern: Pattern {
                zero: false,
                uniform: p.uniform && g.uniform,
                rows_equal: p.rows_equal && g.rows_equal,
                rows_constant: p.rows_constant && g.rows_constant,
            },
        }
    }
}

/// What is known of a value, `(batch, width)`, at one step.
#[derive(Clone, Debug, PartialEq)]
struct Value {
    /// The row every row of the batch equals, known exactly (computed from unmoved tensors).
    row: Option<Vec<f64>>,
    /// Every row of the batch is the same.
    same_rows: bool,
    /// Within each row every unit holds the same number.
    same_units: bool,
}

impl Value {
    /// The data: rows and units differ (a width-1 value is equal across its units).
    fn data(width: usize) -> Self {
        Value {
            row: None,
            same_rows: false,
            same_units: width == 1,
        }
    }

    fn known(row: Vec<f64>) -> Self {
        Value {
            same_units: row.windows(2).all(|w| w[0] == w[1]),
            row: Some(row),
            same_rows: true,
        }
    }

    fn zeros(width: usize) -> Self {
        Value::known(vec![0.0; width])
    }

    fn is_zero(&self) -> bool {
        self.row
            .as_ref()
            .is_some_and(|r| r.iter().all(|&v| v == 0.0))
    }

    /// An unknown value with the given equalities.
    fn unknown(same_rows: bool, same_units: bool, width: usize) -> Self {
        Value {
            row: None,
            same_rows,
            same_units: same_units || width == 1,
        }
    }
}

/// What is known of a delta, `(batch, width)`, at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Delta {
    zero: bool,
    /// Within each row every unit holds the same number.
    same_units: bool,
    /// Every row of the batch is the same.
    same_rows: bool,
    /// Every column sums to 0 over the batch.
    batch_sums_zero: bool,
    /// Every row sums to 0 over its units.
    unit_sums_zero: bool,
}

impl Delta {
    const ZERO: Delta = Delta {
        zero: true,
        same_units: true,
        same_rows: true,
        batch_sums_zero: true,
        unit_sums_zero: true,
    };

    /// A nonzero delta with the given properties, normalised for `width` (one unit is equal
    /// across its units, and a width-1 row that sums to 0 is 0).
    fn nonzero(
        same_units: bool,
        same_rows: bool,
        batch_sums_zero: bool,
        unit_sums_zero: bool,
        width: usize,
    ) -> Self {
        if width == 1 && unit_sums_zero {
            return Delta::ZERO;
        }
        Delta {
            zero: false,
            same_units: same_units || width == 1,
            same_rows,
            batch_sums_zero,
            unit_sums_zero,
        }
    }

    /// `a + b`.
    fn add(a: Delta, b: Delta) -> Delta {
        if a.zero {
            return b;
        }
        if b.zero {
            return a;
        }
        Delta {
            zero: false,
            same_units: a.same_units && b.same_units,
            same_rows: a.same_rows && b.same_rows,
            batch_sums_zero: a.batch_sums_zero && b.batch_sums_zero,
            unit_sums_zero: a.unit_sums_zero && b.unit_sums_zero,
        }
    }
}

/// What is known of f'(z) for an activation f on a value z.
struct Slope {
    zero: bool,
    same_units: bool,
    same_rows: bool,
}

impl Slope {
    fn of(f: Activation, z: &Value) -> Self {
        if f == Activation::Identity {
            return Slope {
                zero: false,
                same_units: true,
                same_rows: true,
            };
        }
        match &z.row {
            Some(row) => {
                let d: Vec<f64> = row.iter().map(|&z| f.df(z, f.f(z))).collect();
                Slope {
                    zero: d.iter().all(|&v| v == 0.0),
                    same_units: d.windows(2).all(|w| w[0] == w[1]),
                    same_rows: true,
                }
            }
            None => Slope {
                zero: false,
                same_units: z.same_units,
                same_rows: z.same_rows,
            },
        }
    }

    /// `dy ⊙ f'(z)`, width `width`.
    fn times(&self, dy: Delta, width: usize) -> Delta {
        if dy.zero || self.zero {
            return Delta::ZERO;
        }
        Delta::nonzero(
            dy.same_units && self.same_units,
            dy.same_rows && self.same_rows,
            dy.batch_sums_zero && self.same_rows,
            dy.unit_sums_zero && self.same_units,
            width,
        )
    }
}

/// What the forward pass saw at one module, for its backward pass.
struct Trace {
    /// The module's first tensor (its index in the network's `state_dict` order).
    first: usize,
    input: Value,
    /// A linear layer's `z`.
    pre: Option<Value>,
    /// A block's body.
    body: Vec<Trace>,
}

/// One abstract training step: the forward pass on the tensors' states, then the backward pass
/// writing each tensor's gradient pattern.
struct Step<'a> {
    states: &'a [TensorState],
    init: &'a [Vec<f64>],
    /// Whether the initial values of unmoved tensors are still exact (step 0, or no decay).
    exact: bool,
    grads: Vec<Pattern>,
}

impl<'a> Step<'a> {
    /// Every tensor's gradient pattern at a step whose tensors are in `states`.
    fn run<T: Float>(
        net: &Net<T>,
        states: &'a [TensorState],
        init: &'a [Vec<f64>],
        exact: bool,
        loss: Loss,
    ) -> Vec<Pattern> {
        let mut step = Step {
            states,
            init,
            exact,
            grads: vec![Pattern::ZERO; states.len()],
        };
        let modules = net.modules();
        let x = Value::data(modules[0].in_width());
        let (traces, _) = step.forward_seq(modules, 0, x);
        let width = modules[modules.len() - 1].out_width();
        // Generic data: the loss delta is nonzero; cross-entropy's rows sum to 0.
        let d_logits = Delta::nonzero(false, false, false, loss == Loss::CrossEntropy, width);
        step.backward_seq(modules, &traces, d_logits);
        step.grads
    }

    fn state(&self, k: usize) -> Pattern {
        self.states[k].pattern
    }

    /// Tensor `k`'s values when they are known: its zeros (a zero tensor has not moved, and
    /// weight decay keeps zeros), or the initial values of a tensor that has not moved while
    /// they are exact.
    fn known(&self, k: usize) -> Option<&'a [f64]> {
        let s = self.states[k];
        (s.pattern.zero || (!s.moved && self.exact)).then(|| self.init[k].as_slice())
    }

    /// The value whose every row is tensor `k` (`None`: 0), `width` wide: a norm's β.
    fn constant(&self, k: Option<usize>, width: usize) -> Value {
        match k {
            None => Value::zeros(width),
            Some(k) => match self.known(k) {
                Some(v) => Value::known(v.to_vec()),
                None => Value::unknown(true, self.state(k).uniform, width),
            },
        }
    }

    /// The forward pass through `modules`, whose tensors start at `first`, from `x`: a trace
    /// per module and the output.
    fn forward_seq<T: Float>(
        &self,
        modules: &[Box<dyn Module<T>>],
        first: usize,
        mut x: Value,
    ) -> (Vec<Trace>, Value) {
        let mut traces = Vec::with_capacity(modules.len());
        let mut k = first;
        for m in modules {
            let (trace, y) = self.forward(m.as_ref(), k, x);
            traces.push(trace);
            k += m.tensors().len();
            x = y;
        }
        (traces, x)
    }

    /// One module's forward pass from `x`, its tensors starting at `k`.
    fn forward<T: Float>(&self, m: &dyn Module<T>, k: usize, x: Value) -> (Trace, Value) {
        let width = m.out_width();
        let mut pre = None;
        let mut body = Vec::new();
        let y = match m.anatomy() {
            Anatomy::Linear {
                activation,
                dropout,
                has_bias,
            } => {
                let z = self.linear(&x, k, has_bias.then_some(k + 1), width);
                let a = activate(activation, &z);
                pre = Some(z);
                drop_units(dropout, a, width)
            }
            Anatomy::Activation(f) => activate(f, &x),
            Anatomy::Dropout(p) => drop_units(p, x.clone(), width),
            Anatomy::LayerNorm { affine, .. } => {
                let gamma_zero = affine && self.state(k).zero;
                if x.same_units || gamma_zero {
                    self.constant(affine.then_some(k + 1), width)
                } else {
                    Value::unknown(x.same_rows, false, width)
                }
            }
            Anatomy::RmsNorm { .. } => {
                if x.is_zero() || self.state(k).zero {
                    Value::zeros(width)
                } else {
                    Value::unknown(x.same_rows, x.same_units && self.state(k).uniform, width)
                }
            }
            Anatomy::BatchNorm { .. } => {
                if x.same_rows || self.state(k).zero {
                    self.constant(Some(k + 1), width)
                } else {
                    let (gamma, beta) = (self.state(k), self.state(k + 1));
                    Value::unknown(false, x.same_units && gamma.uniform && beta.uniform, width)
                }
            }
            Anatomy::Residual(modules) => {
                let (traces, out) = self.forward_seq(modules, k, x.clone());
                body = traces;
                add(&x, &out, width)
            }
            Anatomy::Gate => {
                if x.is_zero() || self.state(k).zero {
                    Value::zeros(width)
                } else {
                    match (&x.row, self.known(k)) {
                        (Some(r), Some(a)) => Value::known(r.iter().map(|v| v * a[0]).collect()),
                        _ => Value::unknown(x.same_rows, x.same_units, width),
                    }
                }
            }
            Anatomy::Shift => match (&x.row, self.known(k)) {
                (Some(r), Some(s)) => Value::known(r.iter().map(|v| v + s[0]).collect()),
                _ if self.state(k).zero => x.clone(),
                _ => Value::unknown(x.same_rows, x.same_units, width),
            },
        };
        let trace = Trace {
            first: k,
            input: x,
            pre,
            body,
        };
        (trace, y)
    }

    /// `z = x W^T + b`, W tensor `w`, b tensor `b` (`None`: no bias), `width` outputs.
    fn linear(&self, x: &Value, w: usize, b: Option<usize>, width: usize) -> Value {
        let bias_row = match b {
            Some(b) => self.known(b).map(<[f64]>::to_vec),
            None => Some(vec![0.0; width]),
        };
        let bias_uniform = b.is_none_or(|b| self.state(b).uniform);
        if self.state(w).zero || x.is_zero() {
            return match bias_row {
                Some(r) => Value::known(r),
                None => Value::unknown(true, bias_uniform, width),
            };
        }
        if let (Some(a), Some(weight), Some(bias)) = (&x.row, self.known(w), &bias_row) {
            let fan_in = a.len();
            return Value::known(
                (0..width)
                    .map(|j| {
                        let row = &weight[j * fan_in..(j + 1) * fan_in];
                        bias[j] + row.iter().zip(a).map(|(w, a)| w * a).sum::<f64>()
                    })
                    .collect(),
            );
        }
        Value::unknown(x.same_rows, self.state(w).rows_equal && bias_uniform, width)
    }

    /// The backward pass through `modules` (traced by [`Step::forward_seq`]) from `dy`, the
    /// delta at their output; returns the delta at their input.
    fn backward_seq<T: Float>(
        &mut self,
        modules: &[Box<dyn Module<T>>],
        traces: &[Trace],
        mut dy: Delta,
    ) -> Delta {
        for (m, trace) in modules.iter().zip(traces).rev() {
            dy = self.backward(m.as_ref(), trace, dy);
        }
        dy
    }

    /// One module's backward pass from `dy`: writes its tensors' gradient patterns, returns
    /// `dx`.
    fn backward<T: Float>(&mut self, m: &dyn Module<T>, trace: &Trace, dy: Delta) -> Delta {
        let (k, x) = (trace.first, &trace.input);
        let width = m.in_width();
        let out_width = m.out_width();
        match m.anatomy() {
            Anatomy::Linear {
                activation,
                dropout,
                has_bias,
            } => {
                let z = trace.pre.as_ref().expect("a linear layer's trace keeps z");
                let dz = Slope::of(activation, z).times(undrop(dropout, dy), out_width);
                let w = self.state(k);
                self.grads[k] = if dz.zero || x.is_zero() || (dz.batch_sums_zero && x.same_rows) {
                    Pattern::ZERO
                } else {
                    Pattern::matrix(dz.same_units, x.same_units)
                };
                if has_bias {
                    self.grads[k + 1] = sum_rows(dz);
                }
                if dz.zero || w.zero || (dz.unit_sums_zero && w.rows_equal) {
                    Delta::ZERO
                } else {
                    Delta::nonzero(
                        w.rows_constant,
                        dz.same_rows,
                        dz.batch_sums_zero,
                        false,
                        width,
                    )
                }
            }
            Anatomy::Activation(f) => Slope::of(f, x).times(dy, width),
            Anatomy::Dropout(p) => undrop(p, dy),
            Anatomy::LayerNorm { affine, .. } => {
                let (g_zero, g_same_units) = if affine {
                    let gamma = self.state(k);
                    self.grads[k] =
                        if dy.zero || x.same_units || (dy.batch_sums_zero && x.same_rows) {
                            Pattern::ZERO
                        } else {
                            Pattern::vector(false)
                        };
                    self.grads[k + 1] = sum_rows(dy);
                    (dy.zero || gamma.zero, dy.same_units && gamma.uniform)
                } else {
                    (dy.zero, dy.same_units)
                };
                if g_zero || g_same_units {
                    Delta::ZERO
                } else {
                    Delta::nonzero(
                        false,
                        dy.same_rows && x.same_rows,
                        dy.batch_sums_zero && x.same_rows,
                        true,
                        width,
                    )
                }
            }
            Anatomy::RmsNorm { .. } => {
                let gamma = self.state(k);
                self.grads[k] = if dy.zero || x.is_zero() || (dy.batch_sums_zero && x.same_rows) {
                    Pattern::ZERO
                } else {
                    Pattern::vector(dy.same_units && x.same_units)
                };
                if dy.zero || gamma.zero {
                    Delta::ZERO
                } else {
                    Delta::nonzero(
                        dy.same_units && gamma.uniform && x.same_units,
                        dy.same_rows && x.same_rows,
                        dy.batch_sums_zero && x.same_rows,
                        false,
                        width,
                    )
                }
            }
            Anatomy::BatchNorm { .. } => {
                let gamma = self.state(k);
                self.grads[k] = if dy.zero || dy.same_rows || x.same_rows {
                    Pattern::ZERO
                } else {
                    Pattern::vector(dy.same_units && x.same_units)
                };
                self.grads[k + 1] = sum_rows(dy);
                if dy.zero || dy.same_rows || gamma.zero {
                    Delta::ZERO
                } else {
                    Delta::nonzero(
                        dy.same_units && x.same_units && gamma.uniform,
                        false,
                        true,
                        false,
                        width,
                    )
                }
            }
            Anatomy::Residual(modules) => {
                let through = self.backward_seq(modules, &trace.body, dy);
                Delta::add(dy, through)
            }
            Anatomy::Gate => {
                let zero = dy.zero
                    || x.is_zero()
                    || (dy.batch_sums_zero && x.same_rows)
                    || (dy.unit_sums_zero && x.same_units);
                self.grads[k] = if zero {
                    Pattern::ZERO
                } else {
                    Pattern::vector(true)
                };
                if self.state(k).zero {
                    Delta::ZERO
                } else {
                    dy
                }
            }
            Anatomy::Shift => {
                let zero = dy.zero || dy.batch_sums_zero || dy.unit_sums_zero;
                self.grads[k] = if zero {
                    Pattern::ZERO
                } else {
                    Pattern::vector(true)
                };
                dy
            }
        }
    }
}

/// `f(z)`: known rows map through f, equalities are kept.
fn activate(f: Activation, z: &Value) -> Value {
    match &z.row {
        Some(r) if f != Activation::Identity => Value::known(r.iter().map(|&v| f.f(v)).collect()),
        _ => z.clone(),
    }
}

/// Inverted dropout with probability `p` while training: zero stays zero, anything else loses
/// every equality (the masks are drawn per entry).
fn drop_units(p: f64, a: Value, width: usize) -> Value {
    if p == 0.0 || a.is_zero() {
        a
    } else {
        Value::unknown(false, false, width)
    }
}

/// The delta through dropout's mask: zero stays zero, anything else loses every property.
fn undrop(p: f64, dy: Delta) -> Delta {
    if p == 0.0 || dy.zero {
        dy
    } else {
        Delta {
            zero: false,
            same_units: false,
            same_rows: false,
            batch_sums_zero: false,
            unit_sums_zero: false,
        }
    }
}

/// `x + F(x)`.
fn add(a: &Value, b: &Value, width: usize) -> Value {
    if b.is_zero() {
        return a.clone();
    }
    if a.is_zero() {
        return b.clone();
    }
    match (&a.row, &b.row) {
        (Some(r), Some(s)) => Value::known(r.iter().zip(s).map(|(u, v)| u + v).collect()),
        _ => Value::unknown(
            a.same_rows && b.same_rows,
            a.same_units && b.same_units,
            width,
        ),
    }
}

/// The pattern of `Σ_r dy` (a norm's β, a linear bias): zero when dy is zero or its columns sum
/// to 0, uniform when dy is equal across units.
fn sum_rows(dy: Delta) -> Pattern {
    if dy.zero || dy.batch_sums_zero {
        Pattern::ZERO
    } else {
        Pattern::vector(dy.same_units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_reads_zeros_and_equal_rows_and_columns_from_the_numbers() {
        let p = Pattern::of(&[0.0; 6], &[2, 3]);
        assert_eq!(p, Pattern::ZERO);
        // Equal rows (W = 1 w^T): every output unit computes the same thing.
        let p = Pattern::of(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], &[2, 3]);
        assert!(!p.zero && p.rows_equal && !p.rows_constant && !p.uniform);
        // Constant rows (W = v 1^T): the input units are interchangeable.
        let p = Pattern::of(&[1.0, 1.0, 1.0, 2.0, 2.0, 2.0], &[2, 3]);
        assert!(!p.rows_equal && p.rows_constant && !p.uniform);
        let p = Pattern::of(&[0.5, 0.5], &[2]);
        assert!(!p.zero && p.uniform && p.rows_equal && p.rows_constant);
    }

    #[test]
    fn a_moved_tensor_keeps_only_the_equalities_every_gradient_had() {
        let s = TensorState {
            moved: false,
            pattern: Pattern::of(&[0.1; 4], &[2, 2]),
        };
        assert_eq!(s.after(&Pattern::ZERO), s);
        let t = s.after(&Pattern::matrix(false, true));
        assert!(t.moved && !t.pattern.zero);
        assert!(!t.pattern.rows_equal && t.pattern.rows_constant && !t.pattern.uniform);
    }

    #[test]
    fn a_width_one_delta_whose_rows_sum_to_zero_is_zero() {
        // Cross-entropy with one output: softmax 1 minus one-hot 1.
        assert_eq!(Delta::nonzero(false, false, false, true, 1), Delta::ZERO);
        assert!(Delta::nonzero(false, false, false, false, 1).same_units);
    }
}
