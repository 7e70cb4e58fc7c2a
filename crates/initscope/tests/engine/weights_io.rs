//! Weights round-trip through safetensors in DESIGN.md's layout; bad files are refused clearly.

use std::collections::{BTreeMap, HashMap};

use initscope::config::{init_from_note, validate, with_weights, RawConfig};
use initscope::output::safetensors::{load_params, to_bytes};
use initscope::train::{params_from, train, train_from};
use initscope::weights::NamedTensors;

use crate::support::{config, params};

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("initscope-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("w.safetensors")
}

#[test]
fn saved_weights_load_back_exactly_and_continue_training() {
    for precision in ["f32", "f64"] {
        let (cfg, data) = config(&format!(
            "data = \"moons\"\nsteps = 30\nprecision = \"{precision}\""
        ));
        let out = train(&cfg, &data, &mut |_| {}).unwrap();
        let path = temp_path(precision);
        std::fs::write(&path, to_bytes(&out.params, &cfg).unwrap()).unwrap();
        let loaded = load_params(&path, &cfg.arch, true).unwrap();
        assert_eq!(loaded, out.params);
        let raw = RawConfig {
            init_from: Some(path.display().to_string()),
            data: Some("moons".into()),
            steps: Some(0),
            precision: Some(precision.into()),
            ..Default::default()
        };
        let (cfg2, data2) = validate(&raw).unwrap();
        assert_eq!(params(&cfg2), out.params);
        let resumed = train(&cfg2, &data2, &mut |_| {}).unwrap();
        assert_eq!(resumed.summary.loss_start, out.summary.train_loss);
    }
}

#[test]
fn layout_matches_pytorch_sequential_names_and_shapes() {
    let (cfg, _) = config("hidden = \"16,8\"");
    let bytes = to_bytes(&params(&cfg), &cfg).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shapes: HashMap<String, Vec<usize>> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    let want: HashMap<String, Vec<usize>> = [
        ("0.weight", vec![16, 2]),
        ("0.bias", vec![16]),
        ("2.weight", vec![8, 16]),
        ("2.bias", vec![8]),
        ("4.weight", vec![2, 8]),
        ("4.bias", vec![2]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(shapes, want);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["initscope_arch"], "2-16-8-2");
    assert!(meta["pytorch"].contains("nn.Sequential(nn.Linear(2, 16, bias=True), nn.Tanh()"));
}

#[test]
fn missing_misshaped_and_extra_tensors_are_refused_with_their_names() {
    let (small, _) = config("hidden = \"4\"");
    let path = temp_path("shapes");
    std::fs::write(&path, to_bytes(&params(&small), &small).unwrap()).unwrap();
    let e = load_params(&path, &[2, 5, 2], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'0.weight' has shape [4, 2], expected [5, 2]"),
        "{e}"
    );
    let e = load_params(&path, &[2, 4, 4, 2], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing tensor '2.weight'") || e.contains("'2.weight' has shape"),
        "{e}"
    );
    let e = load_params(&path, &[2, 4, 2], false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unexpected tensor(s) 0.bias, 2.bias") && e.contains("--no-bias"),
        "{e}"
    );
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert!(load_params(&path, &[2, 4, 2], true)
        .unwrap_err()
        .to_string()
        .contains("not a safetensors file"));
    let e = load_params(
        std::path::Path::new("/nonexistent/w.safetensors"),
        &[2, 4, 2],
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/w.safetensors"), "{e}");
}

/// A safetensors file of f32 tensors (name, shape, values) with the given metadata.
fn write_tensors(
    path: &std::path::Path,
    tensors: &[(&str, Vec<usize>, Vec<f32>)],
    metadata: Option<HashMap<String, String>>,
) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, shape, _), b)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap();
            (n.to_string(), view)
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, metadata).unwrap()).unwrap();
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| scale * (i as f32 - n as f32 / 2.0))
        .collect()
}

