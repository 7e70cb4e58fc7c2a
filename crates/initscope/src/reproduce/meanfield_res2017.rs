//! Yang & Schoenholz 2017, "Mean field residual networks: on the edge of chaos", secs. 3-4: the
//! length q^l of a random residual network's stream grows polynomially with depth for tanh
//! branches and exponentially for ReLU branches, whatever the (nonzero) gate.
//!
//! The network (built by the engine from a `--net` spec, inputs and outputs of width N, no
//! linear outside the blocks):
//!
//! ```text
//! res(linear(N) φ linear(N) gate(g))*L:   x_{l+1} = x_l + g (W_2 φ(W_1 x_l + b_1) + b_2)
//! W ~ N(0, σ_w²/N),  b ~ N(0, σ_b²),  fresh in every layer
//! ```
//! Measured: q^l = (1/(N B)) Σ_{rows, units} x_{l,i}² for B random inputs scaled to q^0 = 1
//! exactly, averaged over S seeds (each seed draws new weights and inputs), at three depths per
//! case. Predicted: the residual length map of [`residual_mean_field`] from q^0 = 1,
//!
//! ```text
//! q^{l+1} = q^l + g² V_F(q^l),   V_F(q) = σ_w² E_z[φ(√(σ_w² q + σ_b²) z)²] + σ_b²
//! ```
//! For ReLU V_F is affine (V_F(q) = κ q + β, κ = σ_w⁴/2), so q^l + β/κ = (1 + g²κ)^l (q^0 + β/κ):
//! exponential for every g ≠ 0, and E[q^l] obeys it exactly at any width (each pre-activation is
//! exactly Gaussian given the previous layer). For tanh V_F ≤ σ_w² + σ_b², so q^l grows at most
//! linearly.
//!
//! The growth class of the measured q^l is read from its per-block log-rate over the second and
//! the last quarter of the depth, r(a, b) = ln(q^b / q^a) / (b - a): **exponential** when
//! r(3L/4, L) ≥ 3/4 r(L/4, L/2) (an exponential keeps its rate: ratio 1; a power law q ~ l^p has
//! ratio ln(4/3)/ln 2 = 0.415), **polynomial** otherwise: the threshold is
//! [`EXPONENTIAL_RATE_RATIO`], the one the mean-field classifier applies to its increments.
//!
//! Criterion (fixed from the expected finite-width spread before measuring): every measured q^l
//! (seed mean) within 20% of the mean-field q^l, and the measured growth class equal to the
//! mean field's. The 20%: a block multiplies q by 1 + g²κ plus a fluctuation of relative size
//! about 2g √(σ_w²/N) / (1 + g²κ) (the cross term 2g⟨x, F⟩/|x|², mean 0), which compounds over
//! depth into a log-normal spread of about 0.4 at the deepest ReLU row; 32 (16) seeds bring the
//! seed mean's standard error to about 7%, and 20% is about 3 of them.
//!
//! Deviations: width 256 and 8 inputs per seed instead of the paper's wider nets and exact
//! expectations; branches of two linears (the paper's "full residual" block) only; depths 20-50;
//! the growth class from a two-rate criterion instead of the paper's asymptotic fits.

use serde_json::json;

use super::{new, row, Reproduction};
use crate::activation::Activation;
use crate::diagnostics::meanfield_residual::{
    residual_mean_field, GrowthClass, ResidualConfig, EXPONENTIAL_RATE_RATIO,
};
use crate::error::Result;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::nn::build::{build_net, BuildOptions};
use crate::nn::spec::NetSpec;
use crate::nn::{Net, Pass, Workspace};
use crate::rng::{normal, stream, Stream};

/// N, the stream's width.
const WIDTH: usize = 256;

/// B, random inputs per seed.
const INPUTS: usize = 8;

/// The criterion's tolerance on measured / predicted q^l.
const TOLERANCE: f64 = 0.2;

/// One network family: its branch, depth, the depths reported and the seeds averaged.
struct Case {
    label: &'static str,
    act: &'static str,
    sigma_w2: f64,
    sigma_b2: f64,
    gate: f64,
    depth: usize,
    rows: [usize; 3],
    seeds: u64,
}

