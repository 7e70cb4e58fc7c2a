//! Mean-field signal propagation through a wide random *residual* network (Yang & Schoenholz
//! 2017, "Mean field residual networks: on the edge of chaos"), built on the plain maps of
//! [`super::meanfield`].
//!
//! The network: a stream x_0 of width N and L blocks
//!
//! ```text
//! x_{l+1} = x_l + g F_l(x_l)
//! F(x)    = W_m φ(W_{m-1} φ( ... φ(W_1 x + b_1) ... ) + b_{m-1}) + b_m
//! ```
//! with m ≥ 1 linear layers of width N per branch (weights N(0, σ_w²/N), biases N(0, σ_b²), fresh
//! in every layer of every block) and φ *between* consecutive linears only: never on the stream,
//! never on the branch's input or output. That is initscope's `res(linear(N) φ linear(N) gate(g))`
//! for m = 2 (Yang & Schoenholz's "full residual" block) and `res(linear(N) gate(g))` for m = 1
//! (a linear branch). g is a fixed scalar gate: ReZero's / SkipInit's α, g = 1 a plain residual
//! net. (Yang & Schoenholz's own α is something else: the exponent of their α-ReLU family
//! φ(x) = x^α for x > 0, not a gate.)
//!
//! Length map, with q_l = E[x_{l,i}²] per unit (over inputs and weights):
//!
//! ```text
//! q_{l+1} = q_l + 2g E[x_i F_i(x)] + g² E[F_i(x)²] = q_l + g² V_F(q_l)
//! V_F(q)  = Q^{m-1}(σ_w² q + σ_b²),   Q(s) = σ_w² E_z[φ(√s z)²] + σ_b²   (the plain length map)
//! ```
//! The first linear reads the stream itself, so its pre-activations have variance σ_w² q + σ_b²;
//! each further linear applies Q. The cross term vanishes because
//!
//! ```text
//! F_i(x) = Σ_j W_m[i, j] h_j + b_m[i],   E[x_i W_m[i, j] h_j] = E[W_m[i, j]] E[x_i h_j] = 0,
//! E[x_i b_m[i]] = 0,
//! ```
//! where W_m and b_m are drawn independently of x and of h (which depend only on earlier blocks
//! and on W_1..W_{m-1}) and have mean zero. (In one finite network the realised cross term is
//! a fluctuation of relative size about 1/√(N B) over N units and B inputs, not a bias.)
//!
//! Correlation map: two inputs of equal second moment q_0 and correlation c_0 keep equal lengths
//! (both follow the length map); their covariance k_l = E[x_{l,i}(a) x_{l,i}(b)] follows
//!
//! ```text
//! k_{l+1} = k_l + g² C_F(q_l, k_l),   c_l = k_l / q_l
//! C_F:  (s, κ) = (σ_w² q + σ_b², σ_w² k + σ_b²), then m - 1 times
//!       (s, κ) ← (Q(s), σ_w² E[φ(u_1) φ(u_2)] + σ_b²),  (u_1, u_2) ~ N(0, [[s, κ], [κ, s]])
//! ```
//! (the cross terms vanish as above).
//!
//! Growth with depth. A positively homogeneous φ (ReLU, the identity) makes V_F affine:
//! ReLU has Q(s) = σ_w² s / 2 + σ_b², so V_F(q) = κ q + β with κ = σ_w² (σ_w²/2)^{m-1}, and
//! q_l + β/κ = (1 + g²κ)^l (q_0 + β/κ): exponential for every g ≠ 0. A bounded φ (tanh, sigmoid)
//! bounds V_F(q) ≤ σ_w² sup φ² + σ_b² (for m ≥ 2), so q grows at most linearly in l (tanh:
//! q_l ≈ g² (σ_w² + σ_b²) l once √q is well past tanh's linear range).
//!
//! The class reported ([`Growth::class`]) reads the increments Δ_l = q_{l+1} - q_l = g² V_F(q_l),
//! through their per-layer log-rate r_l = ln(Δ_l / Δ_{l-1}): an exponential q has constant
//! increments' rate (exactly ln(1 + g²κ) for an affine V_F, whatever β and q_0), a power law
//! q ~ l^p has r_l ≈ (p - 1)/l, decaying like 1/l, and a bounded V_F has r_l → 0 faster still.
//! The criterion, over depth L ≥ [`MIN_CLASSIFY_DEPTH`]: with r_mid = r at l = ⌈L/2⌉ and r_end
//! = r at l = L - 1, **exponential** when r_end > 0 and r_end ≥ 3/4 r_mid (a power law gives
//! about 1/2), **polynomial** otherwise, **constant** when every increment is 0 (g = 0 or a
//! branch that outputs 0). It describes the range computed: a tanh stream that is still small
//! (tanh nearly linear) grows exponentially until q reaches tanh's saturation scale, and a note
//! says so when the branch's gain V_F(q)/q at q = 10^12 ([`Growth::asymptotic_gain`]) shows
//! that V_F is bounded. Beside the class, two least-squares fits over l ∈ [⌈L/2⌉, L]: the rate
//! r of ln q_l ≈ a + r l and the exponent p of ln q_l ≈ a + p ln l.
//!
//! Expectations: the length map is exact for positively homogeneous φ and otherwise uses
//! composite Simpson rules that stay accurate at any q ([`gaussian_mean_fine`]); the
//! correlations' 2-D expectations use the Gauss–Hermite product rule (ReLU's closed form), which
//! loses accuracy once the pre-activations' spread dwarfs the node spacing (a note says when).

