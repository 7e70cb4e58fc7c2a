//! Mean-field propagation against values derived independently (closed forms, and a Simpson-rule
//! fixed-point iteration written here).

use initscope::activation::Activation;
use initscope::diagnostics::meanfield::{critical_sigma_w2, mean_field, GaussHermite};

fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1e-12),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn gauss_hermite_integrates_gaussian_moments_exactly() {
    let gh = GaussHermite::new(20);
    for (k, want) in [
        (0, 1.0),
        (2, 1.0),
        (4, 3.0),
        (6, 15.0),
        (8, 105.0),
        (3, 0.0),
    ] {
        let got = gh.mean(|z| z.powi(k));
        assert!(
            (got - want).abs() < 1e-10 * want.max(1.0),
            "E[z^{k}] = {got}"
        );
    }
    close(gh.mean2(|a, b| (a * b).powi(2)), 1.0, 1e-12, "E[z1^2 z2^2]");
}

#[test]
fn tanh_without_bias_is_critical_at_sigma_w2_one() {
    close(
        critical_sigma_w2(Activation::Tanh, 0.0, 100).unwrap(),
        1.0,
        1e-6,
        "critical sigma_w^2",
    );
    let mf = mean_field(Activation::Tanh, 0.8, 0.0, false, 100);
    assert_eq!(mf.q_star, Some(0.0));
    close(mf.chi_1.unwrap(), 0.8, 1e-9, "chi_1 = sigma_w^2 tanh'(0)^2");
}

#[test]
fn relu_matches_its_closed_forms() {
    // Q(q) = sigma_w^2 q / 2 + sigma_b^2, chi_1 = sigma_w^2 / 2.
    let mf = mean_field(Activation::Relu, 1.0, 1.0, true, 100);
    close(mf.q_star.unwrap(), 2.0, 1e-9, "q*");
    close(mf.chi_1.unwrap(), 0.5, 1e-12, "chi_1");
    close(mf.xi_q.unwrap(), 1.0 / 2f64.ln(), 1e-5, "xi_q");
    close(mf.sigma_w2_critical.unwrap(), 2.0, 1e-9, "critical");
    for (w2, b2) in [(2.5, 0.0), (2.0, 0.0), (3.0, 0.1)] {
        let mf = mean_field(Activation::Relu, w2, b2, false, 100);
        assert_eq!(mf.q_star, None, "{w2}, {b2}");
        assert!(mf.notes[0].starts_with("no fixed point"), "{:?}", mf.notes);
    }
}

#[test]
fn a_linear_network_has_the_textbook_fixed_points() {
    // q* = sigma_b^2 / (1 - sigma_w^2); c* = 1; chi_c = chi_1 = sigma_w^2.
    let mf = mean_field(Activation::Identity, 0.5, 0.5, false, 60);
    close(mf.q_star.unwrap(), 1.0, 1e-9, "q*");
    close(mf.c_star.unwrap(), 1.0, 1e-9, "c*");
    close(mf.chi_c.unwrap(), 0.5, 1e-9, "chi_c");
    close(mf.xi_c.unwrap(), 1.0 / 2f64.ln(), 1e-9, "xi_c");
}

/// E[g(z)] for z ~ N(0, 1) by Simpson's rule on [-12, 12].
fn simpson_mean(g: impl Fn(f64) -> f64) -> f64 {
    let n = 24_000;
    let h = 24.0 / n as f64;
    let mut s = 0.0;
    for i in 0..=n {
        let z = -12.0 + i as f64 * h;
        let w = if i == 0 || i == n {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += w * g(z) * (-0.5 * z * z).exp();
    }
    s * h / 3.0 / (2.0 * std::f64::consts::PI).sqrt()
}

#[test]
fn tanh_fixed_point_and_chi_1_agree_with_an_independent_iteration() {
    let (w2, b2) = (1.5, 0.05);
    let mut q: f64 = 1.0;
    for _ in 0..300 {
        q = w2 * simpson_mean(|z| (q.sqrt() * z).tanh().powi(2)) + b2;
    }
    let chi = w2 * simpson_mean(|z| (1.0 - (q.sqrt() * z).tanh().powi(2)).powi(2));
    let mf = mean_field(Activation::Tanh, w2, b2, true, 100);
    close(mf.q_star.unwrap(), q, 1e-8, "q*");
    close(mf.chi_1.unwrap(), chi, 1e-8, "chi_1");
    // Ordered phase: correlations converge to 1 and chi_c there is chi_1.
    close(mf.c_star.unwrap(), 1.0, 1e-9, "c*");
    close(mf.chi_c.unwrap(), chi, 1e-6, "chi_c");
    // The critical point lies above: chi_1 < 1 here, and at the critical sigma_w^2 it is 1.
    let crit = mf.sigma_w2_critical.unwrap();
    assert!(crit > w2);
    let at = mean_field(Activation::Tanh, crit, b2, false, 100);
    close(at.chi_1.unwrap(), 1.0, 1e-9, "chi_1 at the critical point");
}
