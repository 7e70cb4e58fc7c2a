//! The symmetry facts of DESIGN.md, pinned exactly (bitwise, not within a tolerance).

use initscope::batch::{BatchTargets, Prepared};
use initscope::nn::{Net, Params, Pass, Workspace};
use initscope::optim::Optimizer;
use initscope::train::train;

use crate::support::{config, params};

/// Hidden layer `l` (1-based) has all units bitwise identical: equal incoming rows, equal biases
/// and equal outgoing columns.
fn units_identical(params: &Params, l: usize) -> bool {
    let w = &params[l - 1].weight;
    let rows_equal = (1..w.rows()).all(|i| w.row(i) == w.row(0));
    let bias_equal = params[l - 1]
        .bias
        .as_ref()
        .is_none_or(|b| b.iter().all(|x| x.to_bits() == b[0].to_bits()));
    let next = &params[l].weight;
    let cols_equal = (0..next.rows()).all(|i| {
        next.row(i)
            .iter()
            .all(|x| x.to_bits() == next.get(i, 0).to_bits())
    });
    rows_equal && bias_equal && cols_equal
}

/// Full-batch gradient descent in f64, calling `check(step, net, ws)` with the step's gradients
/// at every step.
fn full_batch_steps(
    toml: &str,
    steps: usize,
    mut check: impl FnMut(usize, &Net<f64>, &Workspace<f64>),
) -> Params {
    let (cfg, data) = config(toml);
    let mut net = Net::<f64>::from_params(&params(&cfg), cfg.act);
    let outputs = *cfg.arch.last().unwrap();
    let train_set = Prepared::<f64>::new(&data.train, cfg.loss, outputs);
    let n = train_set.len();
    let idx: Vec<usize> = (0..n).collect();
    let mut ws = Workspace::new(&net, n);
    let mut bt = BatchTargets::new(n, outputs);
    let mut opt = Optimizer::new(cfg.optim.clone(), &net);
    for step in 0..steps {
        ws.load_rows(&train_set.x, &idx);
        bt.load(&train_set, &idx);
        net.loss_and_grads(&mut ws, cfg.loss, bt.targets(cfg.loss), Pass::Eval);
        check(step, &net, &ws);
        opt.step(&mut net, &ws.grads, cfg.optim.lr);
    }
    net.params()
}

#[test]
fn zero_init_with_f0_zero_freezes_every_weight_and_only_the_output_bias_learns() {
    for act in [
        "tanh",
        "relu",
        "gelu",
        "silu",
        "elu",
        "softsign",
        "leaky_relu",
        "selu",
        "identity",
    ] {
        let toml = format!(
            "data = \"teacher:n=128\"\nhidden = \"8,8\"\nact = \"{act}\"\ninit = \"zeros\"\nbias_init = \"zeros\"\nprecision = \"f64\"\noptim = \"momentum\""
        );
        let params = full_batch_steps(&toml, 300, |step, net, ws| {
            for l in 0..net.num_layers() {
                let (dw, db) = net.layer_grads(&ws.grads, l);
                assert!(
                    dw.as_slice().iter().all(|&x| x == 0.0),
                    "{act}: dW_{} != 0 at step {step}",
                    l + 1
                );
                if l + 1 < net.num_layers() {
                    assert!(
                        db.expect("biases").iter().all(|&x| x == 0.0),
                        "{act}: db_{} != 0 at step {step}",
                        l + 1
                    );
                }
            }
        });
        for (l, p) in params.iter().enumerate() {
            assert!(
                p.weight.as_slice().iter().all(|&x| x == 0.0),
                "{act}: W_{} moved",
                l + 1
            );
        }
        // The output bias converges to the best constant predictor: the mean target.
        let (_, data) = config("data = \"teacher:n=128\"");
        let mean = match &data.train.y {
            initscope::data::Labels::Values(v) => {
                v.as_slice().iter().sum::<f64>() / v.rows() as f64
            }
            _ => unreachable!(),
        };
        let b = params.last().unwrap().bias.as_ref().unwrap()[0];
        assert!(
            b != 0.0 && (b - mean).abs() < 1e-6 * mean.abs().max(1e-3),
            "{act}: output bias {b} vs mean target {mean}"
        );
    }
}

#[test]
fn zero_init_sigmoid_on_balanced_classes_with_full_batch_never_moves() {
    let toml = "data = \"moons\"\nhidden = \"8,8\"\nact = \"sigmoid\"\ninit = \"zeros\"\nbias_init = \"zeros\"\nbatch = \"full\"\nsteps = 200";
    let (cfg, data) = config(toml);
    let out = train(&cfg, &data, &mut |_| {}).unwrap();
    for p in &out.params {
        assert!(p.weight.as_slice().iter().all(|&x| x == 0.0));
        assert!(p.bias.as_ref().unwrap().iter().all(|&x| x == 0.0));
    }
    assert_eq!(out.summary.train_loss, out.summary.loss_start);
}

#[test]
fn zero_init_sigmoid_wakes_up_but_keeps_one_distinct_unit_per_layer() {
    let toml = "data = \"teacher:n=128\"\nhidden = \"8,8\"\nact = \"sigmoid\"\ninit = \"zeros\"\nbias_init = \"zeros\"\nprecision = \"f64\"";
    let params = full_batch_steps(toml, 300, |_, _, _| {});
    for l in 1..=2 {
        assert!(
            params[l - 1].weight.as_slice().iter().any(|&x| x != 0.0),
            "W_{l} never woke up"
        );
        assert!(
            units_identical(&params, l),
            "layer {l} split without a symmetry breaker"
        );
    }
}

#[test]
fn constant_init_units_stay_bitwise_identical_under_every_optimizer_with_weight_decay() {
    for optim in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"] {
        for precision in ["f32", "f64"] {
            let toml = format!(
                "data = \"moons\"\nhidden = \"8,8\"\nact = \"tanh\"\ninit = \"constant:0.1\"\nbias_init = \"constant:0.1\"\noptim = \"{optim}\"\nlr = 0.01\nweight_decay = 0.001\nbatch = 32\nsteps = 60\nprecision = \"{precision}\""
            );
            let (cfg, data) = config(&toml);
            let out = train(&cfg, &data, &mut |_| {}).unwrap();
            for l in 1..=2 {
                assert!(
                    units_identical(&out.params, l),
                    "{optim}/{precision}: layer {l} split"
                );
            }
            assert_ne!(
                out.params[0].weight.get(0, 0),
                0.1,
                "{optim}/{precision}: nothing moved"
            );
        }
    }
}

#[test]
fn dropout_splits_constant_init_units() {
    let toml = "data = \"moons\"\nhidden = \"8,8\"\nact = \"tanh\"\ninit = \"constant:0.1\"\nbias_init = \"constant:0.1\"\nbatch = 32\nsteps = 60\ndropout = 0.2";
    let (cfg, data) = config(toml);
    let out = train(&cfg, &data, &mut |_| {}).unwrap();
    for l in 1..=2 {
        assert!(
            !units_identical(&out.params, l),
            "dropout failed to split layer {l}"
        );
    }
}
