//! The quotient network of a network of modules under an equitable partition of its unit graph
//! ([`super::symmetry::UnitGraph`]): one unit per class in every group of units (fixed groups
//! keep their units), every module reduced to classes, and a plain f64 forward/backward
//! evaluator for it. It is a reference implementation for the symmetry analysis, written for
//! reading, not the training engine.
//!
//! Notation: the classes of a group are C, D, E; m_C = |C| is a class's multiplicity (its number
//! of units) and n = Σ_C m_C the group's full width; x_C is the common value of C's units (within
//! an equitable partition activations are constant on classes). A quotient module reads
//! x: (batch, classes of its input group) and writes y: (batch, classes of its output group).
//!
//! ```text
//! linear     z_D = Σ_C V[D, C] x_C + b_D,  y_D = f(z_D)    V[D, C] = Σ_{k∈C} W[a, k], b_D = b_a, any a ∈ D
//! layernorm  μ = Σ_C m_C x_C / n,  v = Σ_C m_C (x_C - μ)^2 / n,  r = 1/sqrt(v + eps)
//!            x̂_C = (x_C - μ) r,  y_C = γ_C x̂_C + β_C                 (γ_C, β_C: any member's)
//! rmsnorm    r = 1/sqrt(Σ_C m_C x_C^2 / n + eps),  x̂_C = x_C r,  y_C = γ_C x̂_C
//! batchnorm  per class over the batch, as the module does per unit: μ_C = mean_rows x_C,
//!            r_C = 1/sqrt(mean_rows (x_C - μ_C)^2 + eps) (or the running statistics),
//!            x̂_C = (x_C - μ_C) r_C,  y_C = γ_C x̂_C + β_C
//! activation y_C = f(x_C);   dropout: the identity
//! gate       y_C = α x_C;    shift: y_C = x_C + s
//! residual   y_C = x_C + body(x)_C
//! ```
//! Means are taken with the first class as a shift (`x_0 + Σ_C m_C (x_C - x_0) / n`, as the
//! modules do with their first entry), so a group of one class has x - μ = 0 exactly.
//!
//! Backward: the exact derivative of the quotient's own function L_q; `dx_C` is dL_q/dx_C.
//! ```text
//! linear     dz_D = dy_D f'(z_D),  dV[D, C] = Σ_rows dz_D x_C,  db_D = Σ_rows dz_D,  dx_C = Σ_D dz_D V[D, C]
//! layernorm  g_C = dy_C γ_C,  dx_C = r (g_C - (m_C/n) Σ_E g_E - (m_C/n) x̂_C Σ_E g_E x̂_E)
//!            dγ_C = Σ_rows dy_C x̂_C,  dβ_C = Σ_rows dy_C
//!            (∂μ/∂x_C = m_C/n, ∂v/∂x_C = 2 m_C (x_C - μ)/n, ∂r/∂x_C = -r^3 m_C (x_C - μ)/n)
//! rmsnorm    dx_C = r (g_C - (m_C/n) x̂_C Σ_E g_E x̂_E)                 (∂r/∂x_C = -r^3 m_C x_C/n)
//! batchnorm  per class, as the module: dx_C = (γ_C r_C / N)(N dy_C - dβ_C - x̂_C dγ_C), N rows
//!            (running statistics: dx_C = γ_C r_C dy_C)
//! gate       dx = α dy,  dα = Σ_rows Σ_C dy_C x_C;    shift: dx = dy,  ds = Σ_rows Σ_C dy_C
//! residual   dx = dy + d(body input)
//! ```
//!
//! Relation to the full network. The quotient computes the full network's function on
//! class-constant activations, and the output group is fixed (singletons), so the logits, the
//! loss and dLoss/d(logits) are the full network's. Moving x_C in the quotient moves all m_C
//! units of C, so every quotient delta is the sum of its members' deltas: dx_C = m_C δ_a (a ∈ C,
//! δ_a = dL/dx_a, equal on C). Hence the quotient's gradients and the full network's, and the
//! plain-SGD step (`θ -= lr dθ` on every full tensor) in quotient coordinates:
//! - a linear weight: dW[a, k] = Σ_rows δz_a x_k is the same for every a ∈ D, k ∈ C, and
//!   dV[D, C] = Σ_rows (|D| δz_a) x_C = |D| dW[a, k]. The full step moves
//!   V[D, C] = Σ_{k∈C} W[a, k] by -lr |C| dW[a, k] = -lr (|C|/|D|) dV[D, C]: scale |C|/|D|;
//! - a per-unit vector (a bias, a norm's γ or β): dθ_a is the same on D and the quotient's
//!   dθ_D = |D| dθ_a, so θ_D moves by -lr dθ_a = -lr (1/|D|) dθ_D: scale 1/|D|;
//! - a scalar shared by every unit (a gate's α, a shift's s): the full gradient
//!   Σ_rows Σ_a dy_a x_a = Σ_rows Σ_D |D| δ_a x_D = Σ_rows Σ_D dy_D x_D is the quotient's own:
//!   scale 1.
//!
//! After such a step the full network is again class-constant with the stepped quotient as its
//! quotient, so the two trajectories agree step by step ([`QuotientNet::step_scales`],
//! [`QuotientNet::sgd_step`]).
//!
//! What the quotient does not follow: dropout (per-unit masks split classes; the quotient is the
//! network with dropout off), batchnorm's running-statistics update (the running statistics are
//! copied per class but not updated by [`QuotientNet::sgd_step`]), and optimizers other than
//! plain SGD. A norm's eps comes from its anatomy ([`crate::nn::Anatomy`]).