use serde::{Deserialize, Serialize};

use super::meanfield::{gaussian_mean_fine, Propagation};
use crate::activation::Activation;
use crate::error::{Error, Result};

/// The shallowest network whose growth is classified (the criterion compares two rates).
pub const MIN_CLASSIFY_DEPTH: usize = 4;

/// The deepest network computed.
pub const MAX_RESIDUAL_DEPTH: usize = 10_000;

/// The longest branch computed.
pub const MAX_BRANCH_DEPTH: usize = 64;

/// r_end ≥ this × r_mid (and r_end > 0) classifies the growth as exponential.
pub const EXPONENTIAL_RATE_RATIO: f64 = 0.75;

/// Where the branch's asymptotic gain V_F(q)/q is read.
const ASYMPTOTIC_Q: f64 = 1e12;

/// q beyond this is treated as an overflow and the iteration stops.
const Q_MAX: f64 = 1e300;

/// A residual block's branch: m linears with φ between them, and the gate g.
pub struct ResidualBranch {
    pub prop: Propagation,
    /// m, the number of linear layers in the branch.
    pub branch_depth: usize,
    /// g, the scalar the branch is multiplied by.
    pub gate: f64,
}

impl ResidualBranch {
    /// Q(s) = σ_w² E[φ(√s z)²] + σ_b². For a positively homogeneous φ (ReLU, leaky ReLU, the
    /// identity) E[φ(√s z)²] = s E[φ(z)²], which Gauss–Hermite's symmetric nodes give exactly
    /// (up to rounding); for any other φ [`gaussian_mean_fine`], since a residual stream's
    /// variance grows without bound, past where a fixed Gauss–Hermite rule resolves φ.
    pub fn length_map(&self, s: f64) -> f64 {
        let (p, act) = (&self.prop, self.prop.act);
        if act.positively_homogeneous() {
            return p.length_map(s);
        }
        p.sigma_w2 * gaussian_mean_fine(|u| act.f(u).powi(2), s) + p.sigma_b2
    }

    /// V_F(q) = Q^{m-1}(σ_w² q + σ_b²): the branch output's variance from a stream of second
    /// moment q.
    pub fn branch_variance(&self, q: f64) -> f64 {
        let p = &self.prop;
        let mut s = p.sigma_w2 * q + p.sigma_b2;
        for _ in 1..self.branch_depth {
            s = self.length_map(s);
        }
        s
    }

    /// (V_F(q), C_F(q, k)): the branch outputs' variance and covariance for two inputs of
    /// second moment q and covariance k. The covariance's 2-D expectation is
    /// [`Propagation::pair_mean`] (Gauss–Hermite product rule; closed form for ReLU).
    pub fn branch_covariance(&self, q: f64, k: f64) -> (f64, f64) {
        let p = &self.prop;
        let (mut s, mut kappa) = (p.sigma_w2 * q + p.sigma_b2, p.sigma_w2 * k + p.sigma_b2);
        for _ in 1..self.branch_depth {
            let c = if s > 0.0 {
                (kappa / s).clamp(-1.0, 1.0)
            } else {
                1.0
            };
            kappa = p.sigma_w2 * p.pair_mean(s, c) + p.sigma_b2;
            s = self.length_map(s);
        }
        (s, kappa)
    }

    /// One block of the length map: q + g² V_F(q).
    pub fn length_step(&self, q: f64) -> f64 {
        q + self.gate * self.gate * self.branch_variance(q)
    }
}

/// How q grows with depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthClass {
    /// Every increment is 0: q_l = q_0.
    Constant,
    Polynomial,
    Exponential,
}

