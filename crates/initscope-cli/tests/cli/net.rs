//! `--net`: networks of modules from the command line, as a user runs them.

use super::{assert_bad_input, initscope, stderr, temp_dir};

const REZERO: &str =
    "linear(16) relu res(layernorm linear(16) relu linear(16) gate(0))*2 batchnorm linear";

fn header(path: &std::path::Path) -> serde_json::Value {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&b[8..8 + n]).unwrap()
}

#[test]
fn train_net_writes_state_dict_names_buffers_and_widths_on_the_unit_graph() {
    let dir = temp_dir("net-train");
    let out = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--net",
        REZERO,
        "--steps",
        "60",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let h = header(&out.join("weights.safetensors"));
    for key in [
        "0.weight",
        "2.body.0.weight",
        "2.body.1.weight",
        "2.body.4.alpha",
        "3.body.3.bias",
        "4.running_mean",
        "4.running_var",
        "4.num_batches_tracked",
        "5.weight",
    ] {
        assert!(h.get(key).is_some(), "{key} missing: {h}");
    }
    assert_eq!(h["4.num_batches_tracked"]["dtype"], "I64");
    assert_eq!(h["4.num_batches_tracked"]["shape"], serde_json::json!([]));
    let meta = &h["__metadata__"];
    assert_eq!(meta["initscope_net"], REZERO);
    assert!(meta["pytorch"]
        .as_str()
        .unwrap()
        .contains("class Gate(nn.Module)"));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    // Effective widths on the unit graph: every layer and the one residual stream (blocks 2
    // and 3) start at full width from PyTorch's random init.
    assert_ne!(s["verdict"], "unassessed", "{s}");
    assert_eq!(s["layers"][0]["width_init_tol"], 16, "{s}");
    assert_eq!(s["streams"][0]["first_block"], "2", "{s}");
    assert_eq!(s["streams"][0]["last_block"], "3", "{s}");
    assert_eq!(s["streams"][0]["width_init"], 16, "{s}");
    // ReZero: the gate starts at 0, so the first linear of each branch wakes at step 1.
    assert_eq!(s["layers"][1]["wake_step"], 1, "{s}");
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["net"], REZERO);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn equivalent_spellings_share_a_run_id_and_an_arch_spelling_trains_like_arch() {
    let id = |net: Option<&str>, extra: &[&str]| {
        let mut args = vec!["train", "--data", "xor", "--steps", "20", "--json"];
        if let Some(n) = net {
            args.extend(["--net", n]);
        }
        args.extend_from_slice(extra);
        let o = initscope(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["run_id"].clone(), v["train_loss"].clone())
    };
    let a = id(
        Some("linear(8) leaky_relu(0.2) layernorm(eps=1e-5) linear"),
        &[],
    );
    let b = id(Some(" linear( 8 ) leaky_relu:0.2\nlayernorm linear "), &[]);
    assert_eq!(a, b);
    // The same network written as --hidden/--act: the same weights and the same losses (the run
    // ids differ: one config names a spec, the other an architecture).
    let spec = id(Some("linear(8) tanh linear(8) tanh linear"), &[]);
    let arch = id(None, &["--hidden", "8,8", "--act", "tanh"]);
    assert_eq!(spec.1, arch.1);
}

#[test]
fn net_errors_are_one_line_naming_the_module_or_the_flag() {
    assert_bad_input(
        &["train", "--net", "linear(8) res(linear(4)) linear"],
        "module 2 `res(linear(4))`: the body changes the width from 8 to 4",
    );
    assert_bad_input(
        &["train", "--net", "linear(8) relu", "--hidden", "8"],
        "--hidden cannot be used with --net",
    );
    assert_bad_input(
        &[
            "train",
            "--net",
            "linear(8) relu linear",
            "--dropout",
            "0.1",
        ],
        "write dropout(p) modules",
    );
    assert_bad_input(
        &["train", "--net", "linear(8) frob linear"],
        "unknown module `frob`",
    );
    assert_bad_input(
        &["train", "--net", "linear(8) gate(x) linear"],
        "bad number `x` for value",
    );
    assert_bad_input(&["train", "--net", "linear(8 relu"], "unbalanced");
    assert_bad_input(
        &["train", "--data", "moons", "--net", "linear(8) batchnorm linear", "--batch", "51"],
        "the last batch of each epoch has 1 row (256 training rows in batches of 51); use --batch 50",
    );
    assert_bad_input(
        &[
            "train",
            "--data",
            "moons",
            "--net",
            "linear(8) relu linear(3)",
        ],
        "the network ends with width 3 but the data has 2 output(s)",
    );
}