use super::symmetry::Partition;
use crate::activation::Activation;
use crate::loss::{Loss, Targets};
use crate::matrix::Matrix;
use crate::nn::{Anatomy, Module, Net};

/// Why a partition gives no quotient of a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotientError {
    /// The partition's groups do not match the network's unit graph (their number or a width).
    #[error("the partition does not fit the network: {0}")]
    Shape(String),
    /// A module that maps unit i to unit i (an activation, a norm, a gate, a residual add)
    /// whose output units are classed differently from its input units: no equitable partition
    /// of the network's unit graph does that (it can only come from a zero gate, whose edges
    /// carry no weight to compare).
    #[error("module {module} ({kind}): its output units are not classed like its input units")]
    Pointwise { module: String, kind: &'static str },
}

/// Which statistics a batchnorm uses: the batch's (a training pass) or its running ones (an
/// evaluation pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStats {
    Batch,
    Running,
}

/// What a quotient module computes (module docs for the formulas). Vectors are per class of the
/// module's output group.
#[derive(Clone, Debug, PartialEq)]
pub enum QuotientOp {
    /// `y = f(x V^T + b)`; `weight` V is (out classes, in classes).
    Linear {
        weight: Matrix<f64>,
        bias: Option<Vec<f64>>,
        activation: Activation,
    },
    Activation(Activation),
    /// Dropout (the network with dropout off).
    Identity,
    /// `gamma_beta` when affine.
    LayerNorm {
        eps: f64,
        gamma_beta: Option<(Vec<f64>, Vec<f64>)>,
    },
    RmsNorm {
        eps: f64,
        gamma: Vec<f64>,
    },
    BatchNorm {
        eps: f64,
        gamma: Vec<f64>,
        beta: Vec<f64>,
        running_mean: Vec<f64>,
        running_var: Vec<f64>,
    },
    Gate(f64),
    Shift(f64),
    Residual(Vec<QuotientModule>),
}

/// One module of the quotient network.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotientModule {
    /// The full module's path (`2.body.1`).
    pub path: String,
    pub op: QuotientOp,
    /// The full units of each class of the module's output group, classes in order of their
    /// first unit.
    pub members: Vec<Vec<usize>>,
}

/// The quotient network ([module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct QuotientNet {
    /// The number of input features (each its own class).
    pub inputs: usize,
    pub modules: Vec<QuotientModule>,
}

/// Classes of a group, canonical: each class's units ascending, classes by first unit.
fn members(ids: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut slot: Vec<Option<usize>> = Vec::new();
    for (unit, &c) in ids.iter().enumerate() {
        if slot.len() <= c {
            slot.resize(c + 1, None);
        }
        let s = *slot[c].get_or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[s].push(unit);
    }
    out
}

fn singletons(width: usize) -> Vec<Vec<usize>> {
    (0..width).map(|u| vec![u]).collect()
}

