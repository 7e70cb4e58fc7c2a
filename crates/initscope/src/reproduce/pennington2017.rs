//! Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
//! dynamical isometry", eq. 13 and fig. 2.
//!
//! Dynamical isometry: the eigenvalues of J J^T of the input-output Jacobian, normalised by
//! their mean, have variance `L (mu_2/mu_1^2 - 1 - s_1)` for L nonlinear layers, with
//! `mu_k = E[f'(h)^{2k}]` over the fixed point `h ~ N(0, q*)` and `s_1 = 0` for orthogonal, `-1`
//! for Gaussian weights; the linear output layer adds `-s_1` (normalised variances of free
//! products add).
//!
//! Measured: that variance for 16 nonlinear layers of width 512 at criticality (tanh with
//! sigma_b^2 = 0.05 and sigma_w^2 on the critical line, ReLU with sigma_w^2 = 2, sigma_b^2 = 0),
//! orthogonal and Gaussian weights, averaged over 3 inputs drawn on the fixed point.
//!
//! Criterion: the variance of the mean-normalised eigenvalues of J J^T is within 25% of the
//! free-probability prediction for every case, and tanh with orthogonal weights has the
//! smallest.
//!
//! Deviations: width 512 and 3 inputs instead of the N -> infinity limit (finite width adds
//! spread); one depth (L = 16).

use serde_json::{json, Value};

use super::{inits, new, row, Reproduction};
use crate::activation::Activation;
use crate::diagnostics::meanfield::{critical_sigma_w2, mean_field};
use crate::error::Result;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::nn::init_params;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "pennington2017",
        "Pennington, Schoenholz & Ganguli 2017, Resurrecting the sigmoid in deep learning through \
         dynamical isometry, eq. 13 and fig. 2",
        "the variance of the mean-normalised eigenvalues of J J^T is within 25% of the \
         free-probability prediction for every case, and tanh with orthogonal weights has the \
         smallest",
        "width 512 and 3 inputs instead of the N -> infinity limit (finite width adds spread); one \
         depth (L = 16)",
    );
    let (width, depth) = (512, 16);
    let cases = [
        (
            "tanh, orthogonal",
            Activation::Tanh,
            0.05,
            "orthogonal",
            0.0,
        ),
        (
            "tanh, Gaussian",
            Activation::Tanh,
            0.05,
            "kaiming_normal",
            -1.0,
        ),
        ("relu, orthogonal", Activation::Relu, 0.0, "orthogonal", 0.0),
        (
            "relu, Gaussian",
            Activation::Relu,
            0.0,
            "kaiming_normal",
            -1.0,
        ),
    ];
    let mut measured = Vec::new();
    let mut variances = Vec::new();
    for (label, act, sb2, kind, s1) in cases {
        let sw2 = if act == Activation::Relu {
            2.0
        } else {
            critical_sigma_w2(act, sb2, 100).unwrap_or(f64::NAN)
        };
        // ReLU at sigma_w^2 = 2, sigma_b^2 = 0 keeps any q (its mu_k do not depend on q): q = 1.
        let q = if act == Activation::Relu {
            1.0
        } else {
            mean_field(act, sw2, sb2, false, 100)
                .q_star
                .unwrap_or(f64::NAN)
        };
        let gh = crate::diagnostics::meanfield::GaussHermite::new(100);
        let slope2 = |z: f64| {
            let h = q.sqrt() * z;
            act.df(h, act.f(h)).powi(2)
        };
        let mu1 = gh.mean(slope2);
        let mu2 = gh.mean(|z| slope2(z).powi(2));
        let predicted = depth as f64 * (mu2 / (mu1 * mu1) - 1.0 - s1) - s1;
        let dims = vec![width; depth + 2];
        let spec = format!("{kind}:gain={}", sw2.sqrt());
        let mut layer_inits = inits(&spec, depth + 1).expect("spec");
        if sb2 > 0.0 {
            let b =
                Init::parse("--bias-init", &format!("normal:std={}", sb2.sqrt())).expect("spec");
            for li in &mut layer_inits {
                li.bias = b.clone();
            }
        }
        let p = init_params(&dims, &layer_inits, true, 3, act);
        // Inputs on the fixed point: x ~ N(0, q*) per coordinate.
        let x = {
            let mut rng = crate::rng::stream(11, crate::rng::Stream::Data);
            Matrix::from_vec(
                3,
                width,
                (0..3 * width)
                    .map(|_| q.sqrt() * crate::rng::normal(&mut rng))
                    .collect(),
            )
        };
        let mut var = 0.0;
        for i in 0..x.rows() {
            let xi = x.select_rows(&[i]);
            let spec = crate::diagnostics::spectrum::jacobian_spectrum(&p, act, &xi, 1);
            var += spec.variance / (spec.mean * spec.mean) / x.rows() as f64;
        }
        let ok = (var - predicted).abs() <= 0.25 * predicted.abs().max(0.04);
        r.rows.push(row(
            format!("{label}: Var(lambda)/E[lambda]^2, L = {depth}"),
            format!("{var:.3}"),
            &format!("{predicted:.3} (mu_1 = {mu1:.3}, mu_2 = {mu2:.3}, s_1 = {s1})"),
            ok,
        ));
        variances.push(var);
        measured.push(
            json!({"case": label, "sigma_w2": sw2, "sigma_b2": sb2, "q_star": q,
                             "mu1": mu1, "mu2": mu2, "predicted": predicted, "measured": var}),
        );
    }
    let smallest = variances.iter().cloned().fold(f64::MAX, f64::min);
    r.rows.push(row(
        "smallest spread",
        format!("{:.3}", variances[0]),
        "tanh, orthogonal",
        variances[0] == smallest,
    ));
    r.measured = Value::Array(measured);
    Ok(r)
}
