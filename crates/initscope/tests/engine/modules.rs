//! Networks built from `--net` specs: every module kind's backward against central differences
//! in f64 (alone and inside blocks), the `state_dict` names, the random streams shared with plain
//! MLPs, and bitwise-identical units staying identical through norms, gates and residual adds.

use initscope::init::Init;
use initscope::loss::{Loss, Targets};
use initscope::nn::build::{build_net, BuildOptions};
use initscope::nn::spec::NetSpec;
use initscope::nn::{init_params, LayerInits, Net, Pass, Workspace};
use initscope::optim::{OptimConfig, OptimKind, Optimizer};
use initscope::rng::{self, Stream};
use initscope::{Activation, Matrix};

use crate::support::net;

fn random(rows: usize, cols: usize, seed: u64) -> Matrix<f64> {
    let mut r = rng::stream(seed, Stream::Data);
    Matrix::from_vec(
        rows,
        cols,
        (0..rows * cols).map(|_| rng::normal(&mut r)).collect(),
    )
}

/// MSE of `net` on (x, y) in a training pass whose dropout masks come from a fresh stream each
/// time (so every evaluation sees the same masks); the gradients are left in `ws`.
fn loss(net: &Net<f64>, ws: &mut Workspace<f64>, y: &Matrix<f64>, backward: bool) -> f64 {
    let mut masks = rng::stream(9, Stream::Dropout);
    if backward {
        net.loss_and_grads(ws, Loss::Mse, Targets::Dense(y), Pass::Train(&mut masks))
    } else {
        let out = net.forward(ws, Pass::Train(&mut masks));
        Loss::Mse.forward_backward(out, Targets::Dense(y), None)
    }
}

/// Every entry of every tensor of `spec`'s network against central differences.
fn check_gradients(spec: &str) {
    let (batch, inputs, outputs) = (6, 4, 3);
    let mut n = net(spec, inputs, outputs, &Init::Pytorch, 5);
    let x = random(batch, inputs, 1);
    let y = random(batch, outputs, 2);
    let mut ws = Workspace::new(&n, batch);
    ws.load_rows(&x, &(0..batch).collect::<Vec<_>>());
    loss(&n, &mut ws, &y, true);
    let grads = ws.grads.clone();
    // As gradcheck: entries far below the network's gradient scale are rounding noise of the
    // loss difference (a bias before a batchnorm has gradient exactly 0, numerically ~1e-10).
    let floor = 1e-3
        * grads
            .iter()
            .flat_map(|g| g.as_slice())
            .fold(0.0f64, |m, g| m.max(g.abs()));
    let h = 1e-6;
    let infos = n.param_infos().to_vec();
    assert!(!infos.is_empty(), "{spec}");
    for (k, info) in infos.iter().enumerate() {
        for i in 0..info.len() {
            let orig = n.param_values(k)[i];
            n.param_values_mut(k)[i] = orig + h;
            let plus = loss(&n, &mut ws, &y, false);
            n.param_values_mut(k)[i] = orig - h;
            let minus = loss(&n, &mut ws, &y, false);
            n.param_values_mut(k)[i] = orig;
            let numeric = (plus - minus) / (2.0 * h);
            let g = grads[k].as_slice()[i];
            let err = (g - numeric).abs() / g.abs().max(numeric.abs()).max(floor);
            assert!(
                err < 1e-5,
                "{spec}: {}[{i}]: backprop {g} vs numeric {numeric}",
                info.name
            );
        }
    }
}

#[test]
fn every_module_kind_matches_central_differences_alone_and_in_blocks() {
    for spec in [
        "linear(5) tanh linear",
        "linear(5) gate(0.7) linear",
        "linear(5) shift(0.3) tanh linear",
        "linear(5) sigmoid dropout(0.4) linear",
        "linear(5) res(linear(5) tanh linear(5)) linear",
        "linear(5) res(tanh linear(5) gate(0.5))*2 relu linear",
        "linear(5) res(res(linear(5) tanh)*2 shift(0.1)) linear",
        "linear(5, bias=none) tanh res(linear(5, init=[normal:0,0.5]) elu linear(5, bias=none)) linear",
        "linear(5) layernorm linear",
        "linear(5) layernorm(affine=false, eps=1e-3) tanh linear",
        "linear(5) rmsnorm tanh linear",
        "linear(5) rmsnorm(eps=1e-2, gamma=[uniform:0.5,1.5]) linear",
        "linear(5) batchnorm tanh linear",
        "linear(5) batchnorm(gamma=[normal:1,0.1], beta=[normal:0,0.1]) sigmoid linear",
        "linear(5) res(layernorm linear(5) tanh linear(5) gate(0.3))*2 batchnorm(momentum=0.2) rmsnorm(eps=1e-3) linear",
        "linear(5) res(batchnorm tanh linear(5) rmsnorm)*2 dropout(0.2) res(tanh linear(5) layernorm shift(0.5)) linear",
    ] {
        check_gradients(spec);
    }
}