/// The number of groups of units a sequence of modules adds (one per module output, a block's
/// body's before the block's own).
fn count_groups(modules: &[Box<dyn Module<f64>>]) -> usize {
    modules
        .iter()
        .map(|m| 1 + m.body().map_or(0, |(body, _)| count_groups(body)))
        .sum()
}

/// The walk over the unit graph's groups in the order [`super::symmetry::UnitGraph`] numbers
/// them: group 0 is the input, `last` the network's output (both fixed), the others are
/// `partition.classes[g - 1]`.
struct Walk<'a> {
    partition: &'a Partition,
    next: usize,
    last: usize,
}

impl Walk<'_> {
    /// The classes of the next group, of `width` units.
    fn group(&mut self, width: usize) -> Result<Vec<Vec<usize>>, QuotientError> {
        let g = self.next;
        self.next += 1;
        if g == self.last {
            return Ok(singletons(width));
        }
        let ids = &self.partition.classes[g - 1];
        if ids.len() != width {
            return Err(QuotientError::Shape(format!(
                "group {g} has {width} units, the partition classes {}",
                ids.len()
            )));
        }
        Ok(members(ids))
    }

    /// The quotient of module `m` at `path`, whose input group has classes `input`.
    fn module(
        &mut self,
        m: &dyn Module<f64>,
        path: String,
        input: &[Vec<usize>],
    ) -> Result<QuotientModule, QuotientError> {
        // Any member's entry of a per-unit vector, per class.
        let per_class = |classes: &[Vec<usize>], v: &[f64]| -> Vec<f64> {
            classes.iter().map(|c| v[c[0]]).collect()
        };
        if let Anatomy::Linear {
            activation,
            has_bias,
            ..
        } = m.anatomy()
        {
            let out = self.group(m.out_width())?;
            let (w, fan_in) = (m.value(0), m.in_width());
            let mut v = Matrix::zeros(out.len(), input.len());
            for (d, dm) in out.iter().enumerate() {
                let row = &w[dm[0] * fan_in..(dm[0] + 1) * fan_in];
                for (c, cm) in input.iter().enumerate() {
                    v.set(d, c, cm.iter().map(|&k| row[k]).sum());
                }
            }
            let bias = has_bias.then(|| per_class(&out, m.value(1)));
            return Ok(QuotientModule {
                path,
                op: QuotientOp::Linear {
                    weight: v,
                    bias,
                    activation,
                },
                members: out,
            });
        }
        if let Some((body, keys)) = m.body() {
            let mut here = input.to_vec();
            let mut reduced = Vec::new();
            for (b, key) in body.iter().zip(keys) {
                let q = self.module(b.as_ref(), format!("{path}.body.{key}"), &here)?;
                here = q.members.clone();
                reduced.push(q);
            }
            let out = self.group(m.out_width())?;
            if here != out || input != out {
                return Err(QuotientError::Pointwise {
                    module: path,
                    kind: m.kind(),
                });
            }
            return Ok(QuotientModule {
                path,
                op: QuotientOp::Residual(reduced),
                members: out,
            });
        }
        let out = self.group(m.out_width())?;
        if input != out {
            return Err(QuotientError::Pointwise {
                module: path,
                kind: m.kind(),
            });
        }
        let op = match m.anatomy() {
            Anatomy::Activation(a) => QuotientOp::Activation(a),
            Anatomy::Dropout(_) => QuotientOp::Identity,
            Anatomy::LayerNorm { affine, eps } => QuotientOp::LayerNorm {
                eps,
                gamma_beta: affine
                    .then(|| (per_class(&out, m.value(0)), per_class(&out, m.value(1)))),
            },
            Anatomy::RmsNorm { eps } => QuotientOp::RmsNorm {
                eps,
                gamma: per_class(&out, m.value(0)),
            },
            Anatomy::BatchNorm { eps } => {
                let buffers = m.buffers();
                let buffer = |key: &str| -> Vec<f64> {
                    let b = buffers.iter().find(|b| b.key == key);
                    per_class(&out, &b.expect("batchnorm's running statistics").values)
                };
                QuotientOp::BatchNorm {
                    eps,
                    gamma: per_class(&out, m.value(0)),
                    beta: per_class(&out, m.value(1)),
                    running_mean: buffer("running_mean"),
                    running_var: buffer("running_var"),
                }
            }
            Anatomy::Gate => QuotientOp::Gate(m.value(0)[0]),
            Anatomy::Shift => QuotientOp::Shift(m.value(0)[0]),
            Anatomy::Linear { .. } | Anatomy::Residual(_) => {
                unreachable!("linear layers and blocks are reduced above")
            }
        };
        Ok(QuotientModule {
            path,
            op,
            members: out,
        })
    }
}

