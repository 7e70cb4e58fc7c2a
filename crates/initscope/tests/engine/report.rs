//! Reports: stable output from fixed records (a golden file), well-formed SVG, nothing loaded
//! from the network.

use std::path::Path;

use initscope::report::{load, render};

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every inline SVG parses as XML.
fn assert_svgs_well_formed(html: &str) -> usize {
    let mut count = 0;
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end =
            rest[start..].find("</svg>").expect("every <svg> is closed") + start + "</svg>".len();
        let svg = &rest[start..end];
        roxmltree::Document::parse(svg)
            .unwrap_or_else(|e| panic!("SVG {count} is not well-formed XML: {e}"));
        count += 1;
        rest = &rest[end..];
    }
    count
}

/// No script, stylesheet, image or font is fetched: links (`<a href>`) to papers are fine.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script src",
        "<link",
        "<img",
        "url(http",
        "@import",
        "<iframe",
        "xlink:href=\"http",
    ] {
        assert!(
            !lower.contains(bad),
            "report loads an external resource: {bad}"
        );
    }
    for (i, _) in lower.match_indices("http") {
        let before = &lower[i.saturating_sub(16)..i];
        assert!(
            before.ends_with("href=\"")
                || before.ends_with("xmlns=\"")
                || before.ends_with("xmlns:xlink=\""),
            "external reference near: {}",
            &html[i.saturating_sub(40)..(i + 60).min(html.len())]
        );
    }
}

