//! Optimizers and learning-rate schedules, following `torch.optim` step for step.
//!
//! With g the gradient and p the parameter, weight decay wd (coupled unless stated):
//! ```text
//! sgd:       g += wd p;  p -= lr g
//! momentum:  g += wd p;  b = mu b + g;  p -= lr b                    (no dampening; b_1 = g)
//! nesterov:  g += wd p;  b = mu b + g;  p -= lr (g + mu b)           (torch's Nesterov form)
//! adam:      g += wd p;  m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;
//!            p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
//! adamw:     p *= 1 - lr wd;  then adam without the coupled decay    (decoupled, Loshchilov & Hutter)
//! rmsprop:   g += wd p;  v = α v + (1-α) g²;  p -= lr g / (sqrt(v) + eps)   (eps outside the root)
//! ```
//! Every update is elementwise, so units with bitwise-equal parameters and gradients stay
//! bitwise equal (the symmetry facts of DESIGN.md rely on this).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::{Net, ParamKind};
use crate::scalar::Float;
use crate::spec::{fmt_f64, Spec};

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    Adamw,
    Rmsprop,
}

impl OptimKind {
    pub fn parse(field: &str, text: &str) -> Result<OptimKind> {
        let spec = Spec::parse(field, text)?;
        spec.bind(&[])?;
        Ok(match spec.name.as_str() {
            "sgd" | "gd" => OptimKind::Sgd,
            "momentum" | "sgdm" => OptimKind::Momentum,
            "nesterov" => OptimKind::Nesterov,
            "adam" => OptimKind::Adam,
            "adamw" => OptimKind::Adamw,
            "rmsprop" => OptimKind::Rmsprop,
            other => {
                return Err(spec.error(format!(
                    "unknown optimizer '{other}' (known: sgd, momentum, nesterov, adam, adamw, rmsprop)"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OptimKind::Sgd => "sgd",
            OptimKind::Momentum => "momentum",
            OptimKind::Nesterov => "nesterov",
            OptimKind::Adam => "adam",
            OptimKind::Adamw => "adamw",
            OptimKind::Rmsprop => "rmsprop",
        }
    }

    /// torch.optim's default learning rate in this tool: 0.1 for the SGD family, 1e-3 for Adam(W),
    /// 1e-2 for RMSprop (torch's own default).
    pub fn default_lr(self) -> f64 {
        match self {
            OptimKind::Sgd | OptimKind::Momentum | OptimKind::Nesterov => 0.1,
            OptimKind::Adam | OptimKind::Adamw => 1e-3,
            OptimKind::Rmsprop => 1e-2,
        }
    }

    /// torch.optim's default weight decay: 0.01 for AdamW, 0 elsewhere.
    pub fn default_weight_decay(self) -> f64 {
        if self == OptimKind::Adamw {
            0.01
        } else {
            0.0
        }
    }
}

impl fmt::Display for OptimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fully specified optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub kind: OptimKind,
    pub lr: f64,
    /// mu for momentum/nesterov (default 0.9).
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// RMSprop's smoothing constant alpha (0.99).
    pub alpha: f64,
    pub weight_decay: f64,
    /// Kinds of parameters weight decay leaves alone (`--no-decay norms,gates,biases`); empty
    /// (and left out of the run id) by default: torch.optim decays every parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_decay: Vec<NoDecay>,
}

/// A class of parameters `--no-decay` can exempt from weight decay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoDecay {
    /// Norm gains and biases (layernorm, rmsnorm, batchnorm `weight` and `bias`).
    Norms,
    /// Gates' alphas.
    Gates,
    /// Linear layers' biases and shifts.
    Biases,
}

impl NoDecay {
    /// Parses `--no-decay`'s comma-separated list (sorted, each at most once).
    pub fn parse_list(field: &str, text: &str) -> Result<Vec<NoDecay>> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let k = match item.to_ascii_lowercase().as_str() {
                "norms" => NoDecay::Norms,
                "gates" => NoDecay::Gates,
                "biases" => NoDecay::Biases,
                _ => {
                    return Err(Error::spec(
                        field,
                        text,
                        format!("unknown class '{item}' (norms, gates, biases)"),
                    ))
                }
            };
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether a tensor of `kind` belongs to this class.
    pub fn covers(self, kind: ParamKind) -> bool {
        match self {
            NoDecay::Norms => matches!(kind, ParamKind::NormGain | ParamKind::NormBias),
            NoDecay::Gates => kind == ParamKind::Gate,
            NoDecay::Biases => matches!(kind, ParamKind::Bias | ParamKind::Shift),
        }
    }
}

impl OptimConfig {
    /// Plain SGD (`p -= lr g`: no momentum, no weight decay), the update
    /// [`crate::nn::Net::loss_and_sgd_step`] fuses into the backward pass.
    pub fn is_plain_sgd(&self) -> bool {
        self.kind == OptimKind::Sgd && self.weight_decay == 0.0
    }

    /// torch.optim's defaults for `kind`.
    pub fn new(kind: OptimKind) -> Self {
        OptimConfig {
            kind,
            lr: kind.default_lr(),
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            alpha: 0.99,
            weight_decay: kind.default_weight_decay(),
            no_decay: Vec::new(),
        }
    }

    /// Refuses values torch.optim refuses.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &str, why: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, why))
            }
        };
        check(
            self.lr.is_finite() && self.lr >= 0.0,
            "lr",
            format!("must be a finite number >= 0, got {}", self.lr),
        )?;
        check(
            (0.0..1.0).contains(&self.momentum),
            "momentum",
            format!("must be in [0, 1), got {}", self.momentum),
        )?;
        check(
            (0.0..1.0).contains(&self.beta1),
            "beta1",
            format!("must be in [0, 1), got {}", self.beta1),
        )?;
        check(
            (0.0..1.0).contains(&self.beta2),
            "beta2",
            format!("must be in [0, 1), got {}", self.beta2),
        )?;
        check(
            (0.0..1.0).contains(&self.alpha),
            "alpha",
            format!("must be in [0, 1), got {}", self.alpha),
        )?;
        check(
            self.eps > 0.0 && self.eps.is_finite(),
            "eps",
            format!("must be > 0, got {}", self.eps),
        )?;
        check(
            self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            "weight_decay",
            format!("must be >= 0, got {}", self.weight_decay),
        )
    }
}