/// What a quotient module's forward pass keeps for its backward pass.
#[derive(Clone, Debug)]
struct Tape {
    x: Matrix<f64>,   // (batch, in classes), the module's input
    pre: Matrix<f64>, // (batch, out classes): a linear's z, a norm's x̂; else empty
    y: Matrix<f64>,   // (batch, out classes), the output
    /// A layernorm's or rmsnorm's r per row; a batchnorm's r per class.
    r: Vec<f64>,
    /// A block's body modules' tapes, in order.
    body: Vec<Tape>,
}

/// `x_0 + Σ_C m_C (x_C - x_0) / n`: the multiplicity-weighted mean of a row with its first
/// entry as a shift (exact when every entry is equal).
fn weighted_mean(xs: &[f64], m: &[f64], n: f64) -> f64 {
    let x0 = xs[0];
    x0 + xs.iter().zip(m).map(|(&x, &m)| m * (x - x0)).sum::<f64>() / n
}

impl QuotientModule {
    /// Class sizes |D| of the module's output group.
    pub fn sizes(&self) -> Vec<usize> {
        self.members.iter().map(Vec::len).collect()
    }

    /// Multiplicities as f64 and the full width n.
    fn multiplicities(&self) -> (Vec<f64>, f64) {
        let m: Vec<f64> = self.members.iter().map(|c| c.len() as f64).collect();
        let n = m.iter().sum();
        (m, n)
    }

