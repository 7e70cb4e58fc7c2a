//! The quotient network of a network of modules (`diagnostics::quotient`): its logits are the
//! full network's, plain SGD on it with the derived step scales follows the full network's loss
//! curve to rounding, and a partition without classes gives the full network back.

use initscope::diagnostics::quotient::{BatchStats, QuotientError, QuotientNet};
use initscope::diagnostics::symmetry::{Partition, UnitGraph};
use initscope::init::Init;
use initscope::loss::Targets;
use initscope::nn::{Net, ParamKind, Pass, Workspace};
use initscope::rng::{self, Stream};
use initscope::{Loss, Matrix};

use crate::support::net;

/// A residual stream of width 8 whose units are copies: constant weights and biases everywhere,
/// layernorm, rmsnorm, batchnorm, gates and a shift.
const COPIES: &str = "linear(8, init=[constant:0.2], bias=[constant:0.1]) tanh \
     res(layernorm linear(8, init=[constant:0.1], bias=[constant:0.05]) tanh \
         linear(8, init=[constant:0.1], bias=[constant:-0.05]) gate(0.5))*2 \
     rmsnorm res(batchnorm linear(8, init=[constant:0.15], bias=[constant:0.02]) relu shift(0.1)) \
     linear(init=[constant:0.3])";

/// Hidden width 7 everywhere; [`blow_up`] gives every hidden group the classes [`CLASSES`].
const TWO_CLASSES: &str = "linear(7) tanh res(layernorm linear(7) tanh linear(7) gate(0.7))*2 \
     rmsnorm(eps=1e-4) res(batchnorm linear(7) relu linear(7) shift(0.1)) \
     res(layernorm(affine=false, eps=1e-3) linear(7) sigmoid gate(-0.4) shift(0.2)) linear";

/// Classes of sizes 4 and 3, interleaved: {0, 2, 3, 6} and {1, 4, 5}.
const CLASSES: [usize; 7] = [0, 1, 0, 0, 1, 1, 0];

const INPUTS: usize = 3;
const OUTPUTS: usize = 2;

fn normal_matrix(rows: usize, cols: usize, seed: u64) -> Matrix<f64> {
    let mut r = rng::stream(seed, Stream::Data);
    Matrix::from_vec(
        rows,
        cols,
        (0..rows * cols).map(|_| rng::normal(&mut r)).collect(),
    )
}

/// Sets every tensor of `net` (hidden width 7) to a small random network blown up along
/// [`CLASSES`]: a dimension of 7 is classed by `CLASSES`, any other dimension (inputs, outputs)
/// is its own class. Weight W[a, k] = V[class a, class k] / |class k| (so the block sums are V);
/// per-unit vectors take their class's value; scalars (gates, shifts) stay as built.
fn blow_up(net: &mut Net<f64>, seed: u64) {
    let sizes = [4.0, 3.0];
    let class = |dim: usize, u: usize| if dim == CLASSES.len() { CLASSES[u] } else { u };
    let size = |dim: usize, u: usize| {
        if dim == CLASSES.len() {
            sizes[CLASSES[u]]
        } else {
            1.0
        }
    };
    let mut r = rng::stream(seed, Stream::Data);
    for k in 0..net.param_infos().len() {
        let info = net.param_infos()[k].clone();
        match info.dims[..] {
            [rows, cols] => {
                let v = normal_matrix(rows, cols, seed + k as u64);
                let w = net.param_values_mut(k);
                for a in 0..rows {
                    for j in 0..cols {
                        w[a * cols + j] =
                            0.8 * v.get(class(rows, a), class(cols, j)) / size(cols, j);
                    }
                }
            }
            [len] if len == CLASSES.len() => {
                let per_class: Vec<f64> = (0..2)
                    .map(|_| {
                        let n = rng::normal(&mut r);
                        match info.kind {
                            ParamKind::NormGain => 1.0 + 0.3 * n,
                            _ => 0.3 * n,
                        }
                    })
                    .collect();
                for (u, p) in net.param_values_mut(k).iter_mut().enumerate() {
                    *p = per_class[CLASSES[u]];
                }
            }
            _ => {}
        }
    }
}

