//! The lockstep engine (SIMD lanes across runs) against the single-run engine.

use initscope::activation::Activation;
use initscope::data::{DataOptions, DataSpec, Labels};
use initscope::init::Init;
use initscope::lockstep::{train_lockstep, LANES};
use initscope::loss::{Loss, Targets};
use initscope::matrix::Matrix;
use initscope::nn::{init_params, LayerInits, Net, Params, Pass, Workspace};
use initscope::optim::{OptimConfig, OptimKind, Optimizer};

fn moons(n: usize) -> (Matrix<f64>, Vec<u32>) {
    let d = DataSpec::parse("--data", &format!("moons:n={n}"))
        .and_then(|s| s.load(&DataOptions::default(), None))
        .expect("moons");
    let y = match &d.train.y {
        Labels::Classes(c) => c.clone(),
        Labels::Values(_) => unreachable!(),
    };
    (d.train.x.to_matrix(), y)
}

fn starts(dims: &[usize], runs: usize, bias: bool, act: Activation) -> Vec<Params> {
    let inits = vec![
        LayerInits {
            weight: Init::Pytorch,
            bias: Init::Pytorch
        };
        dims.len() - 1
    ];
    (0..runs as u64)
        .map(|seed| init_params(dims, &inits, bias, seed, act))
        .collect()
}

/// The single-run engine: full-batch SGD, losses before each step and after the last.
fn single(
    p: &Params,
    act: Activation,
    loss: Loss,
    x: &Matrix<f64>,
    t: Targets<'_, f64>,
    lr: f64,
    steps: usize,
) -> (Params, Vec<f64>) {
    let mut net = Net::<f64>::from_params(p, act);
    let mut ws = Workspace::new(&net, x.rows());
    let idx: Vec<usize> = (0..x.rows()).collect();
    ws.load_rows(x, &idx);
    let cfg = OptimConfig {
        lr,
        ..OptimConfig::new(OptimKind::Sgd)
    };
    let mut opt = Optimizer::new(cfg, &net);
    let mut losses = Vec::new();
    for _ in 0..=steps {
        losses.push(net.loss_and_grads(&mut ws, loss, t, Pass::Eval));
        if losses.len() <= steps {
            opt.step(&mut net, &ws.grads, lr);
        }
    }
    (net.params(), losses)
}

fn max_diff(a: &Params, b: &Params) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            let w = x.weight.as_slice().iter().zip(y.weight.as_slice());
            let b: Vec<(f64, f64)> = match (&x.bias, &y.bias) {
                (Some(p), Some(q)) => p.iter().copied().zip(q.iter().copied()).collect(),
                (None, None) => Vec::new(),
                _ => panic!("bias presence differs"),
            };
            w.map(|(p, q)| (p - q).abs())
                .chain(b.into_iter().map(|(p, q)| (p - q).abs()))
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

#[test]
fn lockstep_matches_the_single_run_engine() {
    let (x, y) = moons(48);
    let runs = LANES + 3; // one full pack and one partial
    let cases: [(Loss, Activation, usize, bool); 4] = [
        (Loss::Mse, Activation::Tanh, 1, true),
        (Loss::BceWithLogits, Activation::Relu, 1, true),
        (Loss::CrossEntropy, Activation::Gelu, 2, true),
        (Loss::Mse, Activation::Sigmoid, 1, false),
    ];
    for (loss, act, out, bias) in cases {
        let dims = [2, 16, 16, out];
        let dense = Matrix::from_vec(x.rows(), 1, y.iter().map(|&c| c as f64).collect());
        let t = if loss == Loss::CrossEntropy {
            Targets::Classes(&y)
        } else {
            Targets::Dense(&dense)
        };
        let s = starts(&dims, runs, bias, act);
        let got = train_lockstep(&s, act, loss, &x, t, 0.1, 40).expect("trains");
        assert_eq!(got.len(), runs);
        for (r, (start, run)) in s.iter().zip(&got).enumerate() {
            let (params, losses) = single(start, act, loss, &x, t, 0.1, 40);
            let d = max_diff(&params, &run.params);
            assert!(
                d < 1e-12,
                "{loss} {act} run {r}: parameters differ by {d:e}"
            );
            for (a, b) in losses.iter().zip(&run.losses) {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    "{loss} {act} run {r}: loss {a} vs {b}"
                );
            }
            assert!(
                run.losses[40] < run.losses[0],
                "{loss} {act} run {r} did not learn"
            );
        }
    }
}