    /// Forward pass of `x` (batch, input classes).
    fn forward(&self, x: &Matrix<f64>, stats: BatchStats) -> Tape {
        let (batch, classes) = (x.rows(), self.members.len());
        let mut t = Tape {
            x: x.clone(),
            pre: Matrix::zeros(0, 0),
            y: Matrix::zeros(batch, classes),
            r: Vec::new(),
            body: Vec::new(),
        };
        let (m, n) = self.multiplicities();
        match &self.op {
            QuotientOp::Linear {
                weight,
                bias,
                activation,
            } => {
                t.pre = Matrix::zeros(batch, classes);
                for b in 0..batch {
                    for d in 0..classes {
                        let mut z: f64 =
                            weight.row(d).iter().zip(x.row(b)).map(|(v, x)| v * x).sum();
                        if let Some(bias) = bias {
                            z += bias[d];
                        }
                        t.pre.set(b, d, z);
                        t.y.set(b, d, activation.f(z));
                    }
                }
            }
            QuotientOp::Activation(a) => {
                for (y, &x) in t.y.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *y = a.f(x);
                }
            }
            QuotientOp::Identity => t.y = x.clone(),
            QuotientOp::LayerNorm { eps, gamma_beta } => {
                t.pre = Matrix::zeros(batch, classes);
                for b in 0..batch {
                    let xs = x.row(b);
                    let mu = weighted_mean(xs, &m, n);
                    let v = xs
                        .iter()
                        .zip(&m)
                        .map(|(&x, &m)| m * (x - mu) * (x - mu))
                        .sum::<f64>()
                        / n;
                    let r = 1.0 / (v + eps).sqrt();
                    t.r.push(r);
                    for c in 0..classes {
                        let h = (xs[c] - mu) * r;
                        t.pre.set(b, c, h);
                        let y = match gamma_beta {
                            Some((g, be)) => g[c] * h + be[c],
                            None => h,
                        };
                        t.y.set(b, c, y);
                    }
                }
            }
            QuotientOp::RmsNorm { eps, gamma } => {
                t.pre = Matrix::zeros(batch, classes);
                for b in 0..batch {
                    let xs = x.row(b);
                    let ms = xs.iter().zip(&m).map(|(&x, &m)| m * x * x).sum::<f64>() / n;
                    let r = 1.0 / (ms + eps).sqrt();
                    t.r.push(r);
                    for c in 0..classes {
                        t.pre.set(b, c, xs[c] * r);
                        t.y.set(b, c, gamma[c] * xs[c] * r);
                    }
                }
            }
            QuotientOp::BatchNorm {
                eps,
                gamma,
                beta,
                running_mean,
                running_var,
            } => {
                t.pre = Matrix::zeros(batch, classes);
                let rows = batch as f64;
                for c in 0..classes {
                    let col: Vec<f64> = (0..batch).map(|b| x.get(b, c)).collect();
                    let (mu, r) = match stats {
                        BatchStats::Batch => {
                            let mu = weighted_mean(&col, &vec![1.0; batch], rows);
                            let ss: f64 = col.iter().map(|&x| (x - mu) * (x - mu)).sum();
                            (mu, 1.0 / (ss / rows + eps).sqrt())
                        }
                        BatchStats::Running => {
                            (running_mean[c], 1.0 / (running_var[c] + eps).sqrt())
                        }
                    };
                    t.r.push(r);
                    for (b, &x) in col.iter().enumerate() {
                        let h = (x - mu) * r;
                        t.pre.set(b, c, h);
                        t.y.set(b, c, gamma[c] * h + beta[c]);
                    }
                }
            }
            QuotientOp::Gate(alpha) => {
                for (y, &x) in t.y.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *y = alpha * x;
                }
            }
            QuotientOp::Shift(s) => {
                for (y, &x) in t.y.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *y = x + s;
                }
            }
            QuotientOp::Residual(body) => {
                let mut h = x.clone();
                for q in body {
                    let bt = q.forward(&h, stats);
                    h = bt.y.clone();
                    t.body.push(bt);
                }
                for ((y, &x), &h) in
                    t.y.as_mut_slice()
                        .iter_mut()
                        .zip(x.as_slice())
                        .zip(h.as_slice())
                {
                    *y = x + h;
                }
            }
        }
        t
    }

    /// Backward pass: given dy = dL_q/dy, returns dL_q/dx and the gradients of the module's
    /// tensors ([`QuotientModule::tensors`] order).
    fn backward(
        &self,
        t: &Tape,
        dy: &Matrix<f64>,
        stats: BatchStats,
    ) -> (Matrix<f64>, Vec<Vec<f64>>) {
        let (batch, classes) = (dy.rows(), self.members.len());
        let mut dx = Matrix::zeros(batch, t.x.cols());
        let (m, n) = self.multiplicities();
        let grads = match &self.op {
            QuotientOp::Linear {
                weight,
                bias,
                activation,
            } => {
                let mut dz = dy.clone();
                for ((d, &z), &y) in dz
                    .as_mut_slice()
                    .iter_mut()
                    .zip(t.pre.as_slice())
                    .zip(t.y.as_slice())
                {
                    *d *= activation.df(z, y);
                }
                let mut dv = Matrix::zeros(classes, t.x.cols());
                let mut db = vec![0.0; classes];
                for b in 0..batch {
                    for (d, db) in db.iter_mut().enumerate() {
                        let g = dz.get(b, d);
                        *db += g;
                        for c in 0..t.x.cols() {
                            dv.set(d, c, dv.get(d, c) + g * t.x.get(b, c));
                            dx.set(b, c, dx.get(b, c) + g * weight.get(d, c));
                        }
                    }
                }
                let mut grads = vec![dv.into_vec()];
                if bias.is_some() {
                    grads.push(db);
                }
                grads
            }
            QuotientOp::Activation(a) => {
                for (((d, &g), &x), &y) in dx
                    .as_mut_slice()
                    .iter_mut()
                    .zip(dy.as_slice())
                    .zip(t.x.as_slice())
                    .zip(t.y.as_slice())
                {
                    *d = g * a.df(x, y);
                }
                Vec::new()
            }
            QuotientOp::Identity => {
                dx = dy.clone();
                Vec::new()
            }
            QuotientOp::LayerNorm { gamma_beta, .. } => {
                let (mut dgamma, mut dbeta) = (vec![0.0; classes], vec![0.0; classes]);
                for (b, &r) in t.r.iter().enumerate() {
                    let (dyr, h) = (dy.row(b), t.pre.row(b));
                    let g: Vec<f64> = match gamma_beta {
                        Some((gamma, _)) => dyr.iter().zip(gamma).map(|(d, g)| d * g).collect(),
                        None => dyr.to_vec(),
                    };
                    let sg: f64 = g.iter().sum();
                    let sgx: f64 = g.iter().zip(h).map(|(g, h)| g * h).sum();
                    for c in 0..classes {
                        let w = m[c] / n;
                        dx.set(b, c, r * (g[c] - w * sg - w * h[c] * sgx));
                        dgamma[c] += dyr[c] * h[c];
                        dbeta[c] += dyr[c];
                    }
                }
                match gamma_beta {
                    Some(_) => vec![dgamma, dbeta],
                    None => Vec::new(),
                }
            }
            QuotientOp::RmsNorm { gamma, .. } => {
                let mut dgamma = vec![0.0; classes];
                for (b, &r) in t.r.iter().enumerate() {
                    let (dyr, h) = (dy.row(b), t.pre.row(b));
                    let g: Vec<f64> = dyr.iter().zip(gamma).map(|(d, g)| d * g).collect();
                    let sgx: f64 = g.iter().zip(h).map(|(g, h)| g * h).sum();
                    for c in 0..classes {
                        dx.set(b, c, r * (g[c] - m[c] / n * h[c] * sgx));
                        dgamma[c] += dyr[c] * h[c];
                    }
                }
                vec![dgamma]
            }
            QuotientOp::BatchNorm { gamma, .. } => {
                let (mut dgamma, mut dbeta) = (vec![0.0; classes], vec![0.0; classes]);
                let rows = batch as f64;
                for c in 0..classes {
                    for b in 0..batch {
                        dgamma[c] += dy.get(b, c) * t.pre.get(b, c);
                        dbeta[c] += dy.get(b, c);
                    }
                    let k = gamma[c] * t.r[c];
                    for b in 0..batch {
                        let d = match stats {
                            BatchStats::Batch => {
                                k / rows
                                    * (rows * dy.get(b, c) - dbeta[c] - t.pre.get(b, c) * dgamma[c])
                            }
                            BatchStats::Running => k * dy.get(b, c),
                        };
                        dx.set(b, c, d);
                    }
                }
                vec![dgamma, dbeta]
            }
            QuotientOp::Gate(alpha) => {
                let mut da = 0.0;
                for ((d, &g), &x) in dx
                    .as_mut_slice()
                    .iter_mut()
                    .zip(dy.as_slice())
                    .zip(t.x.as_slice())
                {
                    *d = alpha * g;
                    da += g * x;
                }
                vec![vec![da]]
            }
            QuotientOp::Shift(_) => {
                dx = dy.clone();
                vec![vec![dy.as_slice().iter().sum()]]
            }
            QuotientOp::Residual(body) => {
                let mut dh = dy.clone();
                let mut per_module = Vec::new();
                for (q, bt) in body.iter().zip(&t.body).rev() {
                    let (d, g) = q.backward(bt, &dh, stats);
                    dh = d;
                    per_module.push(g);
                }
                for ((d, &g), &h) in dx
                    .as_mut_slice()
                    .iter_mut()
                    .zip(dy.as_slice())
                    .zip(dh.as_slice())
                {
                    *d = g + h;
                }
                per_module.into_iter().rev().flatten().collect()
            }
        };
        (dx, grads)
    }

    /// The module's tensors in `state_dict` order, with their keys within the module
    /// (`weight`, `bias`, `alpha`, `body.1.weight`, ...).
    pub fn tensors(&self) -> Vec<(String, &[f64])> {
        match &self.op {
            QuotientOp::Linear { weight, bias, .. } => {
                let mut t = vec![("weight".to_string(), weight.as_slice())];
                if let Some(b) = bias {
                    t.push(("bias".to_string(), b.as_slice()));
                }
                t
            }
            QuotientOp::Activation(_) | QuotientOp::Identity => Vec::new(),
            QuotientOp::LayerNorm { gamma_beta, .. } => match gamma_beta {
                Some((g, b)) => vec![
                    ("weight".into(), g.as_slice()),
                    ("bias".into(), b.as_slice()),
                ],
                None => Vec::new(),
            },
            QuotientOp::RmsNorm { gamma, .. } => vec![("weight".into(), gamma.as_slice())],
            QuotientOp::BatchNorm { gamma, beta, .. } => {
                vec![
                    ("weight".into(), gamma.as_slice()),
                    ("bias".into(), beta.as_slice()),
                ]
            }
            QuotientOp::Gate(a) => vec![("alpha".into(), std::slice::from_ref(a))],
            QuotientOp::Shift(s) => vec![("bias".into(), std::slice::from_ref(s))],
            QuotientOp::Residual(body) => body
                .iter()
                .flat_map(|q| {
                    let key = q.path.rsplit('.').next().unwrap_or_default().to_string();
                    q.tensors()
                        .into_iter()
                        .map(move |(k, v)| (format!("body.{key}.{k}"), v))
                })
                .collect(),
        }
    }

    /// The module's tensors, mutable, in [`QuotientModule::tensors`] order.
    fn tensors_mut(&mut self) -> Vec<&mut [f64]> {
        match &mut self.op {
            QuotientOp::Linear { weight, bias, .. } => {
                let mut t = vec![weight.as_mut_slice()];
                if let Some(b) = bias {
                    t.push(b.as_mut_slice());
                }
                t
            }
            QuotientOp::Activation(_) | QuotientOp::Identity => Vec::new(),
            QuotientOp::LayerNorm { gamma_beta, .. } => match gamma_beta {
                Some((g, b)) => vec![g.as_mut_slice(), b.as_mut_slice()],
                None => Vec::new(),
            },
            QuotientOp::RmsNorm { gamma, .. } => vec![gamma.as_mut_slice()],
            QuotientOp::BatchNorm { gamma, beta, .. } => {
                vec![gamma.as_mut_slice(), beta.as_mut_slice()]
            }
            QuotientOp::Gate(v) | QuotientOp::Shift(v) => vec![std::slice::from_mut(v)],
            QuotientOp::Residual(body) => body.iter_mut().flat_map(|q| q.tensors_mut()).collect(),
        }
    }

    /// The plain-SGD step scale of every entry of every tensor ([`QuotientModule::tensors`]
    /// order), given the class sizes `input` of the module's input group: |C|/|D| for V[D, C],
    /// 1/|D| for a per-class vector, 1 for a scalar (module docs).
    fn step_scales(&self, input: &[usize]) -> Vec<Vec<f64>> {
        let out = self.sizes();
        let per_class: Vec<f64> = out.iter().map(|&d| 1.0 / d as f64).collect();
        match &self.op {
            QuotientOp::Linear { bias, .. } => {
                let v = out
                    .iter()
                    .flat_map(|&d| input.iter().map(move |&c| c as f64 / d as f64))
                    .collect();
                let mut s = vec![v];
                if bias.is_some() {
                    s.push(per_class);
                }
                s
            }
            QuotientOp::Activation(_) | QuotientOp::Identity => Vec::new(),
            QuotientOp::LayerNorm { gamma_beta, .. } => match gamma_beta {
                Some(_) => vec![per_class.clone(), per_class],
                None => Vec::new(),
            },
            QuotientOp::RmsNorm { .. } => vec![per_class],
            QuotientOp::BatchNorm { .. } => vec![per_class.clone(), per_class],
            QuotientOp::Gate(_) | QuotientOp::Shift(_) => vec![vec![1.0]],
            QuotientOp::Residual(body) => {
                let mut here = input.to_vec();
                let mut s = Vec::new();
                for q in body {
                    s.extend(q.step_scales(&here));
                    here = q.sizes();
                }
                s
            }
        }
    }
}

