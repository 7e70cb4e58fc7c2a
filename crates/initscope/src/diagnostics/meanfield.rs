//! Mean-field signal propagation through a wide random network (Poole et al. 2016, "Exponential
//! expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017, "Deep
//! Information Propagation"), for any activation φ, with weights N(0, σ_w²/N) and biases
//! N(0, σ_b²):
//!
//! ```text
//! length map       Q(q) = σ_w² E_z[φ(√q z)²] + σ_b²,           q* = Q(q*)
//! χ_1              σ_w² E_z[φ'(√q* z)²]                          (order < 1 < chaos)
//! correlation map  C(c) = (σ_w² E[φ(u_1) φ(u_2)] + σ_b²) / Q(q*), u_1 = √q* z_1,
//!                  u_2 = √q* (c z_1 + √(1-c²) z_2);              c* = C(c*)
//! depth scales     ξ_q = -1/ln Q'(q*) (numerical slope),   ξ_c = -1/ln χ_c,
//!                  χ_c = σ_w² E[φ'(u_1) φ'(u_2)] at c*
//! critical σ_w²    the σ_w² with χ_1 = 1 for the given σ_b²
//! ```
//! Expectations use Gauss–Hermite quadrature (nodes from the Golub–Welsch eigenproblem, faer's
//! symmetric eigensolver), 1-D with n nodes and the 2-D ones as the product rule.
//! q* is found by bracketing and bisection on Q(q) - q (never by iterating a slowly converging
//! map); when Q(q) > q for every q up to 1e12 the length map diverges and there is no fixed
//! point (e.g. ReLU with σ_w² ≥ 2), which is reported as such.

use serde::{Deserialize, Serialize};

use crate::activation::Activation;

/// Gauss–Hermite rule for E_{z~N(0,1)}[g(z)] = Σ_i w_i g(x_i).
#[derive(Clone, Debug)]
pub struct GaussHermite {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The n-point rule for the standard normal (probabilists' Hermite weight): the Jacobi matrix
    /// has zero diagonal and off-diagonal sqrt(k), k = 1..n-1; nodes are its eigenvalues and
    /// weights the squared first components of its unit eigenvectors.
    pub fn new(n: usize) -> Self {
        let jacobi = faer::Mat::<f64>::from_fn(n, n, |i, j| {
            if i + 1 == j || j + 1 == i {
                (i.max(j) as f64).sqrt()
            } else {
                0.0
            }
        });
        let eig = jacobi
            .self_adjoint_eigen(faer::Side::Lower)
            .expect("the Jacobi matrix is symmetric and well conditioned");
        let s = eig.S().column_vector();
        let u = eig.U();
        let nodes = (0..n).map(|i| s[i]).collect();
        let weights = (0..n).map(|i| u[(0, i)] * u[(0, i)]).collect();
        GaussHermite { nodes, weights }
    }

    /// E[g(z)].
    pub fn mean(&self, g: impl Fn(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&x, &w)| w * g(x))
            .sum()
    }

    /// E[g(z_1, z_2)] for independent standard normals.
    pub fn mean2(&self, g: impl Fn(f64, f64) -> f64) -> f64 {
        let mut s = 0.0;
        for (&x1, &w1) in self.nodes.iter().zip(&self.weights) {
            for (&x2, &w2) in self.nodes.iter().zip(&self.weights) {
                s += w1 * w2 * g(x1, x2);
            }
        }
        s
    }
}

/// E[g(u)] for u ~ N(0, s) by composite Simpson rules in u, accurate whatever s (where
/// Gauss–Hermite with a fixed node count resolves φ's features at u ≈ 0 ever worse as s grows):
/// |u| ≤ min(30, 12√s) with step min(0.01, √s/100), where activations bend; the tails out to
/// 12√s, where they are asymptotically smooth (linear, constant, decaying), with step √s/200.
/// At most about 11 000 evaluations of g.
pub fn gaussian_mean_fine(g: impl Fn(f64) -> f64, s: f64) -> f64 {
    let sd = s.max(0.0).sqrt();
    if sd == 0.0 {
        return g(0.0);
    }
    let density = |u: f64| (-0.5 * u * u / s).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
    let h = |u: f64| g(u) * density(u);
    let simpson = |a: f64, b: f64, step: f64| {
        let n = (((b - a) / step).ceil() as usize)
            .max(2)
            .next_multiple_of(2);
        let w = (b - a) / n as f64;
        let mut sum = h(a) + h(b);
        for i in 1..n {
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * h(a + i as f64 * w);
        }
        sum * w / 3.0
    };
    let umax = 12.0 * sd;
    let core = umax.min(30.0);
    let mut total = simpson(-core, core, (0.01f64).min(sd / 100.0));
    if umax > core {
        let step = sd / 200.0;
        total += simpson(-umax, -core, step) + simpson(core, umax, step);
    }
    total
}

