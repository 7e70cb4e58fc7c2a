//! The verdict's wrong answers of issue 15, each pinned: a dead network is never called "full",
//! "only biases learned" only when a bias moved, output units are never copies, vanishing
//! gradients are not "alive", and distinct units that learned nothing are not a healthy "full".

use super::{initscope, stderr};

/// `explain ARGS` on stdout (text) and its JSON document.
fn explain(args: &[&str]) -> (String, serde_json::Value) {
    let mut a = vec!["explain"];
    a.extend_from_slice(args);
    let o = initscope(&a);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    a.push("--json");
    let o = initscope(&a);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    let doc = serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    (text, doc)
}

fn verdict_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("VERDICT: "))
        .unwrap_or_else(|| panic!("no verdict in {text}"))
}

/// The cells of the text table's row for `layer`.
fn table_row(text: &str, layer: usize) -> Vec<String> {
    let after = text.split("After ").nth(1).expect("the table");
    after
        .lines()
        .map(|l| {
            l.split("  ")
                .filter(|c| !c.trim().is_empty())
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().map(String::as_str) == Some(&layer.to_string()))
        .unwrap_or_else(|| panic!("no row for layer {layer} in {text}"))
}

/// ReLU with layer 2 (hidden) zero: nothing below the output bias ever moves. In f32 the starting
/// weights are the f64 draws rounded, so "W unchanged" must compare the rounded values.
#[test]
fn a_network_where_no_weight_moved_is_dead_not_full() {
    let (text, doc) = explain(&[
        "--data",
        "moons",
        "--act",
        "relu",
        "--layer-init",
        "2=zeros",
        "--layer-bias-init",
        "2=zeros",
    ]);
    let v = verdict_line(&text);
    assert!(
        v.starts_with("VERDICT: dead and stalled: no weight moved"),
        "{v}"
    );
    assert!(v.contains("only biases learned"), "{v}");
    assert_eq!(doc["verdict"], "dead");
    assert_eq!(doc["learning"], "stalled");
    for l in doc["layers"].as_array().unwrap() {
        assert_eq!(l["weights_unchanged"], true, "{l}");
        assert_eq!(l["grad_state"], "zero", "{l}");
        assert!(l["wake_step"].is_null(), "{l}");
    }
    for layer in 1..=3 {
        let row = table_row(&text, layer);
        assert_eq!(row[5], "yes", "W unchanged of layer {layer}: {row:?}");
        assert_eq!(row[8], "zero", "gradient of layer {layer}: {row:?}");
    }
}

/// tanh, W = 0, every bias 0.1, full batch: balanced classes with equal logits, nothing moves,
/// not even a bias (every bias is still exactly 0.1 in f32).
#[test]
fn only_biases_learned_is_said_only_when_a_bias_moved() {
    let (text, doc) = explain(&[
        "--data",
        "moons",
        "--init",
        "zeros",
        "--bias-init",
        "constant:0.1",
        "--batch",
        "full",
    ]);
    let v = verdict_line(&text);
    assert!(v.starts_with("VERDICT: dead and stalled"), "{v}");
    assert!(!v.contains("only biases learned"), "{v}");
    assert!(v.contains("no bias moved either"), "{v}");
    assert_eq!(doc["learning"], "stalled");
}

/// Output units are singleton classes: the note on identical rows never calls them copies.
#[test]
fn output_units_are_never_called_copies() {
    let (text, doc) = explain(&[
        "--data",
        "moons",
        "--init",
        "zeros",
        "--bias-init",
        "constant:0.1",
    ]);
    assert!(!text.contains("the units of layer 3 are copies"), "{text}");
    assert!(
        text.contains("the outputs differ only through their biases"),
        "{text}"
    );
    // The hidden layers are true copies (equal rows, biases and outgoing weights).
    assert!(
        text.contains("the units of layer 1 are copies of each other"),
        "{text}"
    );
    let out = &doc["derivation"]["layers"][0];
    assert_eq!(out["layer"], 3);
    for n in out["notes"].as_array().unwrap() {
        assert!(!n.as_str().unwrap().contains("copies of each other"), "{n}");
    }
}

/// tanh, 3 hidden layers of zeros, biases 0.1, SGD: the layers wake one after the other, but
/// layer 1's gradient vanishes (about 6e-9, updates far below the rounding of its weights) and
/// the loss stays at the constant predictor. Nonzero is not alive.
#[test]
fn vanishing_gradients_at_the_constant_predictor_are_not_called_alive() {
    let (text, doc) = explain(&[
        "--data",
        "moons",
        "--hidden",
        "16,16,16",
        "--init",
        "zeros",
        "--bias-init",
        "constant:0.1",
        "--steps",
        "5000",
    ]);
    let v = verdict_line(&text);
    assert!(v.starts_with("VERDICT: symmetric and stalled"), "{v}");
    assert!(!v.to_lowercase().contains("gradients are alive"), "{v}");
    assert!(!v.contains("not dead gradients"), "{v}");
    assert!(
        v.contains("gradients reach every layer but vanish in layer 1 "),
        "{v}"
    );
    assert!(
        v.contains("it does no better than the constant predictor"),
        "{v}"
    );
    assert_eq!(doc["verdict"], "symmetric");
    assert_eq!(doc["learning"], "stalled");
    let l1 = &doc["layers"][0];
    assert_eq!(l1["grad_state"], "vanishing", "{l1}");
    assert!(l1["wake_step"].is_number(), "{l1}");
    assert!(l1["grad_w_norm_end"].as_f64().unwrap() < 1e-6, "{l1}");
}

/// Dropout splits units by about 1e-6 while the loss stays at the constant predictor: distinct,
/// but nothing was learned.
#[test]
fn distinct_units_that_learned_nothing_are_not_a_healthy_full() {
    let (text, doc) = explain(&[
        "--data",
        "moons",
        "--init",
        "zeros",
        "--bias-init",
        "constant:0.1",
        "--dropout",
        "0.1",
    ]);
    let v = verdict_line(&text);
    assert!(v.starts_with("VERDICT: full and stalled"), "{v}");
    assert!(v.contains("but nothing was learned"), "{v}");
    assert_eq!(doc["learning"], "stalled");
    // A net that learns is still "full and learned".
    let (text, doc) = explain(&["--data", "moons"]);
    assert!(
        verdict_line(&text).starts_with("VERDICT: full and learned"),
        "{text}"
    );
    assert_eq!(doc["learning"], "learned");
    assert!(doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["grad_state"] == "alive"));
}

/// The markdown verdict names both judgements.
#[test]
fn markdown_names_symmetry_and_learning() {
    let o = initscope(&[
        "explain", "--data", "teacher", "--init", "zeros", "--act", "sigmoid", "--format",
        "markdown",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("**Verdict: symmetric, "), "{md}");
    assert!(md.contains("| gradient |"), "{md}");
}