#[test]
fn lockstep_in_f32_tracks_f64() {
    let (x, y) = moons(64);
    let dense = Matrix::from_vec(x.rows(), 1, y.iter().map(|&c| c as f64).collect());
    let s = starts(&[2, 16, 16, 1], 5, true, Activation::Tanh);
    let want = train_lockstep(
        &s,
        Activation::Tanh,
        Loss::Mse,
        &x,
        Targets::Dense(&dense),
        0.1,
        100,
    )
    .expect("f64");
    let (x32, d32) = (x.cast::<f32>(), dense.cast::<f32>());
    let got = train_lockstep(
        &s,
        Activation::Tanh,
        Loss::Mse,
        &x32,
        Targets::Dense(&d32),
        0.1,
        100,
    )
    .expect("f32");
    for (a, b) in want.iter().zip(&got) {
        assert!(max_diff(&a.params, &b.params) < 1e-4);
    }
}

#[test]
fn lockstep_refuses_mixed_architectures_and_wrong_targets() {
    let (x, y) = moons(8);
    let mut s = starts(&[2, 4, 1], 2, true, Activation::Tanh);
    s.extend(starts(&[2, 5, 1], 1, true, Activation::Tanh));
    let dense = Matrix::from_vec(x.rows(), 1, vec![0.0; x.rows()]);
    let err = train_lockstep(
        &s,
        Activation::Tanh,
        Loss::Mse,
        &x,
        Targets::Dense(&dense),
        0.1,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("run 2"), "{err}");
    let s = starts(&[2, 4, 1], 2, true, Activation::Tanh);
    let err = train_lockstep(
        &s,
        Activation::Tanh,
        Loss::CrossEntropy,
        &x,
        Targets::Classes(&y),
        0.1,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("class 1 but only 1 outputs"), "{err}");
}

/// relu'(0) = 1 in the lanes: a first layer started at exact zeros trains as in the single-run
/// engine (bitwise-close), and stays exactly 0 with plain relu.
#[test]
fn lockstep_keeps_relu_grad0_convention_on_a_zero_first_layer() {
    let (x, y) = moons(48);
    let dense = Matrix::from_vec(x.rows(), 1, y.iter().map(|&c| c as f64).collect());
    let t = Targets::Dense(&dense);
    for act in [Activation::ReluGrad1, Activation::Relu] {
        let mut s = starts(&[2, 8, 1], LANES + 1, true, act);
        for p in &mut s {
            p[0].weight.as_mut_slice().fill(0.0);
            p[0].bias.as_mut().unwrap().fill(0.0);
        }
        let got = train_lockstep(&s, act, Loss::Mse, &x, t, 0.1, 20).expect("trains");
        for (start, run) in s.iter().zip(&got) {
            let (params, _) = single(start, act, Loss::Mse, &x, t, 0.1, 20);
            let d = max_diff(&params, &run.params);
            assert!(d < 1e-12, "{act}: parameters differ by {d:e}");
            let moved = run.params[0].weight.as_slice().iter().any(|&w| w != 0.0);
            assert_eq!(moved, act == Activation::ReluGrad1, "{act}");
        }
    }
}