#[test]
fn net_show_lists_every_tensor_with_its_initializer() {
    let o = initscope(&["net", "show", REZERO, "--data", "moons"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "2.body.4.alpha",
        "constant:0",
        "2.body.0.weight",
        "constant:1",
        "4.num_batches_tracked",
        "buffer (not trained)",
        "6 linear layers",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    let o = initscope(&["net", "show", REZERO, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tensors"][0]["name"], "0.weight");
    assert_eq!(v["tensors"][0]["linear"], 1);
}

#[test]
fn gradcheck_passes_through_every_module_kind() {
    let o = initscope(&[
        "gradcheck", "--data", "moons", "--net",
        "linear(6) res(layernorm linear(6) tanh linear(6) gate(0.5)) rmsnorm batchnorm shift(0.1) sigmoid linear",
        "--rows", "16",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("(1.body.0.weight)")
            && out.contains("(1.body.4.alpha)")
            && out.contains("(4.bias)"),
        "{out}"
    );
}

#[test]
fn explain_on_a_residual_net_says_what_it_does_not_derive_and_gives_the_wake_order() {
    let o = initscope(&[
        "explain",
        "--data",
        "moons",
        "--net",
        "linear(8) relu res(layernorm linear(8) relu linear(8) gate(0)) linear",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["derivation"].is_null(), "{v}");
    // The quotient's widths: input, then each linear layer's tolerance classes.
    assert_eq!(
        v["quotient_init"],
        serde_json::json!([2, 8, 8, 8, 2]),
        "{v}"
    );
    let steps = v["module_derivation"]["modules"].as_array().unwrap();
    let gate = steps.iter().find(|m| m["path"] == "2.body.4").unwrap();
    assert!(
        gate["zero_reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("gate alpha = 0"),
        "{gate}"
    );
    assert_eq!(v["verdict"], "full", "{v}");
    // ReZero: the output and first layers get gradients at step 0, the branch (gate 0) at 1.
    let wake: Vec<_> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["wake_step"].clone())
        .collect();
    assert_eq!(wake, [0, 1, 1, 0].map(serde_json::Value::from));
    // Every tensor's wake-up step, predicted from the zero pattern and measured, agree.
    let tensors = v["tensors"].as_array().unwrap();
    let alpha = tensors
        .iter()
        .find(|t| t["name"] == "2.body.4.alpha")
        .unwrap();
    assert_eq!(
        (&alpha["wake_predicted"], &alpha["wake_measured"]),
        (&0.into(), &0.into()),
        "{alpha}"
    );
    for t in tensors {
        assert_eq!(t["wake_predicted"], t["wake_measured"], "{t}");
    }
    let o = initscope(&[
        "explain",
        "--data",
        "moons",
        "--net",
        "linear(8) relu res(layernorm linear(8) relu linear(8) gate(0)) linear",
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("Module 2.body.4 (gate, 8)"), "{text}");
    assert!(text.contains("ZERO: gate alpha = 0"), "{text}");
}

#[test]
fn metrics_of_norms_gates_and_shifts_carry_their_path_and_the_report_reads_them() {
    let dir = temp_dir("net-metrics");
    let out = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--net",
        "linear(8) relu res(layernorm linear(8) relu linear(8) gate(0)) shift(0.1) linear",
        "--steps",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        csv.starts_with("run_id,step,metric,layer,module,value\n"),
        "{}",
        &csv[..80]
    );
    assert!(
        csv.contains(",0,tensor_value,,2.body.4.alpha,0\n"),
        "the gate starts at 0"
    );
    assert!(csv.contains(",tensor_grad_norm,,2.body.0.weight,"));
    assert!(
        csv.contains(",grad_norm,1,,"),
        "linear layers keep their number"
    );
    let o = initscope(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.contains("unassessed"),
        "widths are assessed for every network"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_times_a_net_spec() {
    let o = initscope(&[
        "bench",
        "--net",
        "linear(64) relu res(layernorm linear(64) relu linear(64))*2 linear",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = v.as_array().unwrap().last().unwrap().clone();
    assert!(
        r["workload"]
            .as_str()
            .unwrap()
            .starts_with("net linear(64)"),
        "{r}"
    );
    assert!(r["value"].as_f64().unwrap() > 0.0);
    assert_bad_input(
        &["bench", "--net", "linear(64) relu linear(3)"],
        "the data has 10 output(s)",
    );
}

#[test]
fn review_findings_stay_fixed() {
    // A spec without a linear layer is refused, not trained into a panic.
    for net in ["relu", "layernorm"] {
        assert_bad_input(
            &["train", "--data", "moons", "--net", net],
            "the network needs at least one linear layer",
        );
    }
    // LSUV would undo a preset's scales.
    assert_bad_input(
        &[
            "train",
            "--net",
            "linear(8) res(linear(8) relu linear(8)) linear",
            "--preset",
            "fixup",
            "--init",
            "lsuv",
        ],
        "LSUV would rescale them",
    );
    // A tensor path names its own tensor: a bias is not a weight.
    assert_bad_input(
        &[
            "train",
            "--net",
            "linear(8) relu linear",
            "--layer-init",
            "0.bias=zeros",
        ],
        "'0.bias' is not a weight tensor",
    );
    // A file written by a --net run needs --net to be read.
    let dir = temp_dir("net-review");
    let out = dir.join("run");
    let o = initscope(&[
        "train",
        "--net",
        "linear(8) relu linear",
        "--steps",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let w = out.join("weights.safetensors");
    assert_bad_input(
        &["train", "--init-from", w.to_str().unwrap(), "--steps", "2"],
        "was written by a --net run (network 'linear(8) relu linear'): give --net",
    );
    let o = initscope(&[
        "train",
        "--net",
        "linear(8) relu linear",
        "--init-from",
        w.to_str().unwrap(),
        "--steps",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A top-level linear's path carries its suffix; the bare number is the layer number.
    let o = initscope(&[
        "train",
        "--net",
        "linear(4) relu res(linear(4) relu linear(4)) linear",
        "--steps",
        "1",
        "--layer-init",
        "3.weight=zeros",
        "--out",
        dir.join("paths").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn relu_grad0_one_is_accepted_by_act_and_net_and_its_pytorch_snippet_defines_it() {
    let dir = temp_dir("relu-grad0");
    for (i, args) in [
        vec![
            "--net",
            "linear(8, init=zeros, bias=zeros) relu(grad0=1) linear",
        ],
        vec!["--hidden", "8", "--act", "relu(grad0=1)"],
        vec!["--hidden", "8", "--act", "relu:grad0=1"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.join(format!("run{i}"));
        let mut all = vec!["train", "--data", "moons", "--steps", "3"];
        all.extend(args);
        all.extend(["--out", out.to_str().unwrap()]);
        let o = initscope(&all);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let snippet = header(&out.join("weights.safetensors"))["__metadata__"]["pytorch"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            snippet.contains("class ReLUGrad1(nn.Module)") && snippet.contains("ReLUGrad1()"),
            "{snippet}"
        );
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert!(c.to_string().contains("relu:grad0=1"), "{c}");
    }
    // Plain relu: nn.ReLU and no extra class.
    let out = dir.join("plain");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "3",
        "--hidden",
        "8",
        "--act",
        "relu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let snippet = header(&out.join("weights.safetensors"))["__metadata__"]["pytorch"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        snippet.contains("nn.ReLU()") && !snippet.contains("class"),
        "{snippet}"
    );
    assert_bad_input(
        &["train", "--act", "relu:grad0=2"],
        "relu'(0) must be 0 (PyTorch) or 1",
    );
    assert_bad_input(
        &["train", "--net", "linear(8) relu(grad0=0.5) linear"],
        "relu'(0) must be 0 (PyTorch) or 1",
    );
}