const CASES: [Case; 3] = [
    Case {
        label: "tanh, g = 1",
        act: "tanh",
        sigma_w2: 1.0,
        sigma_b2: 0.05,
        gate: 1.0,
        depth: 48,
        rows: [12, 24, 48],
        seeds: 8,
    },
    Case {
        label: "ReLU, g = 1",
        act: "relu",
        sigma_w2: 2.0,
        sigma_b2: 0.0,
        gate: 1.0,
        depth: 20,
        rows: [5, 10, 20],
        seeds: 32,
    },
    Case {
        label: "ReLU, g = 0.25",
        act: "relu",
        sigma_w2: 2.0,
        sigma_b2: 0.0,
        gate: 0.25,
        depth: 48,
        rows: [12, 24, 48],
        seeds: 16,
    },
];

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "meanfield_res2017",
        "Yang & Schoenholz 2017, Mean field residual networks: on the edge of chaos, secs. 3-4",
        "every measured q^l (mean over seeds) within 20% of the residual mean-field recursion, \
         and the measured growth class (per-block log-rate of q over the last quarter >= 3/4 of \
         that over the second quarter: exponential, else polynomial) equal to the mean field's",
        "width 256 with 8 inputs per seed (8-32 seeds) instead of exact expectations; branches of \
         two linears (the paper's full residual block); depths 20-48; the growth class from a \
         two-rate criterion instead of asymptotic fits",
    );
    let mut measured = Vec::new();
    for case in &CASES {
        let act = Activation::parse("act", case.act)?;
        let mf = residual_mean_field(&ResidualConfig {
            act,
            sigma_w2: case.sigma_w2,
            sigma_b2: case.sigma_b2,
            branch_depth: 2,
            gate: case.gate,
            depth: case.depth,
            q0: 1.0,
            c0: 0.0,
            nodes: 100,
        })?;
        let q = measured_q(case)?;
        for &l in &case.rows {
            let ratio = q[l] / mf.q[l];
            r.rows.push(row(
                format!("{}: q^{l}", case.label),
                format!("{:.4e} ({:+.1}%)", q[l], 100.0 * (ratio - 1.0)),
                &format!("{:.4e} (mean field)", mf.q[l]),
                (ratio - 1.0).abs() <= TOLERANCE,
            ));
        }
        let class = growth_class(&q);
        let predicted = mf.growth.class;
        r.rows.push(row(
            format!("{}: growth of q^l", case.label),
            format!(
                "{} (rate ratio {:.2})",
                class.name(),
                rate_ratio(&q).unwrap_or(f64::NAN)
            ),
            predicted.map_or("unclassified", |c| c.name()),
            predicted == Some(class),
        ));
        measured.push(json!({
            "case": case.label, "activation": case.act, "sigma_w2": case.sigma_w2,
            "sigma_b2": case.sigma_b2, "gate": case.gate, "seeds": case.seeds,
            "width": WIDTH, "inputs": INPUTS,
            "q_measured": q, "q_mean_field": mf.q,
            "growth_measured": class.name(), "growth_mean_field": predicted.map(|c| c.name()),
            "rate_ratio": rate_ratio(&q),
        }));
    }
    r.measured = json!(measured);
    Ok(r)
}

/// q^l for l = 0..=L, averaged over the case's seeds: each seed builds the network from its
/// spec and forwards B Gaussian inputs scaled to second moment exactly 1.
fn measured_q(case: &Case) -> Result<Vec<f64>> {
    let (sw, sb) = ((case.sigma_w2 / WIDTH as f64).sqrt(), case.sigma_b2.sqrt());
    let bias = if case.sigma_b2 > 0.0 {
        format!("[normal:std={sb}]")
    } else {
        "zeros".to_string()
    };
    let linear = format!("linear({WIDTH}, init=[normal:std={sw}], bias={bias})");
    let gate = if case.gate == 1.0 {
        String::new()
    } else {
        format!(" gate({})", case.gate)
    };
    let spec = NetSpec::parse(&format!(
        "res({linear} {} {linear}{gate})*{}",
        case.act, case.depth
    ))?;
    let mut sum = vec![0.0; case.depth + 1];
    for seed in 0..case.seeds {
        let opts = BuildOptions::new(WIDTH, WIDTH, Init::Zeros, Some(Init::Zeros), seed);
        let net: Net<f64> = build_net(&spec, &opts)?;
        let mut rng = stream(seed, Stream::Data);
        let mut x = Matrix::zeros(INPUTS, WIDTH);
        for i in 0..INPUTS {
            let row: Vec<f64> = (0..WIDTH).map(|_| normal(&mut rng)).collect();
            let scale = (WIDTH as f64 / row.iter().map(|v| v * v).sum::<f64>()).sqrt();
            for (j, v) in row.iter().enumerate() {
                x.set(i, j, v * scale);
            }
        }
        let mut ws = Workspace::new(&net, INPUTS);
        let idx: Vec<usize> = (0..INPUTS).collect();
        ws.load_rows(&x, &idx);
        net.forward(&mut ws, Pass::Eval);
        sum[0] += second_moment(&x);
        for (l, cache) in ws.caches.iter().enumerate() {
            sum[l + 1] += second_moment(cache.output());
        }
    }
    Ok(sum.iter().map(|s| s / case.seeds as f64).collect())
}

/// (1/(rows cols)) Σ x², the per-unit second moment over the rows.
fn second_moment(x: &Matrix<f64>) -> f64 {
    let n = (x.rows() * x.cols()) as f64;
    x.as_slice().iter().map(|v| v * v).sum::<f64>() / n
}

/// r(3L/4, L) / r(L/4, L/2), r(a, b) = ln(q^b / q^a) / (b - a).
fn rate_ratio(q: &[f64]) -> Option<f64> {
    let depth = q.len() - 1;
    let rate = |a: usize, b: usize| (q[b] / q[a]).ln() / (b - a) as f64;
    let early = rate(depth / 4, depth / 2);
    (early > 0.0).then(|| rate(3 * depth / 4, depth) / early)
}

/// Exponential when the log-rate holds up ([`rate_ratio`] ≥ [`EXPONENTIAL_RATE_RATIO`]),
/// constant when q never moves, polynomial otherwise.
fn growth_class(q: &[f64]) -> GrowthClass {
    match rate_ratio(q) {
        None => GrowthClass::Constant,
        Some(ratio) if ratio >= EXPONENTIAL_RATE_RATIO => GrowthClass::Exponential,
        Some(_) => GrowthClass::Polynomial,
    }
}