#[test]
fn tensors_are_named_like_the_pytorch_model_the_spec_describes() {
    let n = net(
        "linear(6) relu res(linear(6) relu linear(6) gate(0))*2 linear",
        3,
        2,
        &Init::Pytorch,
        0,
    );
    let names: Vec<&str> = n.param_infos().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "2.body.0.weight",
            "2.body.0.bias",
            "2.body.2.weight",
            "2.body.2.bias",
            "2.body.3.alpha",
            "3.body.0.weight",
            "3.body.0.bias",
            "3.body.2.weight",
            "3.body.2.bias",
            "3.body.3.alpha",
            "4.weight",
            "4.bias",
        ]
    );
    // Linear layers are numbered in forward order, inside blocks too.
    let layers: Vec<Option<usize>> = n.param_infos().iter().map(|p| p.layer).collect();
    assert_eq!(
        layers,
        [
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            Some(3),
            Some(3),
            None,
            Some(4),
            Some(4),
            Some(5),
            Some(5),
            None,
            Some(6),
            Some(6)
        ]
    );
    assert_eq!(n.num_layers(), 6);
    assert_eq!(n.layer(2).fan_in(), 6);
    assert_eq!(n.param_values(6), &[0.0]);
}

#[test]
fn a_spec_written_like_an_arch_net_draws_the_same_weights_and_trains_the_same_bits() {
    let init = Init::parse("--init", "xavier_uniform").unwrap();
    let spec = net("linear(7) tanh linear(5) tanh linear", 4, 3, &init, 11);
    let dims = [4, 7, 5, 3];
    let inits = vec![
        LayerInits {
            weight: init.clone(),
            bias: Init::Pytorch
        };
        3
    ];
    let plain = Net::<f64>::from_params(
        &init_params(&dims, &inits, true, 11, Activation::Tanh),
        Activation::Tanh,
    );
    assert_eq!(spec.params(), plain.params());
    assert_eq!(spec.param_infos(), plain.param_infos());
    // And the same steps give the same bits.
    let (x, y) = (random(8, 4, 3), random(8, 3, 4));
    let mut out = Vec::new();
    for mut n in [spec, plain] {
        let mut ws = Workspace::new(&n, 8);
        ws.load_rows(&x, &(0..8).collect::<Vec<_>>());
        let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Adam), &n);
        for _ in 0..5 {
            n.loss_and_grads(&mut ws, Loss::Mse, Targets::Dense(&y), Pass::Eval);
            opt.step(&mut n, &ws.grads, 0.01);
        }
        out.push(n.params());
    }
    assert_eq!(out[0], out[1]);
}