impl QuotientNet {
    /// The quotient of `net` under `partition`, a partition of `net`'s unit graph
    /// (`UnitGraph::of_net(net)`, free groups in [`super::symmetry::UnitGraph::free`] order)
    /// that should be equitable: linear weights are summed over the input classes along the row
    /// of each output class's first unit, per-unit vectors read at that unit. Refused when the
    /// partition does not fit the network's groups, or a pointwise module or residual add
    /// would join units its input keeps apart (or split them).
    pub fn new(net: &Net<f64>, partition: &Partition) -> Result<Self, QuotientError> {
        let groups = 1 + count_groups(net.modules());
        if partition.classes.len() + 2 != groups {
            return Err(QuotientError::Shape(format!(
                "{} partitioned groups for a network with {} groups of units besides its input and output",
                partition.classes.len(),
                groups - 2
            )));
        }
        let inputs = net.modules()[0].in_width();
        let mut walk = Walk {
            partition,
            next: 1,
            last: groups - 1,
        };
        let mut here = singletons(inputs);
        let mut modules = Vec::new();
        for (path, m) in net.prefixes().iter().zip(net.modules()) {
            let q = walk.module(m.as_ref(), path.clone(), &here)?;
            here = q.members.clone();
            modules.push(q);
        }
        Ok(QuotientNet { inputs, modules })
    }

