//! Weights round-trip through safetensors in DESIGN.md's layout; bad files are refused clearly.

use std::collections::HashMap;

use initscope::config::{validate, RawConfig};
use initscope::output::safetensors::{load_params, to_bytes};
use initscope::train::train;

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
