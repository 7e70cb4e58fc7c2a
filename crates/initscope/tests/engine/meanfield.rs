//! Mean-field propagation against values derived independently (closed forms, and a Simpson-rule
//! fixed-point iteration written here).

use initscope::activation::Activation;
use initscope::diagnostics::meanfield::{critical_sigma_w2, mean_field, GaussHermite};
use initscope::diagnostics::meanfield_residual::{
    residual_mean_field, GrowthClass, ResidualConfig, ResidualMeanField,
};

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
    // relu'(0) = 1 is the same function but at one point: the same mean field.
    let one = mean_field(Activation::ReluGrad1, 1.0, 1.0, true, 101);
    let plain = mean_field(Activation::Relu, 1.0, 1.0, true, 101);
    assert_eq!(one.activation, "relu:grad0=1");
    assert_eq!((one.q_star, one.chi_1), (plain.q_star, plain.chi_1));
    close(one.chi_1.unwrap(), 0.5, 1e-12, "chi_1 of relu:grad0=1");
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

// ---- Residual networks (Yang & Schoenholz 2017) ----

fn residual(
    act: Activation,
    (sigma_w2, sigma_b2): (f64, f64),
    branch_depth: usize,
    gate: f64,
    depth: usize,
) -> ResidualMeanField {
    residual_mean_field(&ResidualConfig {
        act,
        sigma_w2,
        sigma_b2,
        branch_depth,
        gate,
        depth,
        q0: 1.0,
        c0: 0.3,
        nodes: 100,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn relu_residual_length_map_is_the_closed_form_exponential_for_any_gate() {
    // ReLU: Q(s) = w2 s / 2 + b2, so V_F(q) = kappa q + beta, affine, and
    // q_l + beta/kappa = (1 + g^2 kappa)^l (q_0 + beta/kappa).
    for (w2, b2, m, g) in [
        (2.0, 0.0, 2, 1.0),
        (1.5, 0.1, 2, 0.5),
        (1.5, 0.1, 3, 0.05),
        (2.0, 0.2, 1, 0.3),
    ] {
        let (mut kappa, mut beta) = (w2, b2);
        for _ in 1..m {
            kappa *= w2 / 2.0;
            beta = w2 / 2.0 * beta + b2;
        }
        let mf = residual(Activation::Relu, (w2, b2), m, g, 40);
        let lambda = 1.0 + g * g * kappa;
        for (l, &q) in mf.q.iter().enumerate() {
            let want = (1.0 + beta / kappa) * lambda.powi(l as i32) - beta / kappa;
            close(
                q,
                want,
                1e-11,
                &format!("q_{l} for {w2}, {b2}, m {m}, g {g}"),
            );
        }
        let growth = &mf.growth;
        assert_eq!(growth.class, Some(GrowthClass::Exponential), "{growth:?}");
        // The increments grow by exactly 1 + g^2 kappa per block.
        close(
            growth.increment_rate_end.unwrap(),
            lambda.ln(),
            1e-9,
            "rate",
        );
        close(
            growth.increment_rate_mid.unwrap(),
            lambda.ln(),
            1e-9,
            "rate",
        );
        close(growth.asymptotic_gain, kappa, 1e-9, "asymptotic gain");
    }
}

#[test]
fn a_linear_branch_ignores_the_activation_and_a_zero_gate_keeps_q() {
    // m = 1: F(x) = W x + b, V_F(q) = w2 q + b2 whatever phi is; identity with m = 3:
    // V_F(q) = w2^3 q + b2 (1 + w2 + w2^2).
    let (w2, b2, g) = (0.8, 0.05, 0.7);
    let mf = residual(Activation::Tanh, (w2, b2), 1, g, 12);
    let mut q = 1.0;
    for (l, &got) in mf.q.iter().enumerate() {
        close(got, q, 1e-12, &format!("linear branch q_{l}"));
        q += g * g * (w2 * q + b2);
    }
    let mf = residual(Activation::Identity, (w2, b2), 3, g, 12);
    let mut q = 1.0;
    for (l, &got) in mf.q.iter().enumerate() {
        close(got, q, 1e-9, &format!("identity branch q_{l}"));
        q += g * g * (w2.powi(3) * q + b2 * (1.0 + w2 + w2 * w2));
    }
    assert_eq!(mf.growth.class, Some(GrowthClass::Exponential));
    let mf = residual(Activation::Relu, (2.0, 0.1), 2, 0.0, 10);
    assert!(mf.q.iter().all(|&q| q == 1.0), "{:?}", mf.q);
    assert_eq!(mf.growth.class, Some(GrowthClass::Constant));
}

#[test]
fn tanh_residual_growth_is_polynomial_and_matches_an_independent_iteration() {
    let (w2, b2, g) = (1.0, 0.05, 1.0);
    // 200 nodes: tanh(s z) has poles at z = i pi / (2 s), close to the real axis once s is a
    // few units.
    let mf = residual_mean_field(&ResidualConfig {
        act: Activation::Tanh,
        sigma_w2: w2,
        sigma_b2: b2,
        branch_depth: 2,
        gate: g,
        depth: 40,
        q0: 1.0,
        c0: 0.3,
        nodes: 200,
    })
    .unwrap();
    // Simpson-rule iteration of q_{l+1} = q_l + g^2 (w2 E[tanh(sqrt(w2 q + b2) z)^2] + b2).
    let mut q: f64 = 1.0;
    for (l, &got) in mf.q.iter().enumerate() {
        close(got, q, 1e-9, &format!("q_{l}"));
        let s = (w2 * q + b2).sqrt();
        let step = g * g * (w2 * simpson_mean(|z| (s * z).tanh().powi(2)) + b2);
        // Bounded phi: each block adds at most g^2 (w2 + b2).
        assert!(step <= g * g * (w2 + b2));
        q += step;
    }
    let mf = residual(Activation::Tanh, (w2, b2), 2, g, 300);
    let growth = &mf.growth;
    assert_eq!(growth.class, Some(GrowthClass::Polynomial), "{growth:?}");
    let p = growth.power_exponent.unwrap();
    assert!(p > 0.9 && p < 1.1, "q ~ l^{p}, want about linear");
    assert!(growth.asymptotic_gain < 1e-9, "{growth:?}");
    // ReLU with the same variances and gate: exponential.
    let relu = residual(Activation::Relu, (w2, b2), 2, g, 300);
    assert_eq!(relu.growth.class, Some(GrowthClass::Exponential));
}

#[test]
fn a_small_tanh_stream_grows_exponentially_until_tanh_saturates_and_says_so() {
    let mf = residual_mean_field(&ResidualConfig {
        act: Activation::Tanh,
        sigma_w2: 1.0,
        sigma_b2: 0.0,
        branch_depth: 2,
        gate: 0.1,
        depth: 30,
        q0: 1e-6,
        c0: 0.3,
        nodes: 100,
    })
    .unwrap();
    assert_eq!(mf.growth.class, Some(GrowthClass::Exponential));
    assert!(
        mf.notes.iter().any(|n| n.contains("over this range only")),
        "{:?}",
        mf.notes
    );
}

#[test]
fn relu_residual_correlations_follow_the_arc_cosine_kernel() {
    // E[relu(u1) relu(u2)] = s / (2 pi) (sqrt(1 - c^2) + (pi - arccos c) c) (Cho & Saul 2009).
    let (w2, b2, m, g) = (1.6, 0.1, 3, 0.6);
    let mf = residual(Activation::Relu, (w2, b2), m, g, 25);
    let (mut q, mut k): (f64, f64) = (1.0, 0.3);
    for l in 0..=25 {
        close(mf.c[l], k / q, 1e-8, &format!("c_{l}"));
        let (mut s, mut kappa) = (w2 * q + b2, w2 * k + b2);
        for _ in 1..m {
            let c = (kappa / s).clamp(-1.0, 1.0);
            let e = s / (2.0 * std::f64::consts::PI)
                * ((1.0 - c * c).sqrt() + (std::f64::consts::PI - c.acos()) * c);
            kappa = w2 * e + b2;
            s = w2 * s / 2.0 + b2;
        }
        q += g * g * s;
        k += g * g * kappa;
    }
}

#[test]
fn residual_config_is_checked() {
    let ok = ResidualConfig {
        act: Activation::Relu,
        sigma_w2: 1.0,
        sigma_b2: 0.0,
        branch_depth: 2,
        gate: 1.0,
        depth: 10,
        q0: 1.0,
        c0: 0.0,
        nodes: 50,
    };
    for (bad, needle) in [
        (
            ResidualConfig {
                branch_depth: 0,
                ..ok
            },
            "branch depth",
        ),
        (ResidualConfig { depth: 0, ..ok }, "depth"),
        (
            ResidualConfig {
                gate: f64::NAN,
                ..ok
            },
            "gate",
        ),
        (ResidualConfig { q0: 0.0, ..ok }, "q0"),
        (ResidualConfig { c0: 1.5, ..ok }, "c0"),
        (
            ResidualConfig {
                sigma_w2: -1.0,
                ..ok
            },
            "sigma_w2",
        ),
    ] {
        let e = residual_mean_field(&bad).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

/// q_l and c_l measured in one random residual network built by the engine: the stream after
/// each block of `res(linear(N) act linear(N) gate(g))*L` (weights N(0, w2/N), biases
/// N(0, b2)) for `pairs` pairs of standard normal inputs with correlation `c0`.
fn measured_stream(
    act: &str,
    (w2, b2): (f64, f64),
    gate: f64,
    depth: usize,
    (width, pairs, c0): (usize, usize, f64),
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    use initscope::init::Init;
    use initscope::nn::build::{build_net, BuildOptions};
    use initscope::nn::spec::NetSpec;
    use initscope::nn::{Net, Pass, Workspace};
    use initscope::rng::{self, Stream};
    use initscope::Matrix;
    let spec = format!("res(linear({width}) {act} linear({width}) gate({gate}))*{depth}");
    let init = |std: f64| Init::parse("init", &format!("normal:0,{std}")).unwrap();
    let net: Net<f64> = build_net(
        &NetSpec::parse(&spec).unwrap(),
        &BuildOptions::new(
            width,
            width,
            init((w2 / width as f64).sqrt()),
            Some(init(b2.sqrt())),
            seed,
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut r = rng::stream(seed, Stream::Data);
    let mut x = Vec::with_capacity(2 * pairs * width);
    for _ in 0..pairs {
        let a: Vec<f64> = (0..width).map(|_| rng::normal(&mut r)).collect();
        let b: Vec<f64> = a
            .iter()
            .map(|&a| c0 * a + (1.0 - c0 * c0).sqrt() * rng::normal(&mut r))
            .collect();
        x.extend(a);
        x.extend(b);
    }
    let x = Matrix::from_vec(2 * pairs, width, x);
    let mut ws = Workspace::new(&net, 2 * pairs);
    ws.load_rows(&x, &(0..2 * pairs).collect::<Vec<_>>());
    net.forward(&mut ws, Pass::Eval);
    let stats = |m: &Matrix<f64>| {
        let (mut sq, mut cross) = (0.0, 0.0);
        for p in 0..pairs {
            let (a, b) = (m.row(2 * p), m.row(2 * p + 1));
            sq += a.iter().chain(b).map(|v| v * v).sum::<f64>();
            cross += a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        }
        let q = sq / (2 * pairs * width) as f64;
        (q, cross / (pairs * width) as f64 / q)
    };
    let (mut qs, mut cs) = (Vec::new(), Vec::new());
    for m in std::iter::once(&ws.input).chain(ws.caches.iter().map(|c| c.output())) {
        let (q, c) = stats(m);
        qs.push(q);
        cs.push(c);
    }
    (qs, cs)
}

/// The mean-field q_l and c_l against the mean over `NETS` independent random networks of 512
/// units and 128 inputs (64 pairs with c_0 = 0.3), at every depth. The tolerance is 5 standard
/// errors of that mean, the measurement's own sampling error estimated from the replicates
/// (weights: one network realises each layer's gain with relative sd up to sqrt(2/N), about 6%
/// when the inputs share a common direction, as ReLU streams do, and the errors compound over
/// blocks; inputs: 65 536 squared entries, 0.6%). The standard errors are checked to stay small,
/// so that the test can fail: a wrong map (g instead of g^2, a missing 1/2 for ReLU, a φ on the
/// stream) is off by far more at depth 12.
#[test]
fn residual_mean_field_matches_measured_forward_passes() {
    const NETS: usize = 6;
    let depth = 12;
    for (act, w2, b2, g) in [
        (Activation::Tanh, 1.5, 0.05, 0.8),
        (Activation::Relu, 2.0, 0.0, 0.5),
    ] {
        let runs: Vec<(Vec<f64>, Vec<f64>)> = (0..NETS as u64)
            .map(|seed| measured_stream(&act.spec(), (w2, b2), g, depth, (512, 64, 0.3), seed))
            .collect();
        let mf = residual(act, (w2, b2), 2, g, depth);
        let mean_and_se = |xs: Vec<f64>| {
            let n = xs.len() as f64;
            let m = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
            (m, (var / n).sqrt())
        };
        for l in 0..=depth {
            let (q, se) = mean_and_se(runs.iter().map(|r| r.0[l]).collect());
            assert!(se < 0.05 * q, "{act} l {l}: standard error {se} of q {q}");
            assert!(
                (q - mf.q[l]).abs() <= 5.0 * se,
                "{act} l {l}: measured q {q} ± {se}, mean field {}",
                mf.q[l]
            );
            let (c, se) = mean_and_se(runs.iter().map(|r| r.1[l]).collect());
            assert!(se < 0.02, "{act} l {l}: standard error {se} of c {c}");
            assert!(
                (c - mf.c[l]).abs() <= 5.0 * se,
                "{act} l {l}: measured c {c} ± {se}, mean field {}",
                mf.c[l]
            );
        }
    }
}