impl GrowthClass {
    pub fn name(self) -> &'static str {
        match self {
            GrowthClass::Constant => "constant",
            GrowthClass::Polynomial => "polynomial",
            GrowthClass::Exponential => "exponential",
        }
    }
}

/// The growth of q over the depth range (see the module docs for the criterion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// None when the range is shorter than [`MIN_CLASSIFY_DEPTH`] (or q overflowed before it).
    pub class: Option<GrowthClass>,
    /// r of the fit ln q_l ≈ a + r l over l ∈ [⌈L/2⌉, L] (per layer; e^r the growth factor).
    pub exp_rate: Option<f64>,
    /// p of the fit ln q_l ≈ a + p ln l over the same range.
    pub power_exponent: Option<f64>,
    /// ln(Δ_l / Δ_{l-1}) at l = ⌈L/2⌉ and at l = L - 1.
    pub increment_rate_mid: Option<f64>,
    pub increment_rate_end: Option<f64>,
    /// V_F(q)/q at q = 10^12: about 0 for a bounded φ, the asymptotic gain κ for a
    /// positively homogeneous one (then q grows by 1 + g²κ per block in the end).
    pub asymptotic_gain: f64,
}

/// The residual mean field over depth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualMeanField {
    pub activation: String,
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    /// m, linear layers per branch.
    pub branch_depth: usize,
    /// g, the branch's scalar gate.
    pub gate: f64,
    /// L, blocks asked for.
    pub depth: usize,
    /// q_l for l = 0..=L (shorter when q overflowed f64).
    pub q: Vec<f64>,
    /// c_l, the correlation of two inputs with c_0 at l = 0, for the same l as `q`.
    pub c: Vec<f64>,
    pub growth: Growth,
    pub notes: Vec<String>,
}

/// Least-squares slope of y on x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The inputs of [`residual_mean_field`].
#[derive(Clone, Copy, Debug)]
pub struct ResidualConfig {
    pub act: Activation,
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    /// m ≥ 1.
    pub branch_depth: usize,
    /// g (any finite value; only g² enters).
    pub gate: f64,
    /// L ≥ 1 blocks.
    pub depth: usize,
    /// q_0 > 0, the input's second moment per unit.
    pub q0: f64,
    /// c_0 ∈ [-1, 1], the two inputs' correlation.
    pub c0: f64,
    /// Gauss–Hermite nodes per dimension.
    pub nodes: usize,
}

impl ResidualConfig {
    fn check(&self) -> Result<()> {
        let bad = |field: &str, reason: String| Err(Error::config(field, reason));
        if !(self.sigma_w2.is_finite() && self.sigma_w2 > 0.0) {
            return bad("sigma_w2", format!("must be > 0, got {}", self.sigma_w2));
        }
        if !(self.sigma_b2.is_finite() && self.sigma_b2 >= 0.0) {
            return bad("sigma_b2", format!("must be >= 0, got {}", self.sigma_b2));
        }
        if !(1..=MAX_BRANCH_DEPTH).contains(&self.branch_depth) {
            return bad(
                "branch depth",
                format!(
                    "must be in 1..={MAX_BRANCH_DEPTH}, got {}",
                    self.branch_depth
                ),
            );
        }
        if !self.gate.is_finite() {
            return bad(
                "gate",
                format!("must be a finite number, got {}", self.gate),
            );
        }
        if !(1..=MAX_RESIDUAL_DEPTH).contains(&self.depth) {
            return bad(
                "depth",
                format!("must be in 1..={MAX_RESIDUAL_DEPTH}, got {}", self.depth),
            );
        }
        if !(self.q0.is_finite() && self.q0 > 0.0) {
            return bad("q0", format!("must be > 0, got {}", self.q0));
        }
        if !(-1.0..=1.0).contains(&self.c0) {
            return bad("c0", format!("must be in [-1, 1], got {}", self.c0));
        }
        if !(8..=400).contains(&self.nodes) {
            return bad("nodes", format!("must be in 8..=400, got {}", self.nodes));
        }
        Ok(())
    }
}