/// The mean-field quantities for one (activation, σ_w², σ_b²).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanField {
    pub activation: String,
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    /// None when the length map diverges (no fixed point).
    pub q_star: Option<f64>,
    pub chi_1: Option<f64>,
    pub c_star: Option<f64>,
    pub chi_c: Option<f64>,
    /// Infinite at criticality (a slope of exactly 1).
    pub xi_q: Option<f64>,
    pub xi_c: Option<f64>,
    /// The critical σ_w² for this σ_b² (χ_1 = 1), when asked for and found.
    pub sigma_w2_critical: Option<f64>,
    /// Plain-language notes ("no fixed point: ...", "ordered phase", ...).
    pub notes: Vec<String>,
}

/// The smallest q at which expectations are evaluated (so that q* = 0 still has derivatives).
const Q_FLOOR: f64 = 1e-12;

/// The quadrature and the network's variances.
pub struct Propagation {
    pub act: Activation,
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    gh: GaussHermite,
}

impl Propagation {
    /// `nodes` Gauss–Hermite nodes per dimension (100 is plenty for smooth φ; kinks converge
    /// more slowly). φ is taken [`Activation::almost_everywhere`]: expectations over Gaussians
    /// do not see a derivative's value at the single point 0 (`relu:grad0=1` is `relu` here).
    pub fn new(act: Activation, sigma_w2: f64, sigma_b2: f64, nodes: usize) -> Self {
        Propagation {
            act: act.almost_everywhere(),
            sigma_w2,
            sigma_b2,
            gh: GaussHermite::new(nodes),
        }
    }

    /// Q(q) = σ_w² E[φ(√q z)²] + σ_b².
    pub fn length_map(&self, q: f64) -> f64 {
        let s = q.max(0.0).sqrt();
        self.sigma_w2 * self.gh.mean(|z| self.act.f(s * z).powi(2)) + self.sigma_b2
    }

    /// The stable fixed point q* of the length map, or None when it diverges.
    pub fn q_star(&self) -> Option<f64> {
        let f = |q: f64| self.length_map(q) - q;
        if f(Q_FLOOR) <= 0.0 {
            return Some(0.0);
        }
        let mut hi = 1.0;
        while f(hi) > 0.0 {
            hi *= 2.0;
            if hi > 1e12 {
                return None;
            }
        }
        let mut lo = hi / 2.0;
        while lo > Q_FLOOR && f(lo) <= 0.0 {
            lo /= 2.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-15 * hi {
                break;
            }
        }
        Some(0.5 * (lo + hi))
    }

    /// χ_1 = σ_w² E[φ'(√q z)²]; for ReLU the closed form σ_w² / 2 (an odd node count puts a
    /// node on the kink, where φ'(0) is a convention, and was 12% off with 101 nodes).
    pub fn chi_1(&self, q: f64) -> f64 {
        if self.act == Activation::Relu {
            return 0.5 * self.sigma_w2;
        }
        let s = q.max(Q_FLOOR).sqrt();
        self.sigma_w2
            * self
                .gh
                .mean(|z| self.act.df(s * z, self.act.f(s * z)).powi(2))
    }

    /// E[φ(u_1) φ(u_2)] for u_1 = √q z_1, u_2 = √q (c z_1 + √(1-c²) z_2). For ReLU the
    /// arc-cosine kernel's closed form q (√(1-c²) + (π - arccos c) c) / (2π) (Cho & Saul 2009):
    /// the product rule converges slowly on the kink (about 1e-3 off in c with 100 nodes).
    pub fn pair_mean(&self, q: f64, c: f64) -> f64 {
        let q = q.max(Q_FLOOR);
        let s = q.sqrt();
        let c = c.clamp(-1.0, 1.0);
        let r = (1.0 - c * c).max(0.0).sqrt();
        if self.act == Activation::Relu {
            q * (r + (std::f64::consts::PI - c.acos()) * c) / (2.0 * std::f64::consts::PI)
        } else {
            self.gh
                .mean2(|z1, z2| self.act.f(s * z1) * self.act.f(s * (c * z1 + r * z2)))
        }
    }

    /// C(c) at length q: (σ_w² E[φ(u_1) φ(u_2)] + σ_b²) / Q(q) ([`Propagation::pair_mean`]).
    pub fn correlation_map(&self, q: f64, c: f64) -> f64 {
        let q = q.max(Q_FLOOR);
        ((self.sigma_w2 * self.pair_mean(q, c) + self.sigma_b2) / self.length_map(q))
            .clamp(-1.0, 1.0)
    }

    /// χ_c = σ_w² E[φ'(u_1) φ'(u_2)] at (q, c); for ReLU the closed form
    /// σ_w² (π - arccos c) / (2π) (the probability that both are positive).
    pub fn chi_c(&self, q: f64, c: f64) -> f64 {
        if self.act == Activation::Relu {
            let c = c.clamp(-1.0, 1.0);
            return self.sigma_w2 * (std::f64::consts::PI - c.acos())
                / (2.0 * std::f64::consts::PI);
        }
        let s = q.max(Q_FLOOR).sqrt();
        let r = (1.0 - c * c).max(0.0).sqrt();
        let d = |u: f64| self.act.df(u, self.act.f(u));
        self.sigma_w2 * self.gh.mean2(|z1, z2| d(s * z1) * d(s * (c * z1 + r * z2)))
    }

