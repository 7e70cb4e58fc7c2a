//! initscope against PyTorch autograd and torch.optim on the same weights and data.
//!
//! The fixture `tests/fixtures/torch_parity.json` is written by `make_torch_fixtures.py` (run by
//! hand with CPU torch; see that script). Per tensor the check is
//! `|ours - torch| <= rtol * max|torch| + atol`: rtol 1e-10, atol 1e-13 in f64; rtol 1e-4,
//! atol 1e-6 in f32 (torch's f32 kernels sum in other orders and use other exp/tanh/erf).

use super::support::{check_tensor, optim_config, Tol};
use initscope::activation::Activation;
use initscope::loss::{Loss, Targets};
use initscope::matrix::Matrix;
use initscope::nn::{LayerParams, Net, Pass, Workspace};
use initscope::optim::Optimizer;
use initscope::scalar::Float;
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/torch_parity.json");

fn matrix(v: &Value) -> Matrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("matrix");
    let cols = rows.first().map_or(0, Vec::len);
    Matrix::from_vec(rows.len(), cols, rows.concat())
}

fn vector(v: &Value) -> Option<Vec<f64>> {
    serde_json::from_value(v.clone()).expect("vector")
}

fn layers(v: &Value) -> Vec<LayerParams> {
    v.as_array()
        .expect("layers")
        .iter()
        .map(|l| LayerParams {
            weight: matrix(&l["weight"]),
            bias: vector(&l["bias"]),
        })
        .collect()
}

/// Checks one tensor; returns the worst |ours - torch| / (max|torch|) for the report.
fn check(case: &str, what: &str, ours: &[f64], torch: &[f64], tol: &Tol) -> f64 {
    let (worst, scale) = check_tensor(case, what, ours, torch, tol);
    worst / scale.max(f64::MIN_POSITIVE)
}

fn check_params(
    case: &str,
    what: &str,
    ours: &[LayerParams],
    torch: &[LayerParams],
    tol: &Tol,
) -> f64 {
    let mut worst: f64 = 0.0;
    for (l, (o, t)) in ours.iter().zip(torch).enumerate() {
        let w = format!("{what} layer {} weight", l + 1);
        worst = worst.max(check(
            case,
            &w,
            o.weight.as_slice(),
            t.weight.as_slice(),
            tol,
        ));
        if let (Some(ob), Some(tb)) = (&o.bias, &t.bias) {
            worst = worst.max(check(
                case,
                &format!("{what} layer {} bias", l + 1),
                ob,
                tb,
                tol,
            ));
        } else {
            assert_eq!(o.bias.is_some(), t.bias.is_some(), "{case}: bias presence");
        }
    }
    worst
}

fn run_case<T: Float>(c: &Value, tol: &Tol) -> f64 {
    let name = c["name"].as_str().expect("name");
    let act: Activation = c["act"].as_str().expect("act").parse().expect("activation");
    let loss: Loss = c["loss"].as_str().expect("loss").parse().expect("loss");
    let start = layers(&c["params"]);
    let mut net = Net::<T>::from_params(&start, act);
    let x: Matrix<T> = matrix(&c["x"]).cast();
    let batch = x.rows();
    let (classes, dense): (Vec<u32>, Matrix<T>) = if loss == Loss::CrossEntropy {
        (
            serde_json::from_value(c["y"].clone()).expect("classes"),
            Matrix::zeros(0, 0),
        )
    } else {
        (Vec::new(), matrix(&c["y"]).cast())
    };
    let targets = if loss == Loss::CrossEntropy {
        Targets::Classes(&classes)
    } else {
        Targets::Dense(&dense)
    };
    let mut ws = Workspace::new(&net, batch);
    let idx: Vec<usize> = (0..batch).collect();
    ws.load_rows(&x, &idx);

    let value = net.loss_and_grads(&mut ws, loss, targets, Pass::Eval);
    let want = c["loss_value"].as_f64().expect("loss value");
    let mut worst = check(name, "loss", &[value], &[want], tol);
    let grads: Vec<LayerParams> = (0..net.num_layers())
        .map(|i| {
            let (dw, db) = net.layer_grads(&ws.grads, i);
            LayerParams {
                weight: dw.to_f64(),
                bias: db.map(|b| b.iter().map(|x| x.to_f64()).collect()),
            }
        })
        .collect();
    worst = worst.max(check_params(
        name,
        "gradient",
        &grads,
        &layers(&c["grads"]),
        tol,
    ));

    let cfg = optim_config(&c["optimizer"]);
    let lr = cfg.lr;
    let mut opt = Optimizer::new(cfg, &net);
    let steps = c["steps"].as_u64().expect("steps");
    for s in 0..steps {
        if s > 0 {
            net.loss_and_grads(&mut ws, loss, targets, Pass::Eval);
        }
        opt.step(&mut net, &ws.grads, lr);
    }
    worst.max(check_params(
        name,
        "after steps",
        &net.params(),
        &layers(&c["after"]),
        tol,
    ))
}

