//! Networks built from `--net` specs against PyTorch: every module kind, residual blocks with
//! gates and shifts, every optimizer, in f64 and f32.
//!
//! The fixtures are written by `tests/fixtures/make_torch_module_fixtures.py` (run by hand with
//! CPU torch; see that script). `torch_modules.json`: per case a spec, torch's initial
//! parameters by `state_dict` name (every one must exist in the built network, none may be
//! left over, in the same order: this pins the naming), a batch, and for 3 training steps the
//! loss, every gradient, the parameters after the optimizer step and batchnorm's running
//! statistics. `torch_resnet.safetensors`: a torch-trained residual network's `state_dict`
//! (parameters and buffers), loaded by name and evaluated against torch's outputs in
//! `torch_resnet.json`. Per tensor the check is `|ours - torch| <= rtol * max|torch| + atol`,
//! as in `torch_parity`: rtol 1e-10, atol 1e-13 in f64; rtol 1e-4, atol 1e-6 in f32.

use super::support::{check_tensor, optim_config, Tol};
use initscope::init::Init;
use initscope::loss::{Loss, Targets};
use initscope::matrix::Matrix;
use initscope::nn::build::{build_net, BuildOptions};
use initscope::nn::spec::NetSpec;
use initscope::nn::{Net, Pass, Workspace};
use initscope::optim::Optimizer;
use initscope::rng::{self, Stream};
use initscope::scalar::Float;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/torch_modules.json");

const F64: Tol = Tol {
    rtol: 1e-10,
    atol: 1e-13,
};
const F32: Tol = Tol {
    rtol: 1e-4,
    atol: 1e-6,
};

/// Checks one tensor; returns the worst |ours - torch| / max|torch| for the report, 0 for a
/// tensor below the noise floor (max|torch| <= atol / rtol: its entries are rounding noise, like
/// the gradient of a bias that feeds a batchnorm, and only atol bounds them).
fn check(case: &str, what: &str, ours: &[f64], torch: &[f64], tol: &Tol) -> f64 {
    let (worst, scale) = check_tensor(case, what, ours, torch, tol);
    if tol.rtol * scale > tol.atol {
        worst / scale
    } else {
        0.0
    }
}

/// A tensor written as nested JSON arrays (a 0-d tensor as a number): its shape and its values
/// flat in row-major order.
fn tensor(v: &Value) -> (Vec<usize>, Vec<f64>) {
    match v {
        Value::Array(items) => {
            let parts: Vec<(Vec<usize>, Vec<f64>)> = items.iter().map(tensor).collect();
            let inner = parts.first().map_or_else(Vec::new, |p| p.0.clone());
            assert!(parts.iter().all(|p| p.0 == inner), "ragged tensor");
            let mut dims = vec![items.len()];
            dims.extend(inner);
            (dims, parts.into_iter().flat_map(|p| p.1).collect())
        }
        other => (Vec::new(), vec![other.as_f64().expect("a number")]),
    }
}

/// `[[name, tensor], ...]`, in order.
fn named(v: &Value) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    v.as_array()
        .expect("named tensors")
        .iter()
        .map(|p| {
            let name = p[0].as_str().expect("name").to_string();
            let (dims, values) = tensor(&p[1]);
            (name, dims, values)
        })
        .collect()
}

fn matrix<T: Float>(v: &Value) -> Matrix<T> {
    let (dims, values) = tensor(v);
    assert_eq!(dims.len(), 2, "a matrix");
    Matrix::from_f64(&Matrix::from_vec(dims[0], dims[1], values))
}