/// q_l and c_l for l = 0..=L, and the growth of q.
pub fn residual_mean_field(cfg: &ResidualConfig) -> Result<ResidualMeanField> {
    cfg.check()?;
    let branch = ResidualBranch {
        prop: Propagation::new(cfg.act, cfg.sigma_w2, cfg.sigma_b2, cfg.nodes),
        branch_depth: cfg.branch_depth,
        gate: cfg.gate,
    };
    let g2 = cfg.gate * cfg.gate;
    let mut notes = Vec::new();
    let (mut q, mut k) = (cfg.q0, cfg.c0 * cfg.q0);
    let (mut qs, mut cs) = (vec![q], vec![cfg.c0]);
    // Δ_l = g² V_F(q_l), l = 0..L-1, computed directly (no cancellation in q_{l+1} - q_l).
    let mut increments = Vec::with_capacity(cfg.depth);
    for l in 0..cfg.depth {
        let (v, kf) = branch.branch_covariance(q, k);
        let next = q + g2 * v;
        if !(next.is_finite() && next < Q_MAX) {
            notes.push(format!(
                "q overflows f64 after block {l}: the table stops at l = {l}"
            ));
            break;
        }
        increments.push(g2 * v);
        q = next;
        k += g2 * kf;
        qs.push(q);
        cs.push((k / q).clamp(-1.0, 1.0));
    }
    let reached = qs.len() - 1;
    let asymptotic_gain = branch.branch_variance(ASYMPTOTIC_Q) / ASYMPTOTIC_Q;
    let growth = classify(&qs, &increments, asymptotic_gain);
    let largest_pre = cfg.sigma_w2 * qs[reached] + cfg.sigma_b2;
    let spacing = largest_pre.sqrt() * std::f64::consts::PI / (2.0 * cfg.nodes as f64).sqrt();
    // The length map is exact or fine-grained; the correlations' 2-D expectations use the
    // Gauss–Hermite product rule (closed form for ReLU, exact for the identity).
    if spacing > 0.5
        && cfg.branch_depth >= 2
        && !matches!(
            cfg.act.almost_everywhere(),
            Activation::Relu | Activation::Identity
        )
    {
        notes.push(format!(
            "the branch's pre-activations reach variance {largest_pre:.3e}: {} Gauss-Hermite nodes are {spacing:.2} apart there in units of the pre-activation, so the correlations c_l are resolved poorly (q_l is not affected; use more --nodes)",
            cfg.nodes
        ));
    }
    if growth.class == Some(GrowthClass::Exponential) && asymptotic_gain < 1e-9 {
        notes.push(format!(
            "the growth is exponential over this range only: {} is bounded (V_F(q)/q -> 0), so q turns polynomial (at most linear) once it is well past the activation's linear range",
            cfg.act.spec()
        ));
    }
    if reached < MIN_CLASSIFY_DEPTH {
        notes.push(format!(
            "growth not classified: it needs at least {MIN_CLASSIFY_DEPTH} blocks"
        ));
    }
    Ok(ResidualMeanField {
        activation: cfg.act.spec(),
        sigma_w2: cfg.sigma_w2,
        sigma_b2: cfg.sigma_b2,
        branch_depth: cfg.branch_depth,
        gate: cfg.gate,
        depth: cfg.depth,
        q: qs,
        c: cs,
        growth,
        notes,
    })
}

/// The fits and the class (criterion in the module docs). `increments[l]` = q_{l+1} - q_l.
fn classify(qs: &[f64], increments: &[f64], asymptotic_gain: f64) -> Growth {
    let depth = qs.len() - 1;
    let mut growth = Growth {
        class: None,
        exp_rate: None,
        power_exponent: None,
        increment_rate_mid: None,
        increment_rate_end: None,
        asymptotic_gain,
    };
    if depth < MIN_CLASSIFY_DEPTH {
        return growth;
    }
    let from = depth.div_ceil(2).max(1);
    let range = from..=depth;
    growth.exp_rate = slope(
        &range
            .clone()
            .map(|l| (l as f64, qs[l].ln()))
            .collect::<Vec<_>>(),
    );
    growth.power_exponent = slope(
        &range
            .map(|l| ((l as f64).ln(), qs[l].ln()))
            .collect::<Vec<_>>(),
    );
    if increments.iter().all(|&d| d == 0.0) {
        growth.class = Some(GrowthClass::Constant);
        return growth;
    }
    let rate = |l: usize| {
        let (a, b) = (increments[l - 1], increments[l]);
        (a > 0.0 && b > 0.0).then(|| (b / a).ln())
    };
    growth.increment_rate_mid = rate(from);
    growth.increment_rate_end = rate(depth - 1);
    let exponential = match (growth.increment_rate_mid, growth.increment_rate_end) {
        (Some(mid), Some(end)) => end > 0.0 && end >= EXPONENTIAL_RATE_RATIO * mid,
        _ => false,
    };
    growth.class = Some(if exponential {
        GrowthClass::Exponential
    } else {
        GrowthClass::Polynomial
    });
    growth
}