#[test]
fn losses_gradients_and_optimizer_steps_equal_pytorch() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let cases = fixture["cases"].as_array().expect("cases");
    let (mut n64, mut n32) = (0, 0);
    for c in cases {
        match c["dtype"].as_str() {
            Some("f64") => {
                run_case::<f64>(
                    c,
                    &Tol {
                        rtol: 1e-10,
                        atol: 1e-13,
                    },
                );
                n64 += 1;
            }
            Some("f32") => {
                run_case::<f32>(
                    c,
                    &Tol {
                        rtol: 1e-4,
                        atol: 1e-6,
                    },
                );
                n32 += 1;
            }
            other => panic!("unknown dtype {other:?}"),
        }
    }
    // Every activation, loss and optimizer is in the fixture, in both precisions.
    assert_eq!((n64, n32), (30, 30));
    for (key, names) in [
        ("act", initscope::activation::ACTIVATION_NAMES.to_vec()),
        ("loss", vec!["mse", "cross_entropy", "bce"]),
    ] {
        for name in names {
            assert!(
                cases.iter().any(|c| c[key] == name),
                "the fixture has no case with {key} {name}"
            );
        }
    }
    for kind in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"] {
        assert!(
            cases.iter().any(|c| c["optimizer"]["kind"] == kind),
            "no {kind} case"
        );
    }
}

/// Each shared initializer against torch.nn.init on a (256, 512) weight (fixture
/// `torch_init.json`): sample mean and variance agree within 6 standard errors of their
/// difference (from each sample's own fourth moment), and uniform ranges agree within 0.5%.
#[test]
fn torch_init_moments() {
    use initscope::init::{Fans, FillContext, Init, Role};
    use initscope::rng::{self, Stream};

    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/torch_init.json")).expect("fixture parses");
    for (i, t) in fixture["inits"]
        .as_array()
        .expect("inits")
        .iter()
        .enumerate()
    {
        let spec = t["spec"].as_str().expect("spec");
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).expect("shape");
        let init = Init::parse("--init", spec).expect("spec parses");
        let ctx = FillContext {
            fans: Fans {
                fan_in: shape[1],
                fan_out: shape[0],
            },
            act: Activation::Identity,
            role: Role::Weight,
        };
        let mut w = vec![0.0; shape[0] * shape[1]];
        init.fill(&mut w, &ctx, &mut rng::stream(i as u64, Stream::Weight(1)));
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m4 = w.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        let (tm, tv) = (t["mean"].as_f64().unwrap(), t["var"].as_f64().unwrap());
        let se_mean = (2.0 * var.max(tv) / n).sqrt();
        let se_var = (2.0 * (m4 - var * var).max(0.0) / n).sqrt();
        assert!(
            (mean - tm).abs() <= 6.0 * se_mean + 1e-12,
            "{spec}: mean {mean:e} vs torch {tm:e}"
        );
        assert!(
            (var - tv).abs() <= 6.0 * se_var + 1e-12 * tv.max(1e-300),
            "{spec}: variance {var:e} vs torch {tv:e} (standard error {se_var:e})"
        );
        if spec.contains("uniform") || spec == "pytorch" {
            let theirs = t["max"].as_f64().unwrap().max(-t["min"].as_f64().unwrap());
            let ours = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(
                (ours / theirs - 1.0).abs() < 5e-3,
                "{spec}: range ±{ours} vs torch ±{theirs}"
            );
        }
    }
}