fn raw_from(path: &std::path::Path, extra: &str) -> RawConfig {
    let mut raw: RawConfig = toml::from_str(extra).unwrap();
    raw.init_from = Some(path.display().to_string());
    raw.data.get_or_insert("moons".into());
    raw.steps.get_or_insert(0);
    raw
}

#[test]
fn init_from_reads_architecture_activation_and_biases_from_initscope_metadata() {
    let (cfg, _) = config("hidden = \"8,4\"\nact = \"relu\"\nsteps = 0\nprecision = \"f64\"");
    let path = temp_path("meta");
    std::fs::write(&path, to_bytes(&params(&cfg), &cfg).unwrap()).unwrap();
    // Neither --act nor --hidden: both come from the file (not tanh, not 16,16).
    let raw = raw_from(&path, "");
    let (c, _) = validate(&raw).unwrap();
    assert_eq!(c.arch, vec![2, 8, 4, 2]);
    assert_eq!(c.act, initscope::Activation::Relu);
    assert!(c.bias);
    assert_eq!(params(&c), params(&cfg));
    let note = init_from_note(&raw, &c).unwrap().unwrap();
    assert!(
        note.contains("architecture 2-8-4-2, activation relu and biases read from the file's initscope metadata"),
        "{note}"
    );
    assert_eq!(c.init_label(), format!("from {}", path.display()));
    assert_eq!(c.init_text(), format!("from {}", path.display()));
    // Agreeing flags are accepted; contradicting ones are refused naming both.
    validate(&raw_from(&path, "act = \"relu\"\narch = \"2-8-4-2\"")).unwrap();
    validate(&raw_from(&path, "hidden = \"8,4\"")).unwrap();
    for (extra, want) in [
        ("act = \"tanh\"", "--act 'tanh': contradicts --init-from"),
        (
            "hidden = \"16,16\"",
            "--hidden '16,16': contradicts --init-from",
        ),
        (
            "arch = \"2-8-2\"",
            "--arch '2-8-2': contradicts --init-from",
        ),
        ("no_bias = true", "--no-bias: contradicts --init-from"),
    ] {
        let e = validate(&raw_from(&path, extra)).unwrap_err().to_string();
        assert!(e.starts_with(want), "{extra}: {e}");
        assert!(e.contains(&path.display().to_string()), "{extra}: {e}");
    }
    let e = validate(&raw_from(&path, "act = \"tanh\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the activation is relu"), "{e}");
    let e = validate(&raw_from(&path, "data = \"mnist1d\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds a 2-8-4-2 network") && e.contains("input width 40"),
        "{e}"
    );
}