/// Learning-rate schedule over the run's updates t = 0..T.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Schedule {
    /// lr.
    Constant,
    /// lr · gamma^floor(t / every) (`StepLR`).
    Step { every: usize, gamma: f64 },
    /// min + (lr - min)(1 + cos(π t / T)) / 2 (`CosineAnnealingLR` with T_max = T).
    Cosine { min: f64 },
}

impl Schedule {
    /// The learning rate for update `t` of `total`, before warmup.
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((t / every.max(1)) as i32),
            Schedule::Cosine { min } => {
                let frac = t as f64 / total.max(1) as f64;
                min + (base - min) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0
            }
        }
    }

    pub fn spec(&self) -> String {
        match self {
            Schedule::Constant => "constant".into(),
            Schedule::Step { every, gamma } => {
                format!("step:every={every},gamma={}", fmt_f64(*gamma))
            }
            Schedule::Cosine { min } => format!("cosine:min={}", fmt_f64(*min)),
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Schedule> {
        let spec = Spec::parse(field, text)?;
        match spec.name.as_str() {
            "constant" | "none" => {
                spec.bind(&[])?;
                Ok(Schedule::Constant)
            }
            "step" => {
                let v = spec.bind(&["every", "gamma"])?;
                let every = spec.usize_or("every", &v[0], 0)?;
                if every == 0 {
                    return Err(
                        spec.error("step needs every=N with N >= 1, e.g. step:every=100,gamma=0.5")
                    );
                }
                let gamma = spec.f64_or("gamma", &v[1], 0.1)?;
                if gamma <= 0.0 {
                    return Err(spec.error(format!("gamma must be > 0, got {gamma}")));
                }
                Ok(Schedule::Step { every, gamma })
            }
            "cosine" => {
                let v = spec.bind(&["min"])?;
                let min = spec.f64_or("min", &v[0], 0.0)?;
                if min < 0.0 {
                    return Err(spec.error(format!("min must be >= 0, got {min}")));
                }
                Ok(Schedule::Cosine { min })
            }
            other => Err(spec.error(format!(
                "unknown schedule '{other}' (known: constant, step, cosine)"
            ))),
        }
    }
}

/// Linear warmup factor for update t: min(1, (t + 1) / warmup); 1 when warmup is 0.
pub fn warmup_factor(t: usize, warmup: usize) -> f64 {
    if warmup == 0 {
        1.0
    } else {
        ((t + 1) as f64 / warmup as f64).min(1.0)
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.spec()
    }
}

impl TryFrom<String> for Schedule {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Schedule::parse("schedule", &s)
    }
}

/// Per-tensor optimizer state: first and second moment buffers (empty when unused).
#[derive(Clone, Debug)]
struct Moments<T> {
    m: Vec<T>,
    v: Vec<T>,
}

/// An optimizer bound to a network's parameter shapes.
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    pub config: OptimConfig,
    /// Number of updates taken so far (Adam's t after the next step is `steps + 1`).
    pub steps: u64,
    state: Vec<Moments<T>>, // one per parameter tensor, in state_dict order
}

impl<T: Float> Optimizer<T> {
    pub fn new(config: OptimConfig, net: &Net<T>) -> Self {
        let (needs_m, needs_v) = match config.kind {
            OptimKind::Sgd => (false, false),
            OptimKind::Momentum | OptimKind::Nesterov => (true, false),
            OptimKind::Adam | OptimKind::Adamw => (true, true),
            OptimKind::Rmsprop => (false, true),
        };
        let state = net
            .param_infos()
            .iter()
            .map(|id| Moments {
                m: vec![T::ZERO; if needs_m { id.len() } else { 0 }],
                v: vec![T::ZERO; if needs_v { id.len() } else { 0 }],
            })
            .collect();
        Optimizer {
            config,
            steps: 0,
            state,
        }
    }