#[test]
fn a_body_that_changes_the_width_is_refused_naming_the_block() {
    let spec = NetSpec::parse("linear(8) res(linear(8) relu linear(4)) linear").unwrap();
    let e = build_net::<f64>(&spec, &BuildOptions::new(2, 1, Init::Pytorch, None, 0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("module 2 `res(linear(8) relu linear(4))`"),
        "{e}"
    );
    assert!(e.contains("from 8 to 4"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn identical_units_stay_bitwise_identical_through_norms_gates_shifts_and_residual_adds() {
    // Every hidden linear starts constant, so every hidden unit is a copy of the others; norms
    // (with gains and biases equal across units), gates, shifts and skips act on all units alike,
    // so the copies stay bitwise equal under training.
    let init = Init::Constant { value: 0.1 };
    let mut n = net(
        "linear(6, bias=[constant:0.05]) tanh res(layernorm linear(6, bias=[constant:0.02]) tanh linear(6, bias=[constant:0.0]) gate(0.5))*2 \
         batchnorm shift(0.1) rmsnorm res(tanh linear(6, bias=[constant:0.01]) batchnorm) linear",
        3,
        2,
        &init,
        0,
    );
    let (x, y) = (random(10, 3, 5), random(10, 2, 6));
    let mut ws = Workspace::new(&n, 10);
    ws.load_rows(&x, &(0..10).collect::<Vec<_>>());
    let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Momentum), &n);
    let mut masks = rng::stream(0, Stream::Dropout);
    for _ in 0..20 {
        n.loss_and_grads(
            &mut ws,
            Loss::Mse,
            Targets::Dense(&y),
            Pass::Train(&mut masks),
        );
        n.update_buffers(&ws);
        opt.step(&mut n, &ws.grads, 0.05);
    }
    for b in n.buffers() {
        assert!(b.values.iter().all(|&v| v == b.values[0]), "{}", b.key);
    }
    for (info, v) in n.values() {
        if info.layer.is_none() {
            assert!(v.iter().all(|&x| x == v[0]), "{}: {v:?}", info.name);
        }
    }
    for l in 0..n.num_layers() - 1 {
        let w = &n.layer(l).weight;
        for r in 1..w.rows() {
            assert_eq!(w.row(r), w.row(0), "layer {} row {r}", l + 1);
        }
        assert!(n.layer(l).bias.iter().all(|&b| b == n.layer(l).bias[0]));
    }
    // It trained: the first layer moved.
    assert_ne!(n.layer(0).weight.get(0, 0), 0.1);
}

#[test]
fn the_fused_sgd_step_matches_gradients_then_update_through_every_module() {
    let spec = "linear(6) tanh res(linear(6) relu linear(6) gate(0.5))*2 shift(0.2) sigmoid linear";
    let mut fused = net(spec, 3, 2, &Init::Pytorch, 4);
    let mut plain = fused.clone();
    let (x, y) = (random(7, 3, 8), random(7, 2, 9));
    let mut ws_f = Workspace::new(&fused, 7);
    let mut ws_p = Workspace::new(&plain, 7);
    let idx: Vec<usize> = (0..7).collect();
    ws_f.load_rows(&x, &idx);
    ws_p.load_rows(&x, &idx);
    let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Sgd), &plain);
    for _ in 0..3 {
        let lf = fused.loss_and_sgd_step(&mut ws_f, Loss::Mse, Targets::Dense(&y), Pass::Eval, 0.1);
        let lp = plain.loss_and_grads(&mut ws_p, Loss::Mse, Targets::Dense(&y), Pass::Eval);
        opt.step(&mut plain, &ws_p.grads, 0.1);
        assert!((lf - lp).abs() <= 1e-14 * lp.abs(), "{lf} vs {lp}");
    }
    for ((info, a), (_, b)) in fused.values().zip(plain.values()) {
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= 1e-14, "{}: {a} vs {b}", info.name);
        }
    }
    assert_ne!(fused.params(), net(spec, 3, 2, &Init::Pytorch, 4).params());
}

#[test]
fn no_decay_exempts_norms_gates_and_biases_from_weight_decay() {
    use initscope::nn::ParamKind;
    use initscope::optim::NoDecay;
    let spec =
        "linear(4) res(layernorm(beta=[constant:0.1]) linear(4) tanh linear(4) gate(0.5)) shift(0.2) rmsnorm linear";
    for (classes, exempt) in [
        ("", vec![]),
        ("norms", vec![ParamKind::NormGain, ParamKind::NormBias]),
        (
            "gates,biases",
            vec![ParamKind::Gate, ParamKind::Bias, ParamKind::Shift],
        ),
        (
            "biases, norms ,gates",
            vec![
                ParamKind::NormGain,
                ParamKind::NormBias,
                ParamKind::Gate,
                ParamKind::Bias,
                ParamKind::Shift,
            ],
        ),
    ] {
        let mut n = net(spec, 3, 2, &Init::Pytorch, 1);
        let before = n.params();
        let zeros = Workspace::new(&n, 1).grads; // every gradient 0: only decay moves a tensor
        let mut cfg = OptimConfig::new(OptimKind::Sgd);
        cfg.weight_decay = 0.1;
        cfg.no_decay = NoDecay::parse_list("--no-decay", classes).unwrap();
        let mut opt = Optimizer::new(cfg, &n);
        opt.step(&mut n, &zeros, 0.5);
        let after = n.params();
        for ((info, a), (_, b)) in before.named().zip(after.named()) {
            let moved = a != b;
            assert_eq!(
                moved,
                !exempt.contains(&info.kind),
                "{classes}: {}",
                info.name
            );
        }
    }
    assert!(NoDecay::parse_list("--no-decay", "norms,weights")
        .unwrap_err()
        .to_string()
        .contains("unknown class 'weights'"));
}