/// The report of a fixed run directory (tests/golden/report_run, a 2-3-2 tanh net on xor, 40
/// full-batch steps in f64) is byte-stable. After an intended change of the report, refresh with
/// `INITSCOPE_BLESS=1 cargo test --workspace report_of_fixed_records` and review the diff.
#[test]
fn report_of_fixed_records_matches_the_golden_file() {
    let data = load(&golden_dir().join("report_run")).unwrap();
    let mut data = data;
    data.title = "golden".into();
    let html = render(&data).unwrap();
    let path = golden_dir().join("report_run.html");
    if std::env::var_os("INITSCOPE_BLESS").is_some() {
        std::fs::write(&path, &html).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .expect("golden report exists (create it with INITSCOPE_BLESS=1)");
    assert!(
        html == golden,
        "report changed; if intended, refresh with INITSCOPE_BLESS=1 and review the diff"
    );
    let svgs = assert_svgs_well_formed(&html);
    assert!(
        svgs >= 4,
        "loss, gradient norm, activations (init and end in one chart) and weights: {svgs}"
    );
    assert_self_contained(&html);
    for needle in [
        "training loss",
        "layer 1",
        "Effective width",
        "<th>step 0</th>",
        "First-layer weights",
        "<td class=\"full\">full</td>",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
}

#[test]
fn a_sweep_report_has_groups_bands_and_a_heat_map() {
    let dir = std::env::temp_dir().join(format!("initscope-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let grid_path = dir.join("grid.toml");
    std::fs::write(&grid_path, "[fixed]\ndata = \"moons:n=64\"\nhidden = \"4\"\nsteps = 40\n[axes]\ninit = [\"zeros\", \"pytorch\"]\nact = [\"tanh\", \"relu\"]\nseed = [0, 1]\n").unwrap();
    let grid = initscope::sweep::Grid::from_file(&grid_path).unwrap();
    let runs = initscope::sweep::plan(&grid, &grid_path).unwrap();
    let out = dir.join("out");
    initscope::sweep::run(
        initscope::output::folder::FolderKind::Sweep,
        &grid,
        &runs,
        &out,
        2,
        None,
        initscope::sweep::Packing::Lockstep,
        &|_| {},
    )
    .unwrap();
    let html = render(&load(&out).unwrap()).unwrap();
    assert!(assert_svgs_well_formed(&html) >= 10);
    assert_self_contained(&html);
    assert!(html.contains("training loss, act=tanh") && html.contains("training loss, act=relu"));
    assert!(
        html.contains("Test accuracy over init x act"),
        "heat map over the two varying axes"
    );
    assert!(html.contains("<polygon"), "a min-max band over seeds");
    assert_eq!(html.matches("<tr>").count(), 9, "header + 8 runs");
    assert!(!html.contains("<details>"), "8 runs: the table is open");
    // A prose answer with numbers and a per-activation summary come before the tables.
    let answer = html.find("<h2>The answer</h2>").expect("a prose answer");
    assert!(answer < html.find("<h2>Runs</h2>").unwrap());
    assert!(html.contains("Of 4 configurations, "), "prose counts");
    for act in ["With tanh: ", "With relu: "] {
        assert!(html.contains(act), "{act} missing");
    }
    assert!(html.contains("<table class=\"compact\" id=\"summary\">"));
    // The heat map is in % like the tables, and names its statistic.
    assert!(html.contains("final test accuracy (%), median over seeds"));
    assert!(html.contains("the median test accuracy in % over seeds"));
    // Widths against step: one table, not a panel per group.
    assert!(!html.contains("data-plot=\"width-"), "no width panels");
    assert!(html.contains("<th>step 0</th>"), "a width table by step");
    // The zero init's activations, all exactly 0, are a named, marked point mass.
    assert!(
        html.contains("init, layer 1: 100% at 0"),
        "point mass at 0 named"
    );
    // An all-zero W_1 says so; every group gets a weight map.
    assert!(html.contains("every weight is 0") && html.contains("all exactly 0"));
    assert_eq!(
        html.matches("data-plot=\"weights-").count(),
        4,
        "one map per group"
    );
    // Not a run or sweep directory: a clear error.
    let e = load(&dir).unwrap_err().to_string();
    assert!(e.contains("neither a run directory"), "{e}");
}

/// A copy of the golden run directory whose metrics.csv is `metrics`.
fn golden_copy_with_metrics(name: &str, metrics: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("initscope-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(golden_dir().join("report_run")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    std::fs::write(dir.join("metrics.csv"), metrics).unwrap();
    dir
}

/// A metrics.csv cut mid-record is refused naming the file and the line, never read as a
/// shorter run; NaN and inf values (a diverged run) are values.
#[test]
fn a_truncated_metrics_csv_is_refused_naming_the_line() {
    let whole = std::fs::read_to_string(golden_dir().join("report_run/metrics.csv")).unwrap();
    let lines = whole.lines().count();
    let head: String = whole.lines().take(3).map(|l| format!("{l}\n")).collect();
    for (name, tail, why) in [
        ("fields", "abc,12,loss,\n", "(4 of 5 fields)"),
        (
            "empty-value",
            "abc,12,loss,,\n",
            "(value '' is not a number)",
        ),
        (
            "bad-value",
            "abc,12,loss,,0.1x\n",
            "(value '0.1x' is not a number)",
        ),
        (
            "bad-step",
            "abc,1x,loss,,0.1\n",
            "(step '1x' is not a step number)",
        ),
        (
            "bad-layer",
            "abc,1,grad_norm,q,0.1\n",
            "(layer 'q' is not a layer number)",
        ),
        (
            "no-line-end",
            "abc,12,train_loss,,0.1",
            "(it has no line end",
        ),
    ] {
        let dir = golden_copy_with_metrics(name, &format!("{head}{tail}"));
        let e = load(&dir).unwrap_err().to_string();
        let want = format!(
            "{}: line 4 is incomplete {why}",
            dir.join("metrics.csv").display()
        );
        assert!(e.starts_with(&want), "{name}: {e}\nwanted: {want}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // The whole file cut short in the middle of its last value.
    let dir = golden_copy_with_metrics("cut", &whole[..whole.len() - 2]);
    let e = load(&dir).unwrap_err().to_string();
    assert!(e.contains(&format!("line {lines} is incomplete")), "{e}");
    let dir = golden_copy_with_metrics("empty", "");
    assert!(load(&dir).unwrap_err().to_string().contains("is empty"));
    // Non-finite values as the writer formats them are read back.
    let dir = golden_copy_with_metrics(
        "nonfinite",
        &format!("{head}r,3,grad_norm,1,NaN\nr,3,weight_norm,1,inf\nr,3,act_mean,1,-inf\n"),
    );
    let run = &load(&dir).unwrap().runs[0];
    let v: Vec<f64> = run.metrics[2..].iter().map(|m| m.value).collect();
    assert!(v[0].is_nan() && v[1] == f64::INFINITY && v[2] == f64::NEG_INFINITY);
}

/// Records full of non-finite values (a diverged run's nulls in summary.json and
/// histograms.json, NaN and inf in metrics.csv) load and render: no panic, well-formed SVG, the
/// runs table says where the run diverged.
#[test]
fn a_report_of_non_finite_records_renders() {
    let whole = std::fs::read_to_string(golden_dir().join("report_run/metrics.csv")).unwrap();
    let mut metrics = String::new();
    for (i, line) in whole.lines().enumerate() {
        let cut = line.rfind(',').unwrap();
        if i == 0 {
            metrics += line;
        } else {
            let bad = ["NaN", "inf", "-inf"][i % 3];
            // Keep a few finite points so that some curves are partly drawn.
            let value = if i % 5 == 0 { &line[cut + 1..] } else { bad };
            metrics += &format!("{},{value}", &line[..cut]);
        }
        metrics += "\n";
    }
    let dir = golden_copy_with_metrics("nan-everywhere", &metrics);
    let path = dir.join("summary.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for k in [
        "loss_start",
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
    ] {
        s[k] = serde_json::Value::Null;
    }
    s["status"] = "diverged".into();
    s["diverged_at_step"] = 3.into();
    s["loss_constant_baseline"] = serde_json::Value::Null;
    for l in s["layers"].as_array_mut().unwrap() {
        l["grad_w_norm_step0"] = serde_json::Value::Null;
    }
    std::fs::write(&path, s.to_string()).unwrap();
    let path = dir.join("histograms.json");
    let mut h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (i, rec) in h.as_array_mut().unwrap().iter_mut().enumerate() {
        for k in ["min", "max", "sum", "sum_squares"] {
            if i % 2 == 0 {
                rec[k] = serde_json::Value::Null;
            }
        }
        rec["bucket"][0] = serde_json::Value::Null;
    }
    std::fs::write(&path, h.to_string()).unwrap();
    let mut data = load(&dir).unwrap();
    assert!(data.runs[0].summary.train_loss.is_nan());
    let mut ok = data.runs[0].clone();
    ok.summary.status = initscope::records::Status::Ok;
    ok.summary.nonfinite_diagnostics = 7;
    data.runs.push(ok);
    let html = render(&data).unwrap();
    // Loss, gradient norm, activations (init and end in one chart) and weights; widths are a table.
    assert!(assert_svgs_well_formed(&html) >= 4);
    assert!(html.contains("<th>step 0</th>"), "the width table");
    assert!(html.contains("diverged at step 3"));
    assert!(html.contains("1 of 2 runs diverged"));
    assert!(html.contains("ok (7 diagnostic values not finite)"));
}