#[test]
fn a_pytorch_state_dict_is_mapped_layer_by_layer_in_key_order() {
    // nn.Sequential(Linear(2, 8), ReLU(), Dropout(), Linear(8, 8), ..., Linear(8, 2)) under a
    // `model.` prefix: Linear layers at 0, 3 and 10 (10 sorts after 3 as a number).
    let path = temp_path("torch");
    let tensors = vec![
        ("model.0.weight", vec![8, 2], ramp(16, 0.01)),
        ("model.0.bias", vec![8], ramp(8, 0.02)),
        ("model.3.weight", vec![8, 8], ramp(64, 0.003)),
        ("model.3.bias", vec![8], ramp(8, -0.02)),
        ("model.10.weight", vec![2, 8], ramp(16, 0.05)),
        ("model.10.bias", vec![2], vec![0.5, -0.5]),
    ];
    write_tensors(
        &path,
        &tensors,
        Some(HashMap::from([("format".to_string(), "pt".to_string())])),
    );
    let raw = raw_from(&path, "");
    let (c, _) = validate(&raw).unwrap();
    assert_eq!(c.arch, vec![2, 8, 8, 2]);
    assert_eq!(c.act, initscope::Activation::Tanh);
    let p = params(&c);
    assert_eq!(p[0].weight.as_slice()[3], (0.01f32 * (3.0 - 8.0)) as f64);
    assert_eq!(p[2].bias.as_deref(), Some(&[0.5, -0.5][..]));
    assert_eq!(
        p[1].weight.as_slice()[63],
        (0.003f32 * (63.0 - 32.0)) as f64
    );
    let note = init_from_note(&raw, &c).unwrap().unwrap();
    assert!(
        note.contains("3 Linear layer(s) mapped in key order (model.0.weight + model.0.bias, model.3.weight + model.3.bias, model.10.weight + model.10.bias), architecture 2-8-8-2 with biases"),
        "{note}"
    );
    assert!(
        note.contains("the activation is not in the file: tanh (the default"),
        "{note}"
    );
    let raw = raw_from(&path, "act = \"relu\"");
    let (c, _) = validate(&raw).unwrap();
    assert_eq!(c.act, initscope::Activation::Relu);
    assert!(init_from_note(&raw, &c)
        .unwrap()
        .unwrap()
        .contains("relu from --act"));
    // Without biases: a --no-bias network.
    write_tensors(
        &path,
        &[
            ("0.weight", vec![4, 2], ramp(8, 0.1)),
            ("3.weight", vec![2, 4], ramp(8, 0.1)),
        ],
        None,
    );
    let (c, _) = validate(&raw_from(&path, "")).unwrap();
    assert_eq!((c.arch.clone(), c.bias), (vec![2, 4, 2], false));
    // What is not a Linear layer, and layers that do not chain, are refused by name.
    write_tensors(
        &path,
        &[
            ("0.weight", vec![4, 2], ramp(8, 0.1)),
            ("1.running_mean", vec![4], ramp(4, 0.1)),
            ("3.weight", vec![2, 4], ramp(8, 0.1)),
        ],
        None,
    );
    let e = validate(&raw_from(&path, "")).unwrap_err().to_string();
    assert!(e.contains("unexpected tensor(s) 1.running_mean"), "{e}");
    write_tensors(
        &path,
        &[
            ("0.weight", vec![4, 2], ramp(8, 0.1)),
            ("3.weight", vec![2, 5], ramp(10, 0.1)),
        ],
        None,
    );
    let e = validate(&raw_from(&path, "")).unwrap_err().to_string();
    assert!(
        e.contains("'0.weight' has 4 outputs but the next, '3.weight', takes 5 inputs"),
        "{e}"
    );
}

#[test]
fn the_run_id_follows_the_file_contents_not_its_name() {
    let path = temp_path("contents");
    let (a, _) = config("hidden = \"4\"\nseed = 1");
    let (b, _) = config("hidden = \"4\"\nseed = 2");
    std::fs::write(&path, to_bytes(&params(&a), &a).unwrap()).unwrap();
    let raw = raw_from(&path, "");
    let (first, _) = validate(&raw).unwrap();
    assert!(first.canonical_json().contains("init_from_sha256"));
    std::fs::write(&path, to_bytes(&params(&b), &b).unwrap()).unwrap();
    let (second, data) = validate(&raw).unwrap();
    assert_ne!(first.run_id(), second.run_id());
    assert_eq!(validate(&raw).unwrap().0.run_id(), second.run_id());
    // A file changed after the run was configured is refused, not trained silently.
    let e = initscope::train::initial_params(&first, &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("changed since the run was configured"), "{e}");
}

/// `name -> (shape, values)` of a network's parameters and buffers, as the Python package hands
/// a PyTorch model's `state_dict` over.
fn tensors_of(cfg: &initscope::config::RunConfig) -> BTreeMap<String, (Vec<usize>, Vec<f64>)> {
    let net = cfg.network::<f64>(&params(cfg));
    let mut out = BTreeMap::new();
    for (k, info) in net.param_infos().iter().enumerate() {
        out.insert(
            info.name.clone(),
            (info.dims.clone(), net.param_values(k).to_vec()),
        );
    }
    for b in net.buffers() {
        out.insert(b.key, (b.dims, b.values));
    }
    out
}