    /// The number of classes of every module's output group, in module order (a block's
    /// output only; its body's widths are its modules').
    pub fn widths(&self) -> Vec<usize> {
        self.modules.iter().map(|q| q.members.len()).collect()
    }

    fn tapes(&self, x: &Matrix<f64>, stats: BatchStats) -> Vec<Tape> {
        let mut tapes: Vec<Tape> = Vec::with_capacity(self.modules.len());
        for q in &self.modules {
            let t = q.forward(tapes.last().map_or(x, |t| &t.y), stats);
            tapes.push(t);
        }
        tapes
    }

    /// The logits of a batch `x` (batch, inputs): (batch, outputs).
    pub fn forward(&self, x: &Matrix<f64>, stats: BatchStats) -> Matrix<f64> {
        let mut tapes = self.tapes(x, stats);
        tapes.pop().expect("at least one module").y
    }

    /// The mean loss of the batch `x` and the gradients of every tensor
    /// ([`QuotientNet::tensors`] order), the quotient's own (module docs), with
    /// [`Loss::forward_backward`] as the network's passes use it.
    pub fn loss_and_grads(
        &self,
        x: &Matrix<f64>,
        loss: Loss,
        targets: Targets<'_, f64>,
        stats: BatchStats,
    ) -> (f64, Vec<Vec<f64>>) {
        let tapes = self.tapes(x, stats);
        let logits = &tapes.last().expect("at least one module").y;
        let mut dy = Matrix::zeros(logits.rows(), logits.cols());
        let value = loss.forward_backward(logits, targets, Some(&mut dy));
        let mut per_module = Vec::with_capacity(self.modules.len());
        for (q, t) in self.modules.iter().zip(&tapes).rev() {
            let (dx, g) = q.backward(t, &dy, stats);
            dy = dx;
            per_module.push(g);
        }
        (value, per_module.into_iter().rev().flatten().collect())
    }