/// `spec`'s network in precision `T` (its starting values are overwritten from the fixtures).
fn build<T: Float>(spec: &str, inputs: usize, outputs: usize) -> Net<T> {
    let spec = NetSpec::parse(spec).unwrap_or_else(|e| panic!("{e}"));
    build_net::<T>(
        &spec,
        &BuildOptions::new(inputs, outputs, Init::Pytorch, Some(Init::Pytorch), 0),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The tensor of `net` named `name`, which must exist with shape `dims`.
fn param_index<T: Float>(net: &Net<T>, case: &str, name: &str, dims: &[usize]) -> usize {
    let k = net
        .find_param(name)
        .unwrap_or_else(|| panic!("{case}: torch's parameter {name} is not in the network"));
    assert_eq!(net.param_infos()[k].dims, dims, "{case}: shape of {name}");
    k
}

/// Sets every parameter of `net` from torch's, by name; the names must be exactly the
/// network's, in `state_dict` order.
fn load_params<T: Float>(net: &mut Net<T>, case: &str, params: &[(String, Vec<usize>, Vec<f64>)]) {
    let ours: Vec<&str> = net.param_infos().iter().map(|p| p.name.as_str()).collect();
    let theirs: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(ours, theirs, "{case}: parameter names and order");
    for (name, dims, values) in params {
        let k = param_index(net, case, name, dims);
        for (p, &v) in net.param_values_mut(k).iter_mut().zip(values) {
            *p = T::from_f64(v);
        }
    }
}

fn f64s<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// The buffers of `net` against torch's (same names in the same order, shapes and values;
/// `num_batches_tracked` exactly).
fn check_buffers<T: Float>(
    net: &Net<T>,
    case: &str,
    what: &str,
    torch: &[(String, Vec<usize>, Vec<f64>)],
    tol: &Tol,
) -> f64 {
    let ours = net.buffers();
    let names: Vec<&str> = ours.iter().map(|b| b.key.as_str()).collect();
    let theirs: Vec<&str> = torch.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(names, theirs, "{case}: buffer names and order");
    let mut worst: f64 = 0.0;
    for (b, (name, dims, values)) in ours.iter().zip(torch) {
        assert_eq!(&b.dims, dims, "{case}: shape of {name}");
        if name.ends_with("num_batches_tracked") {
            assert_eq!(&b.values, values, "{case} {what}: {name}");
        } else {
            worst = worst.max(check(
                case,
                &format!("{what} {name}"),
                &b.values,
                values,
                tol,
            ));
        }
    }
    worst
}

/// Runs one case: the network loaded with torch's parameters, 3 training steps, each step's
/// loss, gradients, parameters and buffers against torch's. Returns the worst relative
/// deviation.
fn run_case<T: Float>(c: &Value, tol: &Tol) -> f64 {
    let name = c["name"].as_str().expect("name");
    let dtype = c["dtype"].as_str().expect("dtype");
    let case = format!("{name} ({dtype})");
    let spec = c["spec"].as_str().expect("spec");
    let width = |k: &str| c[k].as_u64().expect("width") as usize;
    let mut net = build::<T>(spec, width("inputs"), width("outputs"));
    load_params(&mut net, &case, &named(&c["params"]));
    check_buffers(&net, &case, "initial", &named(&c["buffers"]), tol);

    let loss: Loss = c["loss"].as_str().expect("loss").parse().expect("loss");
    let x: Matrix<T> = matrix(&c["x"]);
    let batch = x.rows();
    assert_eq!(batch as u64, c["batch"].as_u64().expect("batch"));
    let classes: Vec<u32> = if loss == Loss::CrossEntropy {
        serde_json::from_value(c["y"].clone()).expect("classes")
    } else {
        Vec::new()
    };
    let dense: Matrix<T> = if loss == Loss::CrossEntropy {
        Matrix::zeros(0, 0)
    } else {
        matrix(&c["y"])
    };
    let targets = if loss == Loss::CrossEntropy {
        Targets::Classes(&classes)
    } else {
        Targets::Dense(&dense)
    };
    let mut ws = Workspace::new(&net, batch);
    ws.load_rows(&x, &(0..batch).collect::<Vec<_>>());

    let cfg = optim_config(&c["optimizer"]);
    let lr = cfg.lr;
    let mut opt = Optimizer::new(cfg, &net);
    // No dropout in these networks: the stream is never drawn from.
    let mut stream = rng::stream(0, Stream::Dropout);
    let steps = c["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    let mut worst: f64 = 0.0;
    for (s, step) in steps.iter().enumerate() {
        let at = |what: &str| format!("step {} {what}", s + 1);
        let value = net.loss_and_grads(&mut ws, loss, targets, Pass::Train(&mut stream));
        net.update_buffers(&ws);
        let want = step["loss"].as_f64().expect("loss value");
        worst = worst.max(check(&case, &at("loss"), &[value], &[want], tol));
        let grads = named(&step["grads"]);
        assert_eq!(grads.len(), net.param_infos().len(), "{case}: gradients");
        for (p, dims, g) in &grads {
            let k = param_index(&net, &case, p, dims);
            let ours = f64s(ws.grads[k].as_slice());
            worst = worst.max(check(&case, &at(&format!("gradient {p}")), &ours, g, tol));
        }
        opt.step(&mut net, &ws.grads, lr);
        let params = named(&step["params"]);
        assert_eq!(params.len(), net.param_infos().len(), "{case}: parameters");
        for (p, dims, v) in &params {
            let k = param_index(&net, &case, p, dims);
            let ours = f64s(net.param_values(k));
            worst = worst.max(check(&case, &at(&format!("after {p}")), &ours, v, tol));
        }
        worst = worst.max(check_buffers(
            &net,
            &case,
            &at("buffer"),
            &named(&step["buffers"]),
            tol,
        ));
    }
    worst
}

#[test]
fn spec_networks_train_as_in_pytorch() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let cases = fixture["cases"].as_array().expect("cases");
    let (mut n64, mut n32, mut w64, mut w32) = (0, 0, 0.0f64, 0.0f64);
    for c in cases {
        match c["dtype"].as_str() {
            Some("f64") => {
                w64 = w64.max(run_case::<f64>(c, &F64));
                n64 += 1;
            }
            Some("f32") => {
                w32 = w32.max(run_case::<f32>(c, &F32));
                n32 += 1;
            }
            other => panic!("unknown dtype {other:?}"),
        }
    }
    println!(
        "torch_modules: worst relative deviation from torch {} (tensors above the noise \
         floor atol/rtol): {w64:.3e} over {n64} f64 cases, {w32:.3e} over {n32} f32 cases",
        fixture["torch"]
    );
    assert_eq!((n64, n32), (13, 13));
    // Every module kind, residual blocks (repeated, nested, gated, shifted, ReZero), every loss
    // and every optimizer, in both precisions.
    for dtype in ["f64", "f32"] {
        let of =
            |pred: &dyn Fn(&Value) -> bool| cases.iter().any(|c| c["dtype"] == dtype && pred(c));
        let spec_has = |s: &'static str| move |c: &Value| c["spec"].as_str().unwrap().contains(s);
        for s in [
            "linear",
            "bias=none",
            "layernorm",
            "affine=false",
            "rmsnorm",
            "rmsnorm(eps",
            "batchnorm",
            "momentum=",
            "gate(",
            "gate(0.0)",
            "shift(",
            "res(",
            ")*",
        ] {
            assert!(of(&spec_has(s)), "no {dtype} case with `{s}`");
        }
        assert!(
            of(&|c: &Value| res_depth(c["spec"].as_str().unwrap()) >= 2),
            "no {dtype} case with nested blocks"
        );
        for s in [
            "relu", "tanh", "gelu", "silu", "sigmoid", "softsign", "selu", "identity",
        ] {
            assert!(of(&spec_has(s)), "no {dtype} case with `{s}`");
        }
        for loss in ["mse", "cross_entropy", "bce"] {
            assert!(of(&|c: &Value| c["loss"] == loss), "no {dtype} {loss} case");
        }
        for kind in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"] {
            assert!(
                of(&|c: &Value| c["optimizer"]["kind"] == kind),
                "no {dtype} {kind} case"
            );
        }
        assert!(
            of(&|c: &Value| c["buffers"].as_array().is_some_and(|b| !b.is_empty())),
            "no {dtype} case with batchnorm buffers"
        );
    }
}

/// How deep `res(...)` blocks nest in a spec's text.
fn res_depth(spec: &str) -> usize {
    let (mut open, mut depth, mut max) = (Vec::new(), 0, 0);
    for (i, c) in spec.char_indices() {
        match c {
            '(' => {
                let res = spec[..i].ends_with("res");
                depth += usize::from(res);
                max = max.max(depth);
                open.push(res);
            }
            ')' => depth -= usize::from(open.pop().expect("balanced")),
            _ => {}
        }
    }
    max
}

/// A safetensors tensor's values as f64 (f32, f64 and int64 tensors).
fn values(view: &safetensors::tensor::TensorView<'_>) -> Vec<f64> {
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// torch_resnet's network in precision `T` with the file's parameters and buffers set by name,
/// every tensor of the file used and every parameter and buffer of the network set.
fn load_resnet<T: Float>(st: &SafeTensors<'_>, meta: &Value) -> Net<T> {
    let width = |k: &str| meta[k].as_u64().expect("width") as usize;
    let mut net = build::<T>(
        meta["spec"].as_str().expect("spec"),
        width("inputs"),
        width("outputs"),
    );
    let buffer_names: Vec<String> = net.buffers().into_iter().map(|b| b.key).collect();
    let (mut params, mut buffers) = (0, 0);
    for (name, view) in st.tensors() {
        let v = values(&view);
        if let Some(k) = net.find_param(&name) {
            assert_eq!(net.param_infos()[k].dims, view.shape(), "shape of {name}");
            for (p, &x) in net.param_values_mut(k).iter_mut().zip(&v) {
                *p = T::from_f64(x);
            }
            params += 1;
        } else {
            assert!(
                net.set_buffer(&name, &v),
                "{name}: neither a parameter nor a buffer of the network"
            );
            let b = net.buffers().into_iter().find(|b| b.key == name).unwrap();
            assert_eq!(b.dims, view.shape(), "shape of {name}");
            assert_eq!(b.values, v, "{name} reads back");
            buffers += 1;
        }
    }
    assert_eq!(
        params,
        net.param_infos().len(),
        "every parameter in the file"
    );
    assert_eq!(buffers, buffer_names.len(), "every buffer in the file");
    net
}

/// The network's evaluation-mode output for `x` against torch's.
fn eval_against<T: Float>(net: &Net<T>, x: &Value, want: &Value, what: &str, tol: &Tol) -> f64 {
    let x: Matrix<T> = matrix(x);
    let mut ws = Workspace::new(net, x.rows());
    ws.load_rows(&x, &(0..x.rows()).collect::<Vec<_>>());
    let out = net.forward(&mut ws, Pass::Eval).to_f64();
    let (dims, want) = tensor(want);
    assert_eq!(dims, [out.rows(), out.cols()]);
    check("torch_resnet", what, out.as_slice(), &want, tol)
}

#[test]
fn a_pytorch_state_dict_with_running_statistics_loads_and_evaluates_as_in_pytorch() {
    let bytes = include_bytes!("../fixtures/torch_resnet.safetensors");
    let meta: Value = serde_json::from_str(include_str!("../fixtures/torch_resnet.json"))
        .expect("fixture parses");
    let st = SafeTensors::deserialize(bytes).expect("a safetensors file");

    let net = load_resnet::<f32>(&st, &meta);
    // Torch trained it: the running statistics are no longer their initial values.
    let buffers = net.buffers();
    assert!(buffers.len() >= 6);
    for b in &buffers {
        if b.key.ends_with("num_batches_tracked") {
            assert!(b.values[0] > 0.0, "{}", b.key);
        } else if b.key.ends_with("running_var") {
            assert!(b.values.iter().any(|&v| v != 1.0), "{}", b.key);
        } else {
            assert!(b.values.iter().any(|&v| v != 0.0), "{}", b.key);
        }
    }
    let w32 = eval_against(&net, &meta["x"], &meta["eval_f32"], "f32 eval", &F32);
    let net = load_resnet::<f64>(&st, &meta);
    let w64 = eval_against(&net, &meta["x"], &meta["eval_f64"], "f64 eval", &F64);
    println!(
        "torch_resnet: worst relative deviation from torch {}: f64 {w64:.3e}, f32 {w32:.3e}",
        meta["torch"]
    );

    // Names that are not buffers of this network, and values that do not fit, are refused.
    let mut net = net;
    let before = net.buffers();
    for (name, v) in [
        ("3.running_std", &[0.0; 6][..]),
        ("1.body.0.running_mean", &[0.0; 6][..]),
        ("9.running_mean", &[0.0; 6][..]),
        ("2.body.0.running_mean", &[0.0; 5][..]),
        ("3.num_batches_tracked", &[-2.0][..]),
        ("3.weight", &[0.0; 6][..]),
    ] {
        assert!(!net.set_buffer(name, v), "{name}");
    }
    assert_eq!(net.buffers(), before);
}

/// `--init-from` with `--net`: the run's starting point is the file's state_dict (parameters and
/// running statistics), so the network the run builds evaluates as torch's model does; and a
/// file whose tensors are not the network's is refused naming them.
#[test]
fn init_from_loads_a_pytorch_state_dict_into_a_net_run() {
    let meta: Value = serde_json::from_str(include_str!("../fixtures/torch_resnet.json"))
        .expect("fixture parses");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_resnet.safetensors"
    );
    let spec = meta["spec"].as_str().expect("spec");
    let toml = format!(
        "data = \"teacher:dim=4,outputs=3\"\nnet = \"{spec}\"\ninit_from = \"{path}\"\nprecision = \"f64\"\nsteps = 1"
    );
    let raw: initscope::config::RawConfig = toml::from_str(&toml).expect("toml");
    let (cfg, data) = initscope::config::validate(&raw).unwrap_or_else(|e| panic!("{e}"));
    let start = initscope::train::initial_params(&cfg, &data).unwrap_or_else(|e| panic!("{e}"));
    assert!(!start.params.buffers().is_empty());
    let net = cfg.network::<f64>(&start.params);
    let w = eval_against(
        &net,
        &meta["x"],
        &meta["eval_f64"],
        "f64 eval via --init-from",
        &F64,
    );
    assert!(w < 1e-12, "{w}");

    let other = toml.replace(spec, "linear(6) res(linear(6) relu linear(6)) linear");
    let raw: initscope::config::RawConfig = toml::from_str(&other).expect("toml");
    let (cfg, data) = initscope::config::validate(&raw).unwrap_or_else(|e| panic!("{e}"));
    let e = initscope::train::initial_params(&cfg, &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing 1.body.2.weight"), "{e}");
    assert!(
        e.contains("unexpected") && e.contains("3.running_mean"),
        "{e}"
    );
}