#[test]
fn weights_given_in_memory_start_the_run_and_name_it() {
    for text in [
        "hidden = \"8,8\"\nact = \"relu\"\nseed = 3",
        "net = \"linear(8) batchnorm res(layernorm linear(8) relu linear(8) gate(0.5)) linear\"\nseed = 4",
    ] {
        // Weights drawn by another initializer than the run's flags name: the weights, not the
        // initializers, start the run.
        let (drawn, data) = config(&format!("{text}\ninit = \"orthogonal\""));
        let tensors = tensors_of(&drawn);
        let given = NamedTensors::in_memory("torch:Sequential", tensors.clone()).unwrap();
        let raw: RawConfig = toml::from_str(text).unwrap();
        let (plain, _) = validate(&raw).unwrap();
        let cfg = with_weights(&raw, plain.clone(), &given).unwrap();
        assert_eq!(
            cfg.init_from.as_deref(),
            Some(std::path::Path::new("torch:Sequential"))
        );
        assert_eq!(cfg.init_from_sha256.as_deref(), Some(given.sha256.as_str()));
        assert_ne!(cfg.run_id(), plain.run_id());
        assert_eq!(cfg.init_label(), "from torch:Sequential");
        let start = params_from(&cfg, &given).unwrap();
        assert_eq!(start.params, params(&drawn), "{text}");
        // It trains exactly as the run drawn from those initializers.
        let ours = train_from(&cfg, &data, start, &mut |_| {});
        let theirs = train(&drawn, &data, &mut |_| {}).unwrap();
        assert_eq!(ours.params, theirs.params, "{text}");

        // Other values, another id; the same values, the same id.
        let mut moved = tensors.clone();
        let first = moved.keys().next().unwrap().clone();
        moved.get_mut(&first).unwrap().1[0] += 1e-12;
        let moved = NamedTensors::in_memory("torch:Sequential", moved).unwrap();
        assert_ne!(moved.sha256, given.sha256);
        let again = NamedTensors::in_memory("torch:Sequential", tensors.clone()).unwrap();
        assert_eq!(again.sha256, given.sha256);
    }
}

#[test]
fn weights_given_in_memory_are_checked() {
    let (drawn, _) = config("hidden = \"4\"");
    let mut tensors = tensors_of(&drawn);
    let given = NamedTensors::in_memory("torch:M", tensors.clone()).unwrap();
    for (flags, flag) in [
        ("init = \"zeros\"", "--init"),
        ("bias_init = \"zeros\"", "--bias-init"),
        ("layer_init = [\"1=zeros\"]", "--layer-init"),
    ] {
        let raw: RawConfig = toml::from_str(&format!("hidden = \"4\"\n{flags}")).unwrap();
        let (cfg, _) = validate(&raw).unwrap();
        let e = with_weights(&raw, cfg, &given).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{flag}: the starting weights are torch:M's, so {flag} would be ignored; drop it"
            )
        );
    }
    let (cfg, _) = config("hidden = \"4\"");
    let cfg = with_weights(&RawConfig::default(), cfg, &given).unwrap();
    // Misshapen, missing, extra, non-finite and short tensors are refused by name.
    let mut wrong = tensors.clone();
    wrong.get_mut("0.weight").unwrap().0 = vec![2, 4];
    let e = params_from(&cfg, &NamedTensors::in_memory("torch:M", wrong).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("torch:M: tensor '0.weight' has shape [2, 4]"),
        "{e}"
    );
    let mut missing = tensors.clone();
    missing.remove("2.bias");
    missing.insert("9.weight".into(), (vec![1], vec![0.0]));
    let e = params_from(&cfg, &NamedTensors::in_memory("torch:M", missing).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing 2.bias; unexpected 9.weight"), "{e}");
    tensors.get_mut("0.bias").unwrap().1[1] = f64::NAN;
    let e = NamedTensors::in_memory("torch:M", tensors.clone())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "torch:M: tensor '0.bias' holds a non-finite value at flat index 1"
    );
    tensors.get_mut("0.bias").unwrap().1.pop();
    let e = NamedTensors::in_memory("torch:M", tensors)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor '0.bias' has shape [4] but 3 values"),
        "{e}"
    );
}