/// Lanes with their own minibatches and learning rates: each lane equals the same run alone in
/// a pack, bit for bit (lanes never mix), and the single-run engine on the same minibatches to
/// rounding.
#[test]
fn lanes_train_on_their_own_minibatches_and_learning_rates_independently() {
    use initscope::lockstep::LanePack;
    let (x, y) = moons(96);
    let dims = [2, 8, 8, 2];
    let s = starts(&dims, 3, true, Activation::Tanh);
    let lrs = [0.05, 0.1, 0.2];
    let batch = 16;
    // Lane r reads rows in its own order: a rotation of 0..96 by 7 r.
    let order = |r: usize, step: usize| -> Vec<usize> {
        (0..batch)
            .map(|p| (step * batch + p + 7 * r) % x.rows())
            .collect()
    };
    let steps = 12;
    let train_pack = |lanes: &[usize]| -> Vec<(Params, Vec<f64>)> {
        let mut pack =
            LanePack::<f64>::new(&dims, true, Activation::Tanh, Loss::CrossEntropy, batch);
        let mut lr = [0.0; LANES];
        for (lane, &r) in lanes.iter().enumerate() {
            pack.set_params(lane, &s[r]).unwrap();
            lr[lane] = lrs[r];
        }
        let mut losses = vec![Vec::new(); lanes.len()];
        for step in 0..steps {
            for (lane, &r) in lanes.iter().enumerate() {
                pack.set_batch(lane, &x, Targets::Classes(&y), &order(r, step))
                    .unwrap();
            }
            let l = pack.steps(lr, 1);
            for (lane, losses) in losses.iter_mut().enumerate() {
                losses.push(l[0][lane]);
            }
        }
        lanes
            .iter()
            .enumerate()
            .map(|(lane, _)| (pack.params(lane), losses[lane].clone()))
            .collect()
    };
    let together = train_pack(&[0, 1, 2]);
    for r in 0..3 {
        let alone = train_pack(&[r]).remove(0);
        assert_eq!(alone, together[r], "lane {r} differs alone and packed");
        // The single-run engine on the same minibatches.
        let mut net = Net::<f64>::from_params(&s[r], Activation::Tanh);
        let mut ws = Workspace::new(&net, batch);
        let cfg = OptimConfig {
            lr: lrs[r],
            ..OptimConfig::new(OptimKind::Sgd)
        };
        let mut opt = Optimizer::new(cfg, &net);
        for step in 0..steps {
            let idx = order(r, step);
            ws.load_rows(&x, &idx);
            let labels: Vec<u32> = idx.iter().map(|&i| y[i]).collect();
            let loss = net.loss_and_grads(
                &mut ws,
                Loss::CrossEntropy,
                Targets::Classes(&labels),
                Pass::Eval,
            );
            assert!(
                (loss - together[r].1[step]).abs() <= 1e-12,
                "lane {r} step {step}"
            );
            opt.step(&mut net, &ws.grads, lrs[r]);
        }
        let d = max_diff(&net.params(), &together[r].0);
        assert!(d < 1e-12, "lane {r}: parameters differ by {d:e}");
    }
    // A lane of another architecture, and a minibatch larger than the pack, are refused.
    let mut pack = LanePack::<f64>::new(&dims, true, Activation::Tanh, Loss::CrossEntropy, batch);
    let other = starts(&[2, 4, 2], 1, true, Activation::Tanh);
    assert!(pack
        .set_params(0, &other[0])
        .unwrap_err()
        .to_string()
        .contains("parameters of another network"));
    assert!(pack
        .set_params(LANES, &s[0])
        .unwrap_err()
        .to_string()
        .contains(&format!("lane {LANES} of {LANES}")));
    // Lanes share the minibatch size of a step: another size is refused, not cut to fit.
    pack.set_batch(0, &x, Targets::Classes(&y), &[0, 1, 2, 3])
        .unwrap();
    let e = pack
        .set_batch(1, &x, Targets::Classes(&y), &[4, 5])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a minibatch of 2 rows where this step's others have 4"),
        "{e}"
    );
    pack.steps([0.1; LANES], 1);
    pack.set_batch(1, &x, Targets::Classes(&y), &[4, 5])
        .unwrap();
    let rows: Vec<usize> = (0..batch + 1).collect();
    let e = pack
        .set_batch(0, &x, Targets::Classes(&y), &rows)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a minibatch of 17 rows (the pack holds 1 to 16)"),
        "{e}"
    );
}
