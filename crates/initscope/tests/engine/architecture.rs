//! The library's module layers: every `crate::` edge between top-level modules (read from the
//! source, comments and test modules left out) points down or sideways in [`LAYERS`], and the
//! edges form no circle. A new module must be placed in a layer here; an import that runs back up
//! (say, a diagnostic needing the training loop) fails this test with the edge named.
//!
//! `cargo test --test engine architecture -- --nocapture` prints the whole edge list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom to top. A module may use modules of its own layer or below, never above.
const LAYERS: &[&[&str]] = &[
    // Foundations: errors, RNG, spec strings, scalars, matrices, JSON numbers.
    &["error", "json", "rng", "spec", "scalar", "matrix", "small"],
    // The vocabulary of a run: activations, losses, initializers, data sets, memory sizes.
    &["activation", "loss", "init", "memory", "data"],
    // The network, its parameters and what acts on them.
    &["nn", "optim", "weights", "lsuv", "batch"],
    // A validated run configuration.
    &["config"],
    // What a run records.
    &["records"],
    // Measurements on networks and runs.
    &["diagnostics"],
    // Engines: training, the step-0 explanation, gradient checks, lockstep sweeps.
    &["train", "explain", "gradcheck", "lockstep"],
    // Files written.
    &["output"],
    // Many runs, and speed measured (the `sweep` workload times the sweep itself).
    &["sweep", "bench"],
    // Pages and papers.
    &["report", "reproduce"],
    // The canonical comparison: a sweep, its answer and its report.
    &["study"],
];

/// The top-level modules each top-level module of `src/` uses (`crate::NAME`), outside comments
/// and `#[cfg(test)]` modules.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The file up to its test module (`#[cfg(test)]` followed by `mod`), comments out.
            let lines: Vec<&str> = text.lines().collect();
            let end = (0..lines.len())
                .find(|&i| {
                    lines[i].trim_start().starts_with("#[cfg(test)]")
                        && lines
                            .get(i + 1)
                            .is_some_and(|next| next.trim_start().starts_with("mod "))
                })
                .unwrap_or(lines.len());
            let code: String = lines[..end]
                .iter()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let used = out.entry(module.clone()).or_default();
            // `crate::name` anywhere, and the names inside `use crate::{a, b::c}`.
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    used.extend(group_heads(group));
                } else {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    used.insert(name);
                }
            }
            used.remove(&module);
        }
    }
    out
}

/// The first path segment of each item of a `use crate::{...}` group, `group` starting just
/// after the opening brace: `a::{B, C}, d}` gives `a` and `d` (nested groups are skipped).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut item, mut depth) = (Vec::new(), String::new(), 0usize);
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(std::mem::take(&mut item)),
            _ if depth == 0 => item.push(c),
            _ => {}
        }
    }
    heads.push(item);
    heads
        .iter()
        .filter_map(|i| i.trim().split("::").next())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn modules_use_only_their_layer_and_below_and_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&src);
    let layer_of = |m: &str| LAYERS.iter().position(|layer| layer.contains(&m));
    let mut problems = Vec::new();
    for (from, tos) in &edges {
        println!(
            "{from} -> {}",
            tos.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        let Some(lf) = layer_of(from) else {
            problems.push(format!("module `{from}` is in no layer of LAYERS"));
            continue;
        };
        for to in tos {
            if to.starts_with(|c: char| c.is_ascii_uppercase()) {
                problems.push(format!(
                    "`{from}` uses the root re-export `crate::{to}`: name its module instead"
                ));
                continue;
            }
            match layer_of(to) {
                None => problems.push(format!("`{from}` uses `{to}`, which is in no layer")),
                Some(lt) if lt > lf => problems.push(format!(
                    "`{from}` (layer {lf}) uses `{to}` (layer {lt}): an import that runs back up"
                )),
                _ => {}
            }
        }
    }
    // Circles: depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
        problems: &mut Vec<String>,
    ) {
        state.insert(m, 1);
        path.push(m);
        for to in edges.get(m).into_iter().flatten() {
            match state.get(to.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == to).unwrap();
                    problems.push(format!(
                        "import circle: {} -> {to}",
                        path[start..].join(" -> ")
                    ));
                }
                Some(_) => {}
                None => visit(to, edges, state, path, problems),
            }
        }
        path.pop();
        state.insert(m, 2);
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m.as_str()) {
            visit(m, &edges, &mut state, &mut Vec::new(), &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The test sees what it should: a known edge is found, and a module missing from the layers
/// would be reported (every file of src/ belongs to a listed module).
#[test]
fn the_edge_list_reads_the_source() {
    let edges = edges(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(edges["train"].contains("records"), "{:?}", edges["train"]);
    assert!(edges["records"].contains("config"));
    assert_eq!(group_heads("a::{B, C}, d::e, f}; g"), ["a", "d", "f"]);
    let listed: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for m in edges.keys() {
        assert!(listed.contains(m.as_str()), "`{m}` is in no layer");
    }
}