    /// One update of every parameter tensor of `net` ([`Net::param_infos`], `state_dict`
    /// order) with its gradient in `grads` (the workspace's, same order) and learning rate `lr`
    /// (already scheduled).
    pub fn step(&mut self, net: &mut Net<T>, grads: &[Matrix<T>], lr: f64) {
        debug_assert_eq!(
            (self.state.len(), grads.len()),
            (net.param_infos().len(), net.param_infos().len()),
            "an optimizer is bound to one network's parameter tensors"
        );
        self.steps += 1;
        let t = self.steps;
        for (k, (g, state)) in grads.iter().zip(self.state.iter_mut()).enumerate() {
            let kind = net.param_infos()[k].kind;
            let wd = if self.config.no_decay.iter().any(|c| c.covers(kind)) {
                0.0
            } else {
                self.config.weight_decay
            };
            update(
                &self.config,
                wd,
                t,
                lr,
                net.param_values_mut(k),
                g.as_slice(),
                state,
            );
        }
    }
}

/// One elementwise update of a tensor `p` with gradient `g` and weight decay `weight_decay`
/// (the config's, or 0 for a class `--no-decay` exempts; see the module docs).
fn update<T: Float>(
    c: &OptimConfig,
    weight_decay: f64,
    t: u64,
    lr: f64,
    p: &mut [T],
    g: &[T],
    s: &mut Moments<T>,
) {
    let lr_t = T::from_f64(lr);
    let wd = T::from_f64(weight_decay);
    let coupled = weight_decay != 0.0 && c.kind != OptimKind::Adamw;
    let grad = |p: T, g: T| if coupled { g + wd * p } else { g };
    match c.kind {
        OptimKind::Sgd => {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= lr_t * grad(*p, g);
            }
        }
        OptimKind::Momentum | OptimKind::Nesterov => {
            let mu = T::from_f64(c.momentum);
            let nesterov = c.kind == OptimKind::Nesterov;
            for ((p, &g), b) in p.iter_mut().zip(g).zip(s.m.iter_mut()) {
                let g = grad(*p, g);
                // torch initialises the buffer to g on the first step; mu*0 + g == g exactly.
                *b = mu * *b + g;
                let d = if nesterov { g + mu * *b } else { *b };
                *p -= lr_t * d;
            }
        }
        OptimKind::Adam | OptimKind::Adamw => {
            let (b1, b2) = (T::from_f64(c.beta1), T::from_f64(c.beta2));
            let (one_b1, one_b2) = (T::from_f64(1.0 - c.beta1), T::from_f64(1.0 - c.beta2));
            let bc1 = 1.0 - c.beta1.powi(t as i32);
            let bc2_sqrt = T::from_f64((1.0 - c.beta2.powi(t as i32)).sqrt());
            let step_size = T::from_f64(lr / bc1);
            let eps = T::from_f64(c.eps);
            let decay = T::from_f64(1.0 - lr * weight_decay);
            let decoupled = c.kind == OptimKind::Adamw && weight_decay != 0.0;
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(s.m.iter_mut()).zip(s.v.iter_mut()) {
                if decoupled {
                    *p *= decay;
                }
                let g = grad(*p, g);
                *m = b1 * *m + one_b1 * g;
                *v = b2 * *v + one_b2 * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * (*m / denom);
            }
        }
        OptimKind::Rmsprop => {
            let alpha = T::from_f64(c.alpha);
            let one_alpha = T::from_f64(1.0 - c.alpha);
            let eps = T::from_f64(c.eps);
            for ((p, &g), v) in p.iter_mut().zip(g).zip(s.v.iter_mut()) {
                let g = grad(*p, g);
                *v = alpha * *v + one_alpha * g * g;
                *p -= lr_t * (g / (v.sqrt() + eps));
            }
        }
    }
}

/// Scales the gradients of every parameter tensor of `net` (`grads`, the workspace's, in
/// `state_dict` order) so that their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (coefficient max_norm / (norm + 1e-6), capped at 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm<T: Float>(net: &Net<T>, grads: &mut [Matrix<T>], max_norm: f64) -> f64 {
    let norm = global_grad_norm(net, grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = T::from_f64(coef);
        for g in grads {
            g.as_mut_slice().iter_mut().for_each(|x| *x *= c);
        }
    }
    norm
}

/// The L2 norm of the gradients of every parameter tensor of `net` together, accumulated in
/// f64: sqrt(sum over modules of the sum of their tensors' squared norms; for a plain MLP
/// ||dW_l||^2 + ||db_l||^2 per layer), the squares of a module added before they join the total.
pub fn global_grad_norm<T: Float>(net: &Net<T>, grads: &[Matrix<T>]) -> f64 {
    let (mut total, mut module_sum, mut module) = (0.0, 0.0, 0);
    for (id, g) in net.param_infos().iter().zip(grads) {
        if id.module != module {
            total += module_sum;
            (module_sum, module) = (0.0, id.module);
        }
        let n = g.norm();
        module_sum += n * n;
    }
    (total + module_sum).sqrt()
}
