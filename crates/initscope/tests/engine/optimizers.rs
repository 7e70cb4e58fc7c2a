//! Optimizer steps against values computed by hand from torch.optim's update rules.

use initscope::nn::{LayerParams, Net, Pass, Workspace};
use initscope::optim::{
    clip_grad_norm, warmup_factor, OptimConfig, OptimKind, Optimizer, Schedule,
};
use initscope::{Activation, Matrix};

/// A 1x1 layer with weight 1 and bias 1, both receiving gradient 0.5 at every step.
fn run(kind: OptimKind, lr: f64, wd: f64, steps: usize) -> f64 {
    let mut net = Net::<f64>::from_params(
        &[LayerParams {
            weight: Matrix::from_vec(1, 1, vec![1.0]),
            bias: Some(vec![1.0]),
        }],
        Activation::Identity,
    );
    let grads = vec![Matrix::from_vec(1, 1, vec![0.5]); 2];
    let mut config = OptimConfig::new(kind);
    config.lr = lr;
    config.weight_decay = wd;
    let mut opt = Optimizer::new(config, &net);
    for _ in 0..steps {
        opt.step(&mut net, &grads, lr);
    }
    assert_eq!(
        net.layer(0).weight.get(0, 0),
        net.layer(0).bias[0],
        "weight and bias see the same rule"
    );
    net.layer(0).bias[0]
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn sgd_and_weight_decay() {
    close(run(OptimKind::Sgd, 0.1, 0.0, 1), 0.95);
    // g = 0.5 + 0.1 * 1 = 0.6
    close(run(OptimKind::Sgd, 0.1, 0.1, 1), 0.94);
}

#[test]
fn momentum_without_dampening() {
    // b1 = 0.5, p = 0.95; b2 = 0.9*0.5 + 0.5 = 0.95, p = 0.95 - 0.095
    close(run(OptimKind::Momentum, 0.1, 0.0, 2), 0.855);
}

#[test]
fn nesterov_in_torchs_form() {
    // b1 = 0.5, d = 0.5 + 0.9*0.5 = 0.95, p = 0.905; b2 = 0.95, d = 0.5 + 0.855, p = 0.905 - 0.1355
    close(run(OptimKind::Nesterov, 0.1, 0.0, 2), 0.7695);
}

#[test]
fn adam_first_step_and_coupled_decay() {
    // m = 0.05, v = 0.00025; step = lr/(1-0.9) * m / (sqrt(v)/sqrt(1-0.999) + 1e-8)
    let step = 1.0 * 0.05 / (0.00025f64.sqrt() / 0.001f64.sqrt() + 1e-8);
    close(run(OptimKind::Adam, 0.1, 0.0, 1), 1.0 - step);
    // With coupled decay 0.1: g = 0.6, m = 0.06, v = 0.00036: the first step is still ~lr.
    let step = 0.06 / (0.00036f64.sqrt() / 0.001f64.sqrt() + 1e-8);
    close(run(OptimKind::Adam, 0.1, 0.1, 1), 1.0 - step);
}

#[test]
fn adam_second_step() {
    let (b1, b2, lr, eps, g) = (0.9f64, 0.999f64, 0.1, 1e-8, 0.5);
    let mut p = 1.0;
    let (mut m, mut v) = (0.0, 0.0);
    for t in 1..=2 {
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        p -= lr / (1.0 - b1.powi(t)) * (m / (v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps));
    }
    close(run(OptimKind::Adam, 0.1, 0.0, 2), p);
}

#[test]
fn adamw_decouples_weight_decay() {
    let step = 0.05 / (0.00025f64.sqrt() / 0.001f64.sqrt() + 1e-8);
    close(
        run(OptimKind::Adamw, 0.1, 0.1, 1),
        1.0 * (1.0 - 0.1 * 0.1) - step,
    );
}

#[test]
fn rmsprop_with_eps_outside_the_root() {
    // v = 0.01 * 0.25; p = 1 - 0.1 * 0.5 / (0.05 + 1e-8)
    close(
        run(OptimKind::Rmsprop, 0.1, 0.0, 1),
        1.0 - 0.1 * 0.5 / (0.0025f64.sqrt() + 1e-8),
    );
}

#[test]
fn schedules_and_warmup() {
    let step = Schedule::Step {
        every: 10,
        gamma: 0.5,
    };
    assert_eq!(step.lr(0.1, 9, 100), 0.1);
    assert_eq!(step.lr(0.1, 10, 100), 0.05);
    assert_eq!(step.lr(0.1, 25, 100), 0.025);
    let cos = Schedule::Cosine { min: 0.0 };
    assert_eq!(cos.lr(0.1, 0, 100), 0.1);
    close(cos.lr(0.1, 50, 100), 0.05);
    close(cos.lr(0.1, 100, 100), 0.0);
    assert_eq!(warmup_factor(0, 4), 0.25);
    assert_eq!(warmup_factor(3, 4), 1.0);
    assert_eq!(warmup_factor(10, 0), 1.0);
}

#[test]
fn clipping_scales_the_global_norm() {
    let net = |has_bias: bool| {
        Net::<f64>::from_params(
            &[LayerParams {
                weight: Matrix::from_vec(1, 2, vec![0.5, 0.5]),
                bias: has_bias.then(|| vec![0.0]),
            }],
            Activation::Identity,
        )
    };
    let with_bias = net(true);
    let mut grads = Workspace::new(&with_bias, 1).grads;
    assert_eq!(grads.len(), 2);
    grads[0] = Matrix::from_vec(1, 2, vec![3.0, 0.0]);
    grads[1] = Matrix::from_vec(1, 1, vec![4.0]);
    let before = clip_grad_norm(&with_bias, &mut grads, 1.0);
    assert_eq!(before, 5.0);
    let coef = 1.0 / (5.0 + 1e-6);
    close(grads[0].get(0, 0), 3.0 * coef);
    close(grads[1].get(0, 0), 4.0 * coef);
    // Below the threshold nothing changes.
    let mut small = grads.clone();
    clip_grad_norm(&with_bias, &mut small, 10.0);
    assert_eq!(small, grads);
    // A layer without bias has no bias parameter and so no bias gradient.
    let without = net(false);
    let mut no_bias = Workspace::new(&without, 1).grads;
    assert_eq!(no_bias.len(), 1);
    no_bias[0] = Matrix::from_vec(1, 2, vec![3.0, 0.0]);
    let before = clip_grad_norm(&without, &mut no_bias, 1.0);
    assert_eq!(before, 3.0);
    close(no_bias[0].get(0, 0), 3.0 / (3.0 + 1e-6));
}

/// The fused step (`Net::loss_and_sgd_step`: the update inside the backward pass) against the
/// gradients then `Optimizer::step` with plain SGD, in f64, for every loss and with and without
/// biases: the same loss, and parameters equal to rounding after three steps.
#[test]
fn fused_sgd_step_matches_gradients_then_update() {
    use initscope::loss::Targets;
    use initscope::nn::{init_params, LayerInits};
    use initscope::Init;

    let dims = [3, 7, 5, 4];
    let batch = 6;
    let x = Matrix::from_vec(
        batch,
        3,
        (0..batch * 3).map(|i| (i as f64 * 0.71).sin()).collect(),
    );
    let dense = Matrix::from_vec(
        batch,
        4,
        (0..batch * 4).map(|i| (i % 3) as f64 * 0.5).collect(),
    );
    let classes: Vec<u32> = (0..batch as u32).map(|i| i % 4).collect();
    let inits = vec![
        LayerInits {
            weight: Init::Pytorch,
            bias: Init::Pytorch,
        };
        3
    ];
    for (loss, bias) in [
        (initscope::Loss::Mse, true),
        (initscope::Loss::CrossEntropy, true),
        (initscope::Loss::BceWithLogits, false),
    ] {
        let targets = || match loss {
            initscope::Loss::CrossEntropy => Targets::Classes(&classes),
            _ => Targets::Dense(&dense),
        };
        let params = init_params(&dims, &inits, bias, 7, Activation::Tanh);
        let mut fused = initscope::Net::<f64>::from_params(&params, Activation::Tanh);
        let mut plain = fused.clone();
        let mut ws_f = Workspace::new(&fused, batch);
        let mut ws_p = ws_f.clone();
        ws_f.load_rows(&x, &(0..batch).collect::<Vec<_>>());
        ws_p.load_rows(&x, &(0..batch).collect::<Vec<_>>());
        let mut config = OptimConfig::new(OptimKind::Sgd);
        config.lr = 0.3;
        assert!(config.is_plain_sgd());
        let mut opt = Optimizer::new(config, &plain);
        for _ in 0..3 {
            let lf = fused.loss_and_sgd_step(&mut ws_f, loss, targets(), Pass::Eval, 0.3);
            let lp = plain.loss_and_grads(&mut ws_p, loss, targets(), Pass::Eval);
            opt.step(&mut plain, &ws_p.grads, 0.3);
            assert!(
                (lf - lp).abs() <= 1e-14 * lp.abs(),
                "{loss}: loss {lf} vs {lp}"
            );
        }
        for (f, p) in fused.layers().zip(plain.layers()) {
            for (a, b) in f.weight.as_slice().iter().zip(p.weight.as_slice()) {
                assert!((a - b).abs() <= 1e-14, "{loss}: weight {a} vs {b}");
            }
            for (a, b) in f.bias.iter().zip(&p.bias) {
                assert!((a - b).abs() <= 1e-14, "{loss}: bias {a} vs {b}");
            }
        }
        let start = initscope::Net::<f64>::from_params(&params, Activation::Tanh);
        assert_ne!(
            fused.layer(0).weight,
            start.layer(0).weight,
            "{loss}: it trained"
        );
    }
}