#[test]
fn fixup_zeroes_branch_ends_and_the_output_and_scales_the_branches() {
    use initscope::nn::build::Preset;
    let spec = NetSpec::parse(
        "linear(64) relu res(linear(64) relu linear(64) relu linear(64) gate(0.3))*4 shift(0.5) linear",
    )
    .unwrap();
    let mut opts = BuildOptions::new(32, 3, Init::Pytorch, Some(Init::Pytorch), 7);
    opts.preset = Some(Preset::Fixup);
    let n: Net<f64> = build_net(&spec, &opts).unwrap();
    let (blocks, m) = (4.0f64, 3.0f64);
    let scale = blocks.powf(-1.0 / (2.0 * m - 2.0));
    let std = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
    for (info, v) in n.values() {
        let name = info.name.as_str();
        if name.ends_with(".bias") {
            assert!(v.iter().all(|&x| x == 0.0), "{name}: biases 0");
        } else if name.ends_with("alpha") {
            assert_eq!(v, [1.0], "{name}: gates 1");
        } else if name == "0.weight" {
            let want = (2.0f64 / 32.0).sqrt();
            assert!(
                (std(v) / want - 1.0).abs() < 0.05,
                "{name}: He, std {}",
                std(v)
            );
        } else if name.ends_with("body.4.weight") || name == "7.weight" {
            assert!(
                v.iter().all(|&x| x == 0.0),
                "{name}: branch end and output 0"
            );
        } else if name.contains(".body.") {
            let want = (2.0f64 / 64.0).sqrt() * scale;
            assert!(
                (std(v) / want - 1.0).abs() < 0.05,
                "{name}: He x {scale}, std {}",
                std(v)
            );
        }
    }
    // The shift is a bias: 0.
    assert_eq!(n.param_values(n.find_param("6.bias").unwrap()), &[0.0]);
    // So at init the output is exactly 0 and every block is the identity.
    let x = random(5, 32, 3);
    let mut ws = Workspace::new(&n, 5);
    ws.load_rows(&x, &(0..5).collect::<Vec<_>>());
    assert!(n
        .forward(&mut ws, Pass::Eval)
        .as_slice()
        .iter()
        .all(|&y| y == 0.0));
}

#[test]
fn zero_init_residual_makes_every_block_the_identity() {
    use initscope::nn::build::Preset;
    let spec =
        NetSpec::parse("linear(8) tanh res(linear(8) relu linear(8) batchnorm)*3 layernorm linear")
            .unwrap();
    let mut opts = BuildOptions::new(4, 2, Init::Pytorch, Some(Init::Pytorch), 1);
    opts.preset = Some(Preset::ZeroInitResidual);
    let n: Net<f64> = build_net(&spec, &opts).unwrap();
    for (info, v) in n.values() {
        if info.name.ends_with("body.3.weight") {
            assert!(v.iter().all(|&g| g == 0.0), "{}", info.name);
        }
    }
    // The top-level layernorm's gain is not a branch's: 1.
    assert!(n
        .param_values(n.find_param("5.weight").unwrap())
        .iter()
        .all(|&g| g == 1.0));
    let x = random(6, 4, 2);
    let mut ws = Workspace::new(&n, 6);
    ws.load_rows(&x, &(0..6).collect::<Vec<_>>());
    let mut masks = rng::stream(0, Stream::Dropout);
    n.forward(&mut ws, Pass::Train(&mut masks));
    // Blocks 2, 3, 4 (modules 1, 2, 3 of the net: the fused linear+tanh is module 0) pass their
    // input through unchanged.
    for b in 1..=3 {
        assert_eq!(
            ws.caches[b].act.as_slice(),
            ws.caches[0].act.as_slice(),
            "block {b}"
        );
    }
}