/// The full network's logits of `x`: a training pass (batchnorm on batch statistics) or an
/// evaluation pass (running statistics).
fn full_logits(net: &Net<f64>, x: &Matrix<f64>, stats: BatchStats) -> Matrix<f64> {
    let mut ws = Workspace::new(net, x.rows());
    let idx: Vec<usize> = (0..x.rows()).collect();
    ws.load_rows(x, &idx);
    let mut r = rng::stream(0, Stream::Dropout);
    let pass = match stats {
        BatchStats::Batch => Pass::Train(&mut r),
        BatchStats::Running => Pass::Eval,
    };
    net.forward(&mut ws, pass).clone()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn partition(net: &Net<f64>) -> Partition {
    UnitGraph::of_net(net).equitable_partition(1e-9)
}

fn copies_net() -> Net<f64> {
    net(COPIES, INPUTS, OUTPUTS, &Init::Pytorch, 1)
}

fn two_class_net() -> Net<f64> {
    let mut n = net(TWO_CLASSES, INPUTS, OUTPUTS, &Init::Pytorch, 2);
    blow_up(&mut n, 5);
    n
}

#[test]
fn copies_in_a_residual_stream_reduce_to_width_one_with_the_same_logits() {
    let full = copies_net();
    let p = partition(&full);
    assert!(p.widths().iter().all(|&w| w == 1), "{:?}", p.widths());
    let q = QuotientNet::new(&full, &p).unwrap();
    let mut widths = vec![1; q.widths().len()];
    *widths.last_mut().unwrap() = OUTPUTS;
    assert_eq!(q.widths(), widths);
    let x = normal_matrix(12, INPUTS, 3);
    let (a, b) = (
        q.forward(&x, BatchStats::Batch),
        full_logits(&full, &x, BatchStats::Batch),
    );
    let d = max_diff(a.as_slice(), b.as_slice());
    assert!(d <= 1e-12, "logits differ by {d:e}");
}

#[test]
fn blown_up_two_class_net_reduces_to_its_classes_with_the_same_logits() {
    let mut full = two_class_net();
    let p = partition(&full);
    for ids in &p.classes {
        assert_eq!(
            ids,
            &CLASSES.to_vec(),
            "every hidden group has the blown-up classes"
        );
    }
    let q = QuotientNet::new(&full, &p).unwrap();
    assert_eq!(q.modules[0].sizes(), vec![4, 3]);
    let x = normal_matrix(10, INPUTS, 4);
    let (a, b) = (
        q.forward(&x, BatchStats::Batch),
        full_logits(&full, &x, BatchStats::Batch),
    );
    let d = max_diff(a.as_slice(), b.as_slice());
    assert!(d <= 1e-12, "training statistics: logits differ by {d:e}");
    // Evaluation: batchnorm's running statistics, set class-constant (they are per-unit state).
    for b in full.buffers() {
        if b.dims == [CLASSES.len()] {
            let v = if b.key.ends_with("running_var") {
                [0.7, 1.9]
            } else {
                [0.3, -0.2]
            };
            let values: Vec<f64> = CLASSES.iter().map(|&c| v[c]).collect();
            assert!(full.set_buffer(&b.key, &values));
        }
    }
    let q = QuotientNet::new(&full, &partition(&full)).unwrap();
    let (a, b) = (
        q.forward(&x, BatchStats::Running),
        full_logits(&full, &x, BatchStats::Running),
    );
    let d = max_diff(a.as_slice(), b.as_slice());
    assert!(d <= 1e-12, "running statistics: logits differ by {d:e}");
    // The multiplicities matter: the same quotient with equal class sizes in the norms is wrong.
    let mut wrong = q.clone();
    for m in &mut wrong.modules {
        if m.members.len() == 2 {
            m.members = vec![vec![0, 1, 2], vec![3, 4, 5, 6]];
        }
    }
    let d = max_diff(
        wrong.forward(&x, BatchStats::Running).as_slice(),
        b.as_slice(),
    );
    assert!(d > 1e-3, "swapped multiplicities change the logits ({d:e})");
}

#[test]
fn a_random_net_is_its_own_quotient() {
    let full = net(
        "linear(6) tanh res(layernorm linear(6) relu linear(6) gate(0.5)) batchnorm rmsnorm \
         res(linear(6) sigmoid shift(0.3)) linear",
        INPUTS,
        OUTPUTS,
        &Init::Pytorch,
        9,
    );
    let graph = UnitGraph::of_net(&full);
    let p = graph.equitable_partition(1e-9);
    let free = graph.free();
    assert_eq!(
        p.widths(),
        free.iter()
            .map(|&g| graph.groups[g].width)
            .collect::<Vec<_>>(),
        "every class a singleton"
    );
    let q = QuotientNet::new(&full, &p).unwrap();
    assert_eq!(q.widths(), full.dims()[1..].to_vec());
    for ((name, v), (info, w)) in q.tensors().into_iter().zip(full.values()) {
        assert_eq!(name, info.name);
        assert_eq!(v, w, "{name}: the full tensor");
    }
    assert_eq!(q.tensors().len(), full.param_infos().len());
    let x = normal_matrix(9, INPUTS, 6);
    let (a, b) = (
        q.forward(&x, BatchStats::Batch),
        full_logits(&full, &x, BatchStats::Batch),
    );
    let d = max_diff(a.as_slice(), b.as_slice());
    assert!(d <= 1e-12, "logits differ by {d:e}");
}

/// 20 full-batch SGD steps on the full network and on its quotient (scaled steps): the same
/// loss at every step, the same partition all along, and at the end the quotient of the trained
/// network is the trained quotient.
fn sgd_follows_the_full_network(mut full: Net<f64>, lr: f64) {
    let x = normal_matrix(16, INPUTS, 7);
    let y = normal_matrix(16, OUTPUTS, 8);
    let p = partition(&full);
    let mut q = QuotientNet::new(&full, &p).unwrap();
    let mut ws = Workspace::new(&full, x.rows());
    let idx: Vec<usize> = (0..x.rows()).collect();
    let mut curve = Vec::new();
    for step in 0..20 {
        ws.load_rows(&x, &idx);
        let mut r = rng::stream(0, Stream::Dropout);
        let lf = full.loss_and_grads(&mut ws, Loss::Mse, Targets::Dense(&y), Pass::Train(&mut r));
        let (lq, grads) = q.loss_and_grads(&x, Loss::Mse, Targets::Dense(&y), BatchStats::Batch);
        assert!(
            (lf - lq).abs() <= 1e-10 * lf.abs(),
            "step {step}: full {lf} vs quotient {lq}"
        );
        curve.push(lf);
        for k in 0..full.param_infos().len() {
            for (w, g) in full
                .param_values_mut(k)
                .iter_mut()
                .zip(ws.grads[k].as_slice())
            {
                *w -= lr * g;
            }
        }
        q.sgd_step(&grads, lr);
        assert_eq!(partition(&full), p, "step {step}: the classes stay");
    }
    assert!(
        curve[19] < 0.95 * curve[0],
        "training moved the loss: {curve:?}"
    );
    let again = QuotientNet::new(&full, &p).unwrap();
    for ((name, a), (_, b)) in again.tensors().into_iter().zip(q.tensors()) {
        let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let d = max_diff(a, b);
        assert!(
            d <= 1e-10 * scale,
            "{name}: trained quotients differ by {d:e}"
        );
    }
}

#[test]
fn sgd_on_the_quotient_of_copies_follows_the_full_networks_loss_curve() {
    sgd_follows_the_full_network(copies_net(), 0.05);
}

#[test]
fn sgd_on_the_quotient_of_a_blown_up_net_follows_the_full_networks_loss_curve() {
    sgd_follows_the_full_network(two_class_net(), 0.05);
}

#[test]
fn partitions_that_do_not_fit_are_refused() {
    let full = copies_net();
    let mut p = partition(&full);
    // Group 2, the first block's layernorm (the first linear and its tanh are one module),
    // split into singletons while its input is one class.
    p.classes[1] = (0..8).collect();
    assert!(matches!(
        QuotientNet::new(&full, &p),
        Err(QuotientError::Pointwise { module, .. }) if module == "2.body.0"
    ));
    p.classes.pop();
    assert!(matches!(
        QuotientNet::new(&full, &p),
        Err(QuotientError::Shape(_))
    ));
}

/// A zero gate does not hide the branch's units: its edge is structural, so the stream's units,
/// which the first step will separate through alpha's gradient <delta, F(x)> (the body's units
/// are distinct: rows W[a, k] = w_a), are not merged at the start; the partition is the same
/// before and after that step and the quotient is the network itself.
#[test]
fn a_zero_gate_over_distinct_units_keeps_them_apart() {
    let mut full = net(
        "linear(8, init=[constant:0.2], bias=[constant:0.1]) tanh res(linear(8) tanh gate(0)) \
         linear(init=[constant:0.3])",
        INPUTS,
        OUTPUTS,
        &Init::Pytorch,
        4,
    );
    let k = full
        .find_param("2.body.0.weight")
        .expect("the body's linear");
    for (j, w) in full.param_values_mut(k).iter_mut().enumerate() {
        *w = 0.1 * (j / 8) as f64 - 0.3;
    }
    let p = partition(&full);
    assert_eq!(
        p.widths(),
        vec![8, 8, 8, 8],
        "stream, body, gate, block output"
    );
    assert!(QuotientNet::new(&full, &p).is_ok());
    // One SGD step: alpha moves (d alpha = Σ dy_a h_a, h_a distinct) and the stream splits.
    let x = normal_matrix(8, INPUTS, 11);
    let y = normal_matrix(8, OUTPUTS, 12);
    let mut ws = Workspace::new(&full, x.rows());
    ws.load_rows(&x, &(0..x.rows()).collect::<Vec<_>>());
    full.loss_and_grads(&mut ws, Loss::Mse, Targets::Dense(&y), Pass::Eval);
    for k in 0..full.param_infos().len() {
        for (w, g) in full
            .param_values_mut(k)
            .iter_mut()
            .zip(ws.grads[k].as_slice())
        {
            *w -= 0.1 * g;
        }
    }
    assert_ne!(
        full.param_values(full.find_param("2.body.2.alpha").unwrap())[0],
        0.0
    );
    assert_eq!(partition(&full), p, "the partition holds after alpha moved");
}
