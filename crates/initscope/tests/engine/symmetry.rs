//! The symmetry facts of DESIGN.md, pinned exactly (bitwise, not within a tolerance).

use initscope::batch::{BatchTargets, Prepared};
use initscope::nn::{Net, Params, Pass, Workspace};
use initscope::optim::Optimizer;
use initscope::train::train;

use initscope::diagnostics::symmetry::{equitable_partition, exact_partition, UnitGraph};
use initscope::init::Init;
use initscope::records::verdict::VerdictKind;

use crate::support::{config, net, params};

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

/// A residual network whose units are copies (constant linears, norms with equal gains, gates,
/// shifts) keeps exact width 1 in every hidden layer and in its residual stream under every
/// optimizer with weight decay, in f32 and f64: the kernels never split copies, through norms,
/// gates and residual adds included.
#[test]
fn residual_copies_keep_exact_width_one_under_every_optimizer() {
    let spec = "linear(8) tanh res(layernorm linear(8) tanh linear(8) gate(0.5))*2 res(batchnorm linear(8) relu linear(8) shift(0.1)) rmsnorm linear";
    for optim in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"] {
        for precision in ["f32", "f64"] {
            let toml = format!(
                "data = \"moons\"\nnet = \"{spec}\"\ninit = \"constant:0.1\"\nbias_init = \"constant:0.1\"\noptim = \"{optim}\"\nlr = 0.01\nweight_decay = 0.001\nbatch = 32\nsteps = 30\nprecision = \"{precision}\""
            );
            let (cfg, data) = config(&toml);
            let out = train(&cfg, &data, &mut |_| {}).unwrap();
            let what = format!("{optim}/{precision}");
            let end = cfg.network::<f64>(&out.params);
            let graph = UnitGraph::of_net(&end);
            assert!(
                graph.exact_partition().widths().iter().all(|&w| w == 1),
                "{what}: {:?}",
                graph.exact_partition().widths()
            );
            let v = &out.summary.verdict;
            assert_eq!(v.verdict, VerdictKind::Symmetric, "{what}: {}", v.summary);
            let hidden = &v.layers[..v.layers.len() - 1];
            assert!(hidden.iter().all(|l| l.width_end == Some(1)), "{what}");
            assert_eq!(
                v.streams.len(),
                1,
                "{what}: three blocks in a row are one stream"
            );
            assert_eq!(
                (
                    v.streams[0].blocks,
                    v.streams[0].width_end,
                    v.streams[0].units
                ),
                (3, Some(1), 8),
                "{what}"
            );
            assert_ne!(out.params[0].weight.get(0, 0), 0.1, "{what}: nothing moved");
        }
    }
}

/// The stream's units are told apart by the random input layer; a branch that starts at zero
/// (a zero last linear, a gate at 0) or whose units are copies of each other does not merge them.
#[test]
fn a_zero_branch_or_a_branch_of_copies_keeps_a_random_streams_width() {
    for spec in [
        "linear(8) relu res(linear(8) relu linear(8, init=zeros, bias=zeros)) linear",
        "linear(8) relu res(linear(8) tanh linear(8) gate(0))*2 linear",
        "linear(8) res(layernorm linear(8) relu linear(8))*3 linear",
    ] {
        let g = UnitGraph::of_net(&net(spec, 3, 2, &Init::Pytorch, 7));
        for p in [g.exact_partition(), g.equitable_partition(1e-6)] {
            let streams = g.stream_widths(&p);
            assert_eq!(streams.len(), 1, "{spec}");
            assert_eq!(streams[0].width, Some(8), "{spec}");
            assert!(
                g.linear_widths(&p)[..2].iter().all(|&w| w == Some(8)),
                "{spec}"
            );
        }
    }
    // A branch whose linears are constant: its units are copies (width 1), the stream keeps 8.
    let spec = "linear(8) res(linear(8, init=[constant:0.1], bias=zeros) tanh linear(8, init=[constant:0.1], bias=zeros)) linear";
    let g = UnitGraph::of_net(&net(spec, 3, 2, &Init::Pytorch, 7));
    for p in [g.exact_partition(), g.equitable_partition(1e-6)] {
        assert_eq!(g.stream_widths(&p)[0].width, Some(8));
        assert_eq!(g.linear_widths(&p), vec![Some(8), Some(1), Some(8), None]);
    }
}

/// On a chain of linear layers the unit graph gives the partitions of DESIGN.md: the same for
/// the plain MLP, its `--net` spelling with unfused activations and a dropout module, whatever
/// the weights.
#[test]
fn the_unit_graph_of_a_chain_partitions_its_hidden_layers_as_before() {
    for init in [Init::Pytorch, Init::Constant { value: 0.2 }, Init::Zeros] {
        let plain = net("linear(6) tanh linear(5) tanh linear", 3, 2, &init, 3).params();
        let spelled = net(
            "linear(6) tanh linear(5) dropout(0.1) tanh linear",
            3,
            2,
            &init,
            3,
        );
        assert_eq!(spelled.params()[..], plain[..]);
        let g = UnitGraph::of_net(&spelled);
        let lin = |p| g.linear_widths(&p);
        assert_eq!(
            lin(g.exact_partition()),
            exact_partition(&plain)
                .widths()
                .into_iter()
                .map(Some)
                .chain([None])
                .collect::<Vec<_>>(),
            "{init:?}"
        );
        assert_eq!(
            lin(g.equitable_partition(1e-6)),
            equitable_partition(&plain, 1e-6)
                .widths()
                .into_iter()
                .map(Some)
                .chain([None])
                .collect::<Vec<_>>(),
            "{init:?}"
        );
    }
}

/// Per-unit parameters tell units apart: equal pre-norm units with different layernorm gains are
/// not copies (their gradients differ), so the linear before the norm splits too.
#[test]
fn norm_parameters_that_differ_split_units_that_agree_before_the_norm() {
    let same = net(
        "linear(4, init=[constant:0.3], bias=zeros) layernorm tanh linear(init=[constant:0.2])",
        3,
        2,
        &Init::Pytorch,
        1,
    );
    let g = UnitGraph::of_net(&same);
    assert_eq!(g.linear_widths(&g.exact_partition())[0], Some(1));
    let split = net(
        "linear(4, init=[constant:0.3], bias=zeros) layernorm(gamma=[normal:1,0.1]) tanh linear(init=[constant:0.2])",
        3,
        2,
        &Init::Pytorch,
        1,
    );
    let g = UnitGraph::of_net(&split);
    assert_eq!(g.linear_widths(&g.exact_partition())[0], Some(4));
    assert_eq!(g.linear_widths(&g.equitable_partition(1e-6))[0], Some(4));
}