#[test]
fn layer_init_takes_a_linear_layers_path_or_out_with_net() {
    let toml = "data = \"moons\"\nnet = \"linear(8) relu res(layernorm linear(8) relu linear(8))*2 linear\"\n\
                layer_init = [\"2.body.1=zeros\", \"3.body.3.weight=constant:0.5\", \"out=zeros\"]";
    let raw: initscope::config::RawConfig = toml::from_str(toml).unwrap();
    let (cfg, data) = initscope::config::validate(&raw).unwrap_or_else(|e| panic!("{e}"));
    let start = initscope::train::initial_params(&cfg, &data).unwrap();
    let n = cfg.network::<f64>(&start.params);
    let get = |name: &str| n.param_values(n.find_param(name).unwrap()).to_vec();
    assert!(get("2.body.1.weight").iter().all(|&w| w == 0.0));
    assert!(get("3.body.3.weight").iter().all(|&w| w == 0.5));
    assert!(get("4.weight").iter().all(|&w| w == 0.0));
    assert!(get("2.body.3.weight").iter().any(|&w| w != 0.0));
    let bad = toml.replace("2.body.1=zeros", "2.body.2=zeros");
    let raw: initscope::config::RawConfig = toml::from_str(&bad).unwrap();
    let e = initscope::config::validate(&raw).unwrap_err().to_string();
    assert!(e.contains("'2.body.2' is not a layer number, `out` or a linear layer's path (0, 2.body.1, 2.body.3, 3.body.1, 3.body.3, 4)"), "{e}");
}

#[test]
fn a_spec_its_canonical_text_and_the_model_round_trip() {
    for text in [
        "linear( 8 ) leaky_relu:0.2 dropout(0.1) linear",
        "linear(8, init=[uniform:-0.1,0.1], bias=none) res(layernorm(eps=1e-5) linear(8) gelu linear(8) gate(0))*2 rmsnorm shift(0.5) linear",
        "linear(8) res(res(batchnorm(momentum=0.2) tanh linear(8))*2 shift(0.1)) sigmoid linear",
    ] {
        let spec = NetSpec::parse(text).unwrap();
        let canonical = spec.canonical();
        let again = NetSpec::parse(&canonical).unwrap();
        assert_eq!(again, spec, "{text}");
        assert_eq!(again.canonical(), canonical);
        let (a, b) = (net(text, 3, 2, &Init::Pytorch, 4), net(&canonical, 3, 2, &Init::Pytorch, 4));
        assert_eq!(a.params(), b.params(), "{text}: the same model");
        assert_eq!(a.param_infos(), b.param_infos());
        assert_eq!(a.buffers(), b.buffers());
    }
}

#[test]
fn the_jacobian_by_backpropagation_matches_the_layer_product_and_finite_differences() {
    use initscope::diagnostics::spectrum::{jacobian_spectrum, net_jacobian_spectrum};
    // A chain: the same spectrum as the product of the layers' Jacobians.
    let chain = net(
        "linear(7) tanh linear(5) tanh linear",
        4,
        3,
        &Init::Pytorch,
        2,
    );
    let x = random(6, 4, 9);
    let a = net_jacobian_spectrum(&chain, &x, 6);
    let b = jacobian_spectrum(&chain.params(), Activation::Tanh, &x, 6);
    for (p, q) in [(a.mean, b.mean), (a.variance, b.variance), (a.max, b.max)] {
        assert!((p - q).abs() <= 1e-12 * q.abs(), "{p} vs {q}");
    }
    // A residual net with norms: its sum of squared singular values is ||J||_F^2, checked
    // against J by central differences of the outputs.
    let res = net(
        "linear(6) res(layernorm linear(6) tanh linear(6) gate(0.7))*2 rmsnorm shift(0.1) linear",
        4,
        3,
        &Init::Pytorch,
        5,
    );
    let x = random(1, 4, 3);
    let j = net_jacobian_spectrum(&res, &x, 1);
    let out = |x: &Matrix<f64>| {
        let mut ws = Workspace::new(&res, 1);
        ws.load_rows(x, &[0]);
        res.forward(&mut ws, Pass::Eval).as_slice().to_vec()
    };
    let h = 1e-6;
    let mut frob = 0.0;
    for i in 0..4 {
        let (mut p, mut m) = (x.clone(), x.clone());
        p.as_mut_slice()[i] += h;
        m.as_mut_slice()[i] -= h;
        for (yp, ym) in out(&p).iter().zip(out(&m)) {
            let d = (yp - ym) / (2.0 * h);
            frob += d * d;
        }
    }
    let sum = j.mean * 3.0; // min(outputs, inputs) = 3 squared singular values
    assert!((sum - frob).abs() <= 1e-6 * frob, "{sum} vs {frob}");
}