    /// Every tensor with its `state_dict` key (the full network's names), in order.
    pub fn tensors(&self) -> Vec<(String, &[f64])> {
        self.modules
            .iter()
            .flat_map(|q| {
                q.tensors()
                    .into_iter()
                    .map(move |(k, v)| (format!("{}.{k}", q.path), v))
            })
            .collect()
    }

    /// The plain-SGD step scale of every tensor entry (module docs): |C|/|D| for V[D, C], 1/|D|
    /// for a per-class vector (bias, gamma, beta), 1 for a gate's or shift's scalar.
    pub fn step_scales(&self) -> Vec<Vec<f64>> {
        let mut here = vec![1; self.inputs];
        let mut s = Vec::new();
        for q in &self.modules {
            s.extend(q.step_scales(&here));
            here = q.sizes();
        }
        s
    }

    /// One plain-SGD step that reproduces `θ -= lr dθ` on the full network:
    /// `θ_q -= lr · scale · dθ_q` with the quotient's own gradients `grads`
    /// ([`QuotientNet::loss_and_grads`]) and [`QuotientNet::step_scales`].
    pub fn sgd_step(&mut self, grads: &[Vec<f64>], lr: f64) {
        let scales = self.step_scales();
        let tensors: Vec<&mut [f64]> = self
            .modules
            .iter_mut()
            .flat_map(|q| q.tensors_mut())
            .collect();
        assert_eq!(tensors.len(), grads.len(), "one gradient per tensor");
        for ((t, g), s) in tensors.into_iter().zip(grads).zip(&scales) {
            for ((p, &g), &s) in t.iter_mut().zip(g).zip(s) {
                *p -= lr * s * g;
            }
        }
    }
}
