//! Optimizer steps against values computed by hand from torch.optim's update rules.

use initscope::layer::{Dense, DenseGrads};
use initscope::optim::{
    clip_grad_norm, warmup_factor, OptimConfig, OptimKind, Optimizer, Schedule,
};
use initscope::{Activation, Matrix};

/// A 1x1 layer with weight 1 and bias 1, both receiving gradient 0.5 at every step.
fn run(kind: OptimKind, lr: f64, wd: f64, steps: usize) -> f64 {
    let mut layers = vec![Dense {
        weight: Matrix::from_vec(1, 1, vec![1.0f64]),
        bias: vec![1.0],
        has_bias: true,
        activation: Activation::Identity,
    }];
    let grads = vec![DenseGrads {
        d_weight: Matrix::from_vec(1, 1, vec![0.5]),
        d_bias: vec![0.5],
    }];
    let mut config = OptimConfig::new(kind);
    config.lr = lr;
    config.weight_decay = wd;
    let mut opt = Optimizer::new(config, &layers);
    for _ in 0..steps {
        opt.step(&mut layers, &grads, lr);
    }
    assert_eq!(
        layers[0].weight.get(0, 0),
        layers[0].bias[0],
        "weight and bias see the same rule"
    );
    layers[0].bias[0]
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
    let mut grads = vec![DenseGrads {
        d_weight: Matrix::from_vec(1, 2, vec![3.0f64, 0.0]),
        d_bias: vec![4.0],
    }];
    let before = clip_grad_norm(&mut grads, 1.0);
    assert_eq!(before, 5.0);
    let coef = 1.0 / (5.0 + 1e-6);
    close(grads[0].d_weight.get(0, 0), 3.0 * coef);
    close(grads[0].d_bias[0], 4.0 * coef);
    // Below the threshold nothing changes.
    let mut small = grads.clone();
    clip_grad_norm(&mut small, 10.0);
    assert_eq!(small, grads);
}