/// relu'(0) decides whether a first layer that starts at exact zeros ever moves: its
/// pre-activations are 0 for every input, so with PyTorch's relu'(0) = 0 no gradient reaches
/// it (dW_1 = (delta_2 W_2 ⊙ relu'(0))^T x = 0 at every step), while with the ZerO authors'
/// relu'(0) = 1 the gradient is delta_2 W_2 and the layer trains. Measured on moons in a real
/// training run (gradient norms recorded per step, final weights).
#[test]
fn relu_grad0_one_trains_a_zero_first_layer_that_plain_relu_leaves_dead() {
    use super::support::config;
    let run = |act: &str| {
        let (cfg, data) = config(&format!(
            "data = \"moons\"\nnet = \"linear(8, init=zeros, bias=zeros) {act} linear\"\nsteps = 40\nprecision = \"f64\""
        ));
        let out = initscope::train::train(&cfg, &data, &mut |_| {}).unwrap();
        let grad_norms: Vec<(usize, f64)> = out
            .metrics
            .iter()
            .filter(|m| m.metric == "grad_norm" && m.layer == Some(1))
            .map(|m| (m.step, m.value))
            .collect();
        assert!(grad_norms.len() > 10, "{act}: {grad_norms:?}");
        (grad_norms, out.params[0].weight.as_slice().to_vec(), out)
    };
    let (dead, w_dead, out) = run("relu");
    assert_eq!(
        out.config.net.as_ref().unwrap().canonical(),
        "linear(8, init=zeros, bias=zeros) relu linear"
    );
    assert!(dead.iter().all(|&(_, g)| g == 0.0), "{dead:?}");
    assert!(w_dead.iter().all(|&w| w == 0.0));
    let (alive, w_alive, out) = run("relu(grad0=1)");
    assert_eq!(
        out.config.net.as_ref().unwrap().canonical(),
        "linear(8, init=zeros, bias=zeros) relu:grad0=1 linear"
    );
    assert_eq!(alive[0].0, 0);
    assert!(alive[0].1 > 1e-3, "step 0: {alive:?}");
    assert!(alive.iter().all(|&(_, g)| g > 0.0), "{alive:?}");
    assert!(
        w_alive.iter().filter(|&&w| w != 0.0).count() >= 8,
        "{w_alive:?}"
    );
}

#[test]
fn relu_grad0_parses_round_trips_and_matches_central_differences_away_from_zero() {
    for (text, canonical) in [
        (
            "linear(4) relu(grad0=1) linear",
            "linear(4) relu:grad0=1 linear",
        ),
        (
            "linear(4) relu:grad0=1 linear",
            "linear(4) relu:grad0=1 linear",
        ),
        (
            "linear(4) RELU( grad0 = 1 ) linear",
            "linear(4) relu:grad0=1 linear",
        ),
        ("linear(4) relu(grad0=0) linear", "linear(4) relu linear"),
        ("linear(4) relu linear", "linear(4) relu linear"),
        (
            "linear(4) res(relu(grad0=1) linear(4))*2 linear",
            "linear(4) res(relu:grad0=1 linear(4))*2 linear",
        ),
    ] {
        let spec = NetSpec::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.canonical(), canonical, "{text}");
        assert_eq!(NetSpec::parse(canonical).unwrap(), spec, "{text}");
    }
    let e = NetSpec::parse("linear(4) relu(grad0=2) linear")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("module 2") && e.contains("must be 0 (PyTorch) or 1"),
        "{e}"
    );
    // Random weights: no pre-activation is exactly 0, so the fused (after a linear) and the
    // standalone (after a block) kernels agree with central differences as for relu.
    check_gradients("linear(5) relu(grad0=1) linear");
    check_gradients("linear(5) res(relu(grad0=1) linear(5))*2 relu:grad0=1 linear");
}