    /// The stable correlation fixed point. C(1) = 1 always, and its slope there is χ_1: in the
    /// ordered phase and at criticality (χ_1 ≤ 1) c* = 1; in the chaotic phase the stable fixed
    /// point lies in [0, 1) (C(0) ≥ 0 since E(φ(u_1)φ(u_2)) = E(φ)² at c = 0) and is found by
    /// bisection on C(c) - c.
    pub fn c_star(&self, q: f64) -> f64 {
        if self.chi_1(q) <= 1.0 {
            return 1.0;
        }
        let (mut lo, mut hi) = (0.0, 1.0 - 1e-9);
        if self.correlation_map(q, lo) - lo <= 0.0 {
            return 0.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.correlation_map(q, mid) - mid > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Q'(q) by a central difference (one-sided at q = 0).
    pub fn length_slope(&self, q: f64) -> f64 {
        let h = 1e-5 * q.max(1e-3);
        if q > h {
            (self.length_map(q + h) - self.length_map(q - h)) / (2.0 * h)
        } else {
            (self.length_map(q + h) - self.length_map(q)) / h
        }
    }
}

/// -1 / ln(s): the depth over which a deviation shrinks by e (infinite at s = 1).
fn depth_scale(slope: f64) -> f64 {
    if slope <= 0.0 {
        0.0
    } else if (slope - 1.0).abs() < 1e-12 {
        f64::INFINITY
    } else {
        -1.0 / slope.ln()
    }
}

/// The critical σ_w² (χ_1 = 1) for σ_b²: scan upward from σ_w² = 0.01 by factors of 1.25 to the
/// first σ_w² with χ_1 > 1 (at most 1e3), then bisect. Scanning upward keeps every evaluation in
/// the range where q* is moderate and the quadrature accurate; None if no crossing is found.
pub fn critical_sigma_w2(act: Activation, sigma_b2: f64, nodes: usize) -> Option<f64> {
    let gh = GaussHermite::new(nodes);
    let excess = |w2: f64| {
        let p = Propagation {
            act: act.almost_everywhere(),
            sigma_w2: w2,
            sigma_b2,
            gh: gh.clone(),
        };
        match p.q_star() {
            Some(q) => p.chi_1(q) - 1.0,
            None => 1.0, // diverging length map: beyond the edge of chaos
        }
    };
    let mut lo = 0.01;
    if excess(lo) >= 0.0 {
        return None;
    }
    let mut hi = lo;
    loop {
        hi *= 1.25;
        if hi > 1e3 {
            return None;
        }
        if excess(hi) >= 0.0 {
            break;
        }
        lo = hi;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if excess(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi {
            break;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Everything for one configuration.
pub fn mean_field(
    act: Activation,
    sigma_w2: f64,
    sigma_b2: f64,
    critical: bool,
    nodes: usize,
) -> MeanField {
    let p = Propagation::new(act, sigma_w2, sigma_b2, nodes);
    let mut notes = Vec::new();
    let q_star = p.q_star();
    let (chi_1, c_star, chi_c, xi_q, xi_c) = match q_star {
        None => {
            notes.push(
                "no fixed point: the length map diverges (Q(q) > q for every q), so the signal variance grows without bound with depth"
                    .to_string(),
            );
            (None, None, None, None, None)
        }
        Some(q) => {
            let chi_1 = p.chi_1(q);
            // At q* = 0 the network is linear to first order and the correlation map is the
            // identity: c* is not determined, and χ_c = χ_1.
            let c = (q > 0.0).then(|| p.c_star(q));
            let chi_c = c.map_or(chi_1, |c| p.chi_c(q, c));
            if q == 0.0 {
                notes.push("q* = 0: the signal variance decays to zero with depth; the correlation map is the identity to first order, so c* is not determined".to_string());
            }
            let spacing = q.sqrt() * std::f64::consts::PI / (2.0 * nodes as f64).sqrt();
            if spacing > 0.5 {
                notes.push(format!(
                    "q* is large: {nodes} Gauss-Hermite nodes are {spacing:.2} apart in units of the pre-activation, so features of φ narrower than that are resolved poorly (use more --nodes)"
                ));
            }
            notes.push(
                if (chi_1 - 1.0).abs() < 1e-6 {
                    "chi_1 = 1: the edge of chaos (critical initialization)"
                } else if chi_1 < 1.0 {
                    "chi_1 < 1: ordered phase (nearby inputs converge)"
                } else {
                    "chi_1 > 1: chaotic phase (nearby inputs decorrelate)"
                }
                .to_string(),
            );
            (
                Some(chi_1),
                c,
                Some(chi_c),
                Some(depth_scale(p.length_slope(q))),
                Some(depth_scale(chi_c)),
            )
        }
    };
    MeanField {
        activation: act.spec(),
        sigma_w2,
        sigma_b2,
        q_star,
        chi_1,
        c_star,
        chi_c,
        xi_q,
        xi_c,
        sigma_w2_critical: if critical {
            critical_sigma_w2(act, sigma_b2, nodes)
        } else {
            None
        },
        notes,
    }
}
