//! The command line: exit codes, one-line errors, outputs on disk, JSON on stdout.

use std::path::PathBuf;
use std::process::{Command, Output};

fn initscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("initscope-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Exit code 2 and exactly one line on stderr that mentions `needle`.
fn assert_bad_input(args: &[&str], needle: &str) {
    let o = initscope(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{err}"
    );
    assert!(err.contains(needle), "{args:?}: '{needle}' not in: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: printed to stdout on error");
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    assert_bad_input(
        &["train", "--act", "tanhh"],
        "--act 'tanhh': unknown activation 'tanhh'",
    );
    assert_bad_input(&["train", "--init", "xavier_banana"], "unknown initializer");
    assert_bad_input(&["train", "--optim", "lbfgs"], "unknown optimizer 'lbfgs'");
    assert_bad_input(
        &["train", "--lr", "-0.1"],
        "--lr: must be a finite number >= 0",
    );
    assert_bad_input(&["train", "--dropout", "1"], "--dropout: must be in [0, 1)");
    assert_bad_input(
        &["train", "--arch", "3-8-2"],
        "needs input width 2 and output width 2",
    );
    assert_bad_input(&["train", "--hidden", "8,0"], "not a positive width");
    assert_bad_input(
        &["train", "--data", "nosuchdata"],
        "unknown dataset 'nosuchdata'",
    );
    assert_bad_input(
        &["train", "--layer-init", "7=zeros"],
        "layer 7 does not exist",
    );
    assert_bad_input(&["train", "--batch", "0"], "--batch: must be at least 1");
    assert_bad_input(
        &["train", "--init-from", "/nonexistent/w.safetensors"],
        "/nonexistent/w.safetensors",
    );
    assert_bad_input(
        &["train", "--config", "/nonexistent/run.toml"],
        "/nonexistent/run.toml",
    );
    assert_bad_input(&["gradcheck", "--act", "nope"], "unknown activation");
}

#[test]
fn train_writes_the_run_directory_and_json_summary() {
    let dir = temp_dir("out");
    let out = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--hidden",
        "8",
        "--batch",
        "full",
        "--lr",
        "0.5",
        "--steps",
        "300",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    for key in [
        "run_id",
        "status",
        "steps",
        "loss_start",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "wall_seconds",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["steps"], 300);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".initscope",
            "config.json",
            "events.out.tfevents.initscope",
            "histograms.json",
            "metrics.csv",
            "summary.json",
            "weights.safetensors"
        ]
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("run_id,step,metric,layer,value\n"));
    let run_id = summary["run_id"].as_str().unwrap();
    assert!(metrics.contains(&format!("{run_id},0,train_loss,,")));
    assert!(metrics.contains(&format!("{run_id},0,grad_norm,1,")));
    assert!(metrics.contains(&format!("{run_id},300,train_acc,,")));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["arch"], serde_json::json!([2, 8, 2]));
    // Nothing temporary is left next to the run directory.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // A non-empty --out is refused before training, and left untouched.
    let before = std::fs::read(out.join("weights.safetensors")).unwrap();
    assert_bad_input(
        &["train", "--data", "xor", "--out", out.to_str().unwrap()],
        "holds an initscope run; use --force",
    );
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        before
    );
    // --force replaces it; the same command gives the same bytes.
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--hidden",
        "8",
        "--batch",
        "full",
        "--lr",
        "0.5",
        "--steps",
        "300",
        "-q",
        "--force",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        before
    );
    // Without --json, the last line names every file written, hidden ones included.
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--steps",
        "3",
        "-q",
        "--force",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let wrote = text.lines().last().unwrap();
    assert_eq!(
        wrote,
        format!(
            "  wrote {}/ (7 files: config.json, metrics.csv, weights.safetensors, summary.json, histograms.json, events.out.tfevents.initscope, .initscope)",
            out.display()
        )
    );
    for name in &names {
        assert!(wrote.contains(name.as_str()), "{name} not in {wrote}");
    }
}

#[test]
fn a_diverged_run_exits_0_with_status_diverged() {
    let o = initscope(&[
        "train", "--data", "teacher", "--act", "relu", "--lr", "1000", "--steps", "100", "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["status"], "diverged");
    assert!(summary["diverged_at_step"].is_u64());
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let dir = temp_dir("config");
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        "data = \"moons:n=64\"\nhidden = \"4\"\nsteps = 7\nact = \"relu\"\n",
    )
    .unwrap();
    let o = initscope(&[
        "train",
        "--config",
        path.to_str().unwrap(),
        "--steps",
        "3",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["steps"], 3);
    assert_eq!(summary["num_params"], 2 * 4 + 4 + 4 * 2 + 2);
    std::fs::write(&path, "data = \"moons\"\nlearning_rate = 0.1\n").unwrap();
    assert_bad_input(
        &["train", "--config", path.to_str().unwrap()],
        "learning_rate",
    );
}

#[test]
fn init_from_continues_from_saved_weights() {
    let dir = temp_dir("initfrom");
    let out = dir.join("a");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "50",
        "-q",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let first: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = out.join("weights.safetensors");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "0",
        "--json",
        "--init-from",
        w.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let second: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(second["loss_start"], first["train_loss"]);
    assert_bad_input(
        &[
            "train",
            "--data",
            "moons",
            "--hidden",
            "8",
            "--init-from",
            w.to_str().unwrap(),
        ],
        &format!(
            "--hidden '8': contradicts --init-from {}, whose tensors give hidden widths 16,16",
            w.display()
        ),
    );
}

#[test]
fn init_from_takes_the_activation_from_the_file_and_says_so() {
    let dir = temp_dir("initfrom-act");
    let out = dir.join("relu");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--act",
        "relu",
        "--hidden",
        "8",
        "--steps",
        "5",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let w = out.join("weights.safetensors");
    let w = w.to_str().unwrap();
    // No --act, no --hidden: ReLU 2-8-2 from the file's metadata, with one note saying so.
    let o = initscope(&[
        "explain",
        "--data",
        "moons",
        "--steps",
        "2",
        "--init-from",
        w,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.trim_end(),
        format!(
            "initscope: note: --init-from {w}: architecture 2-8-2, activation relu and biases read from the file's initscope metadata"
        )
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let title = text.lines().next().unwrap();
    assert!(
        title.contains("arch 2-8-2 | act relu | init from ") && title.contains(w),
        "{title}"
    );
    assert!(!title.contains("pytorch"), "{title}");
    assert_bad_input(
        &[
            "train",
            "--data",
            "moons",
            "--act",
            "tanh",
            "--init-from",
            w,
        ],
        &format!(
            "--act 'tanh': contradicts --init-from {w}, whose metadata says the activation is relu"
        ),
    );
}

#[test]
fn a_run_from_a_file_shows_the_file_as_its_init_in_config_report_and_runs_csv() {
    let dir = temp_dir("initfrom-config");
    let first = dir.join("first");
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--hidden",
        "4",
        "--steps",
        "3",
        "-q",
        "--out",
        first.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let w = first.join("weights.safetensors");
    let w = w.to_str().unwrap();
    let second = dir.join("second");
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--steps",
        "3",
        "-q",
        "--init-from",
        w,
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["init"], format!("from {w}"));
    assert_eq!(config["bias_init"], format!("from {w}"));
    // The report reads that config.json back and names the file, never "pytorch".
    let page = dir.join("report.html");
    let o = initscope(&[
        "report",
        second.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&format!("from {w}")));
    assert!(!html.contains("pytorch"));
    // A sweep over a grid that starts from the file: its runs.csv names the file, and a resume
    // reads the runs' config.json back (so nothing is retrained).
    let sweep = dir.join("sweep");
    let grid = dir.join("grid.toml");
    std::fs::write(
        &grid,
        format!(
            "[fixed]\ndata = \"xor\"\nsteps = 3\ninit_from = \"{w}\"\n\n[axes]\nseed = [0, 1]\n"
        ),
    )
    .unwrap();
    for _ in 0..2 {
        let o = initscope(&[
            "sweep",
            grid.to_str().unwrap(),
            "-q",
            "--out",
            sweep.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let csv = std::fs::read_to_string(sweep.join("runs.csv")).unwrap();
    assert_eq!(
        csv.matches(&format!(",from {w},from {w},")).count(),
        2,
        "{csv}"
    );
}

#[test]
fn gradcheck_passes_and_reports_every_layer() {
    let o = initscope(&[
        "gradcheck",
        "--data",
        "moons",
        "--act",
        "gelu",
        "--hidden",
        "8,8",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("PASS").count(), 4, "{text}");
    let o = initscope(&["gradcheck", "--data", "teacher", "--hidden", "4", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["pass"], true);
    assert_eq!(report["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn gradcheck_fails_with_exit_1_when_the_tolerance_is_impossible() {
    let o = initscope(&["gradcheck", "--data", "moons", "--tol", "1e-300"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
}

#[test]
fn init_list_and_show() {
    let o = initscope(&["init", "list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "xavier_uniform",
        "he_normal",
        "orthogonal",
        "zero_hadamard",
        "lsuv",
        "perturbed",
        "candle",
    ] {
        assert!(names.contains(&want), "{want} missing from init list");
    }
    let o = initscope(&[
        "init",
        "show",
        "kaiming_normal:mode=fan_out,nonlinearity=relu",
        "--fan-in",
        "784",
        "--fan-out",
        "256",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let show: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let std = show["weight"]["std"].as_f64().unwrap();
    assert!((std - (2.0f64 / 256.0).sqrt()).abs() < 1e-12, "{std}");
    let o = initscope(&[
        "init",
        "show",
        "glorot_uniform:gain=auto",
        "--fan-in",
        "100",
        "--fan-out",
        "100",
        "--act",
        "tanh",
        "--json",
    ]);
    let show: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let b = show["weight"]["bounds"][1].as_f64().unwrap();
    assert!(
        (b - 5.0 / 3.0 * (6.0f64 / 200.0).sqrt()).abs() < 1e-12,
        "{b}"
    );
    assert_bad_input(
        &[
            "init",
            "show",
            "xavier_banana",
            "--fan-in",
            "3",
            "--fan-out",
            "3",
        ],
        "unknown initializer 'xavier_banana'",
    );
    // Closing stdout early is not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(["init", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn lsuv_and_per_layer_overrides_train_from_the_command_line() {
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--hidden",
        "32,32",
        "--init",
        "lsuv",
        "--layer-init",
        "3=zeros",
        "--steps",
        "20",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lsuv = summary["lsuv"].as_array().unwrap();
    assert_eq!(
        lsuv.len(),
        2,
        "layers 1-2 use LSUV, layer 3 is overridden: {lsuv:?}"
    );
    assert!(lsuv.iter().all(|l| l["converged"] == true));
    assert_bad_input(
        &["train", "--bias-init", "orthogonal"],
        "cannot initialise a bias",
    );
}

#[test]
fn explain_prints_the_derivation_and_verdict_in_every_format() {
    let base = [
        "explain", "--data", "xor", "--hidden", "3", "--init", "zeros", "--batch", "full",
        "--steps", "30",
    ];
    let o = initscope(&base);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("a_1 = tanh(0) = 0 for every input"), "{text}");
    assert!(text.contains("W_2 = 0, so delta_1"), "{text}");
    assert!(text.contains("VERDICT: dead"), "{text}");
    let o = initscope(&[&base[..], &["--format", "markdown"]].concat());
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("$$\\delta_{2} = \\frac{\\partial \\mathcal{L}}{\\partial z_{2}}$$"),
        "{md}"
    );
    assert!(md.contains("**Verdict: dead, stalled.**"), "{md}");
    let o = initscope(&[&base[..], &["--json"]].concat());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    for key in [
        "layers",
        "loss_start",
        "loss_end",
        "loss_constant_baseline",
        "symmetry_breakers",
        "verdict",
        "learning",
        "summary",
    ] {
        assert!(doc.get(key).is_some(), "explain --json lacks {key}");
    }
    assert_eq!(doc["verdict"], "dead");
    assert_eq!(doc["learning"], "stalled");
    let layer = &doc["layers"][0];
    for key in [
        "layer",
        "fan_in",
        "fan_out",
        "activation",
        "grad_w_norm_step0",
        "grad_b_norm_step0",
        "wake_step",
        "weights_unchanged",
        "width_init",
        "width_end",
        "width_init_tol",
        "width_end_tol",
        "grad_state",
        "grad_w_norm_end",
    ] {
        assert!(layer.get(key).is_some(), "layer lacks {key}");
    }
    assert_eq!(layer["grad_state"], "zero");
    assert_eq!(layer["layer"], 1);
    assert!(layer["wake_step"].is_null());
    // Default K is 200 steps.
    let o = initscope(&["explain", "--data", "moons", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["steps"], 200);
    assert_eq!(doc["verdict"], "full");
    assert_eq!(doc["learning"], "learned");
}

#[test]
fn train_summary_carries_the_verdict_and_metrics_carry_the_diagnostics() {
    let dir = temp_dir("diag");
    let out = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--init",
        "constant:0.2",
        "--grad-noise",
        "0.01",
        "--steps",
        "150",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["verdict"], "full");
    assert_eq!(s["symmetry_broken"], true);
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let run_id = s["run_id"].as_str().unwrap();
    for (step, metric, layer) in [
        (0, "grad_norm", "1"),
        (99, "grad_to_weight", "2"),
        (1, "update_ratio", "3"),
        (0, "act_std", "1"),
        (0, "saturation", "2"),
        (0, "stable_rank", "1"),
        (64, "numerical_rank", "2"),
        (0, "width_tol", "1"),
        (150, "width_exact", "2"),
        (0, "jacobian_sv2_mean", ""),
    ] {
        let needle = format!("{run_id},{step},{metric},{layer},");
        assert!(metrics.contains(&needle), "metrics.csv lacks {needle}");
    }
    // Log-spaced after the first 100 steps: 100 and 126 are recorded, 101 is not.
    assert!(metrics.contains(&format!("{run_id},126,grad_norm,1,")));
    assert!(!metrics.contains(&format!("{run_id},101,grad_norm,1,")));
    // --diagnostics off records none of it.
    let o = initscope(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "20",
        "--diagnostics",
        "off",
        "--json",
        "--out",
        dir.join("off").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let metrics = std::fs::read_to_string(dir.join("off").join("metrics.csv")).unwrap();
    assert!(!metrics.contains("grad_norm") && metrics.contains("train_loss"));
}

#[test]
fn meanfield_reports_fixed_points_and_the_critical_line() {
    let o = initscope(&[
        "meanfield",
        "--act",
        "tanh",
        "--sigma-w2",
        "1.2",
        "--critical",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mf: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "q_star",
        "chi_1",
        "c_star",
        "xi_q",
        "xi_c",
        "sigma_w2_critical",
    ] {
        assert!(mf.get(key).is_some(), "{key}");
    }
    assert!((mf["sigma_w2_critical"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    // The critical line needs no sigma_w^2: alone, --critical reports the critical point.
    let o = initscope(&[
        "meanfield",
        "--act",
        "tanh",
        "--sigma-b2",
        "0.05",
        "--critical",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mf: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let critical = mf["sigma_w2_critical"].as_f64().unwrap();
    assert!(critical > 1.0 && critical < 2.0, "{mf}");
    assert_eq!(mf["sigma_w2"].as_f64(), Some(critical));
    assert!((mf["chi_1"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{mf}");
    let o = initscope(&[
        "meanfield",
        "--act",
        "tanh",
        "--sigma-b2",
        "0.05",
        "--critical",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("(the critical value)"), "{text}");
    assert!(
        text.contains("critical sigma_w^2 for sigma_b^2 = 0.05:"),
        "{text}"
    );
    assert_bad_input(
        &["meanfield", "--act", "tanh", "--sigma-b2", "0.05"],
        "--sigma-w2: required unless --critical",
    );
    let o = initscope(&["meanfield", "--act", "relu", "--sigma-w2", "2.5"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no fixed point"));
    assert_bad_input(
        &["meanfield", "--act", "relu", "--sigma-w2", "-1"],
        "--sigma-w2",
    );
    assert_bad_input(
        &["meanfield", "--act", "nope", "--sigma-w2", "1"],
        "unknown activation",
    );
}

#[test]
fn meanfield_residual_prints_q_per_block_and_classifies_its_growth() {
    // ReLU branch, sigma_w^2 = 2: V_F(q) = 2 q, so q_l = (1 + g^2 2)^l = 1.5^l for g = 0.5.
    let o = initscope(&[
        "meanfield",
        "--act",
        "relu",
        "--sigma-w2",
        "2",
        "--residual",
        "--gate",
        "0.5",
        "--depth",
        "12",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mf: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let q = mf["q"].as_array().unwrap();
    assert_eq!(q.len(), 13, "{mf}");
    for (l, q) in q.iter().enumerate() {
        let want = 1.5f64.powi(l as i32);
        assert!(
            (q.as_f64().unwrap() / want - 1.0).abs() < 1e-12,
            "q_{l}: {q}"
        );
    }
    assert_eq!(mf["growth"]["class"], "exponential", "{mf}");
    assert_eq!(mf["c"].as_array().unwrap().len(), 13);
    // tanh: bounded branch, q grows about linearly.
    let o = initscope(&[
        "meanfield",
        "--act",
        "tanh",
        "--sigma-w2",
        "1",
        "--sigma-b2",
        "0.05",
        "--residual",
        "--depth",
        "200",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("growth of q: polynomial"), "{text}");
    assert!(text.contains("     128  "), "{text}");
    assert_bad_input(
        &[
            "meanfield",
            "--act",
            "tanh",
            "--sigma-w2",
            "1",
            "--gate",
            "0.5",
        ],
        "--residual",
    );
    assert_bad_input(
        &[
            "meanfield",
            "--act",
            "tanh",
            "--residual",
            "--sigma-w2",
            "1",
            "--branch-depth",
            "0",
        ],
        "--branch-depth: must be in 1..=",
    );
    assert_bad_input(
        &[
            "meanfield",
            "--act",
            "tanh",
            "--residual",
            "--sigma-w2",
            "1",
            "--c0",
            "2",
        ],
        "--c0: must be in [-1, 1]",
    );
    assert_bad_input(
        &["meanfield", "--act", "tanh", "--residual"],
        "--sigma-w2: required with --residual",
    );
    assert_bad_input(
        &[
            "meanfield",
            "--act",
            "tanh",
            "--residual",
            "--sigma-w2",
            "1",
            "--critical",
        ],
        "--critical: not with --residual",
    );
}

#[test]
fn data_list_info_and_export_round_trip_through_train() {
    let o = initscope(&["data", "list"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mnist1d"));
    let o = initscope(&["data", "info", "mnist1d", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["classes"], 10);
    assert_eq!(info["train"]["rows"], 4000);
    assert!(info["peak_memory_bytes"].as_u64().unwrap() > 0);
    let dir = temp_dir("export");
    let npz = dir.join("moons.npz");
    let o = initscope(&[
        "data",
        "export",
        "moons:n=100,test=50",
        "--out",
        npz.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Training on the exported file and on the built-in set gives the same result.
    let run = |data: &str| {
        let o = initscope(&[
            "train",
            "--data",
            data,
            "--steps",
            "50",
            "--json",
            "--diagnostics",
            "off",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            s["train_loss"].as_f64().unwrap(),
            s["test_loss"].as_f64().unwrap(),
        )
    };
    assert_eq!(run(npz.to_str().unwrap()), run("moons:n=100,test=50"));
    let csv = dir.join("moons.csv");
    let o = initscope(&[
        "data",
        "export",
        "moons:n=100,test=50",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(dir.join("moons-test.csv").is_file());
    assert_bad_input(
        &["data", "export", "moons", "--out", csv.to_str().unwrap()],
        "exists (use --force",
    );
    assert_bad_input(
        &[
            "data",
            "export",
            "moons",
            "--out",
            dir.join("m.txt").to_str().unwrap(),
        ],
        ".npz or .csv",
    );
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "1,2,0\n3,x,1\n").unwrap();
    assert_bad_input(
        &["data", "info", bad.to_str().unwrap()],
        "line 2, column 2: 'x' is not a number",
    );
    assert_bad_input(&["train", "--data", bad.to_str().unwrap()], "bad.csv");
}

mod limits;
mod net;
mod out_rule;
mod sweep;
mod verdict;

#[test]
fn bench_reports_rates_against_the_gemm_ceiling() {
    let o = initscope(&["bench", "--workload", "gemm", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = r.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(row["gflops"].as_f64().unwrap() > 0.1, "{row}");
        let f = row["fraction_of_ceiling"].as_f64().unwrap();
        assert!(f > 0.0 && f <= 1.0, "{row}");
    }
    let o = initscope(&["bench", "--workload", "tiny", "--threads", "1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["workload"], "tiny");
    assert!(r[0]["value"].as_f64().unwrap() > 0.0);
    assert_bad_input(
        &["bench", "--workload", "resnet"],
        "unknown (known: all, gemm",
    );
}

#[test]
fn reproduce_prints_the_table_and_json_and_refuses_unknown_names() {
    let o = initscope(&["reproduce", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    for name in [
        "seed",
        "glorot2010",
        "he2015",
        "saxe2014",
        "schoenholz2017",
        "pennington2017",
        "lsuv2016",
        "zero2022",
        "mnist1d",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    let o = initscope(&["reproduce", "saxe2014"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("mode s = 3") && text.contains("criterion:") && text.contains("PASS"),
        "{text}"
    );
    let o = initscope(&["reproduce", "saxe2014", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["name"], "saxe2014");
    assert_eq!(r[0]["pass"], true);
    assert_eq!(r[0]["measured"]["modes"].as_array().unwrap().len(), 4);
    assert_bad_input(
        &["reproduce", "glorot"],
        "unknown reproduction; known: seed",
    );
}

#[test]
fn usage_errors_are_one_prefixed_line_and_help_and_version_still_print() {
    assert_bad_input(
        &["train", "--foo"],
        "initscope: error: unexpected argument '--foo' found (see 'initscope train --help')",
    );
    assert_bad_input(
        &["train", "--inti", "zeros"],
        "a similar argument exists: '--init'",
    );
    assert_bad_input(
        &["train", "--lr"],
        "initscope: error: a value is required for '--lr <LR>'",
    );
    assert_bad_input(
        &["train", "--lr", "abc"],
        "initscope: error: invalid value 'abc' for '--lr <LR>'",
    );
    assert_bad_input(
        &["explain", "--format", "html"],
        "possible values: text, markdown; see 'initscope explain --help'",
    );
    assert_bad_input(
        &["data", "export"],
        "initscope: error: the following required arguments were not provided: --out",
    );
    assert_bad_input(
        &["init", "show", "zeros", "--fan-in", "3"],
        "(see 'initscope init show --help')",
    );
    assert_bad_input(
        &["nosuchcommand"],
        "initscope: error: unrecognized subcommand 'nosuchcommand' (see 'initscope --help')",
    );
    for args in [
        &["--help"][..],
        &["--version"],
        &["train", "--help"],
        &["data", "export", "-h"],
        &["help", "sweep"],
        &[],
        &["data"],
    ] {
        let o = initscope(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!o.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn negative_widths_are_named_as_written() {
    assert_bad_input(
        &["train", "--hidden=-3"],
        "--hidden '-3': '-3' is not a positive width",
    );
    assert_bad_input(
        &["train", "--arch=2--16-2"],
        "--arch '2--16-2': '-16' is not a positive width",
    );
}

#[test]
fn study_out_on_a_file_names_the_path() {
    let dir = temp_dir("study-out-file");
    let file = dir.join("taken.txt");
    std::fs::write(&file, "not a folder").unwrap();
    let f = file.to_str().unwrap();
    assert_bad_input(
        &["study", "--quick", "--out", f],
        &format!("{f}: exists and is not a folder"),
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

#[test]
fn grid_errors_are_one_line_and_an_empty_grid_is_refused() {
    let dir = temp_dir("grid-errors");
    let g = dir.join("g.toml");
    let gs = g.to_str().unwrap();
    let out = dir.join("o");
    let outs = out.to_str().unwrap();
    std::fs::write(&g, "[fixed]\nsteps = 5\n[axes]\nseed = [0, \"a\"]\n").unwrap();
    assert_bad_input(
        &["sweep", gs, "--out", outs],
        &format!("{gs}: [axes] seed = \"a\": invalid type: string \"a\""),
    );
    for text in ["[fixed]\nsteps = 5\n", "[fixed]\nsteps = 5\n[axes]\n"] {
        std::fs::write(&g, text).unwrap();
        assert_bad_input(
            &["sweep", gs, "--out", outs],
            &format!("{gs}: has no axes; a sweep needs at least one [axes] list (use `initscope train` for one run)"),
        );
    }
    assert!(!out.exists(), "nothing written for a refused grid");
}

#[test]
fn contradicting_options_are_refused_and_idle_ones_warned_about() {
    assert_bad_input(
        &["train", "--init-from", "w.safetensors", "--init", "zeros"],
        "--init-from: the weights and biases come from w.safetensors, so --init would be ignored",
    );
    assert_bad_input(
        &[
            "explain",
            "--init-from",
            "w.safetensors",
            "--layer-bias-init",
            "1=zeros",
        ],
        "so --layer-bias-init would be ignored",
    );
    assert_bad_input(
        &["train", "--no-bias", "--bias-init", "zeros"],
        "--bias-init: there are no biases to initialise with --no-bias",
    );
    assert_bad_input(
        &["gradcheck", "--no-bias", "--layer-bias-init", "2=zeros"],
        "--layer-bias-init: there are no biases to initialise with --no-bias",
    );
    assert_bad_input(
        &["train", "--data-dir", "/nonexistent/initscope-data"],
        "--data-dir '/nonexistent/initscope-data': no such directory",
    );
    let o = initscope(&[
        "train",
        "--steps",
        "2",
        "-q",
        "--json",
        "--optim",
        "adam",
        "--momentum",
        "0.5",
        "--task",
        "regression",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "initscope: warning: --momentum has no effect with --optim adam (used by momentum and nesterov only)\n\
         initscope: warning: --task has no effect on the data 'moons' (used by CSV and NumPy files only)\n"
    );
    serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("stdout holds only the JSON");
    for cmd in ["explain", "gradcheck"] {
        let o = initscope(&[cmd, "--steps", "2", "--hidden", "4", "--alpha", "0.9"]);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("initscope: warning: --alpha has no effect with --optim sgd"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // A sweep may fix an option that only some of its runs use: no warning per run.
    let dir = temp_dir("sweep-no-warnings");
    let g = dir.join("g.toml");
    std::fs::write(
        &g,
        "[fixed]\ndata = \"moons:n=64\"\nhidden = \"4\"\nsteps = 5\nmomentum = 0.5\n[axes]\noptim = [\"sgd\", \"momentum\"]\n",
    )
    .unwrap();
    let o = initscope(&[
        "sweep",
        g.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn every_help_documents_each_argument_and_states_a_default_once() {
    let text = |args: &[&str]| {
        let o = initscope(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let export = text(&["data", "export", "--help"]);
    assert!(
        export.contains("<DATA>  A built-in name") && export.contains("FILE-test.csv"),
        "{export}"
    );
    assert!(
        export.contains("An existing file is refused without --force"),
        "{export}"
    );
    let study = text(&["study", "--help"]);
    let data = study
        .lines()
        .find(|l| l.trim_start().starts_with("--data <"))
        .expect("study --help lists --data");
    assert_eq!(data.matches("default").count(), 1, "{data}");
    // The residual study's variants and budgets are in its help.
    for word in [
        "residual",
        "fixup",
        "rezero",
        "batchnorm-zero-gamma",
        "8, 32, 128 blocks",
        "about 4 minutes",
    ] {
        assert!(study.contains(word), "{word}: {study}");
    }
    let sweep = text(&["sweep", "--help"]);
    assert!(sweep.contains("0 <= i < n"), "{sweep}");
    for cmd in [
        "train",
        "bench",
        "data list",
        "data info",
        "data export",
        "explain",
        "gradcheck",
        "meanfield",
        "study",
        "reproduce",
        "report",
        "sweep",
        "merge",
        "slurm",
        "init list",
        "init show",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let help = text(&args);
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.matches("[default:").count() <= 1, "{cmd}: {line}");
            let t = line.trim();
            // An argument line with no description beside it nor indented under it.
            let indent = line.len() - line.trim_start().len();
            let under = lines
                .get(i + 1)
                .is_some_and(|n| n.len() - n.trim_start().len() > indent && !n.trim().is_empty());
            if (t.starts_with('-') || t.starts_with('<')) && !t.contains("  ") {
                assert!(under, "{cmd}: undocumented argument '{t}'");
            }
        }
    }
}

/// Weights near 1e185 keep the loss finite in f64 but overflow every squared norm: the run is
/// `ok`, and the summary says how many diagnostic values are not finite and where the first is.
/// A zero-initialized net (whose ratios to ||W|| = 0 are NaN by definition) gets no warning.
#[test]
fn train_warns_when_diagnostic_values_are_not_finite() {
    let huge = [
        "train",
        "--data",
        "moons:n=64",
        "--hidden",
        "16,16,16",
        "--precision",
        "f64",
        "--init",
        "normal:0,1e185",
        "--steps",
        "3",
        "--quiet",
    ];
    let o = initscope(&huge);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(": ok\n"), "{text}");
    let warning = text
        .lines()
        .find(|l| l.trim_start().starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    assert!(
        warning.contains("diagnostic values are not finite (weight_norm, ")
            && warning.contains("first: weight_norm layer 1 at step 0)"),
        "{warning}"
    );
    let o = initscope(&[&huge[..], &["--json"]].concat());
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["status"], "ok");
    assert!(s["nonfinite_diagnostics"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        s["nonfinite_first"],
        serde_json::json!({"metric": "weight_norm", "layer": 1, "step": 0})
    );
    let zeros = initscope(&[
        "train",
        "--data",
        "moons:n=64",
        "--init",
        "zeros",
        "--steps",
        "3",
        "--quiet",
    ]);
    let text = String::from_utf8_lossy(&zeros.stdout);
    assert!(!text.contains("warning"), "{text}");
}

/// `report` refuses a metrics.csv cut mid-record: one line naming the file and the line, exit 2.
#[test]
fn report_refuses_a_truncated_metrics_csv() {
    let dir = temp_dir("report-truncated");
    let run = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--steps",
        "5",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let path = run.join("metrics.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let n = text.lines().count() + 1;
    text.push_str("abc,12,loss,\n");
    std::fs::write(&path, text).unwrap();
    assert_bad_input(
        &["report", run.to_str().unwrap()],
        &format!("{}: line {n} is incomplete (4 of 5 fields)", path.display()),
    );
    assert!(!run.join("report.html").exists());
}

#[test]
fn bad_data_files_are_refused_on_one_line_naming_the_file() {
    // Issue 14: what a probe found, through `data info` and `train --data`.
    let dir = temp_dir("bad-data-files");
    let npy = |descr: &str, shape: &str, data: &[u8]| {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    };
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let nul = file("zeros.csv", &vec![0u8; 4 << 20]);
    let empty_cell = file("cell.csv", b"a,b,label\n1,,0\n2,3,1\n");
    let lie = file("lie.npy", &npy("<f4", "(1000000000,)", &[0; 8]));
    let x0 = file("x0.npy", &npy("<f8", "(0, 2)", &[]));
    let y0 = file("y0.npy", &npy("<i8", "(0,)", &[]));
    let y2 = file("y2.npy", &npy("<i8", "(2,)", &[0; 16]));
    let folder = dir.join("folder.npz");
    std::fs::create_dir_all(&folder).unwrap();
    let folder = folder.to_str().unwrap().to_string();
    let cases = [
        (
            nul.clone(),
            format!("{nul}: not a text CSV file (NUL byte at line 1, byte 0)"),
        ),
        (
            empty_cell.clone(),
            format!("{empty_cell}: line 2, column 2 ('b'): empty cell"),
        ),
        (
            format!("npy:{lie},{y2}"),
            format!("{lie}: byte 136: truncated: shape [1000000000] needs 4000000000 data bytes, but only 8 follow the header"),
        ),
        (format!("npy:{x0},{y0}"), format!("{x0}: holds 0 rows")),
        (
            folder.clone(),
            format!("{folder}: is a directory, not an .npz file"),
        ),
    ];
    for (data, message) in &cases {
        let started = std::time::Instant::now();
        assert_bad_input(&["data", "info", data], message);
        assert_bad_input(&["train", "--data", data, "--steps", "1"], message);
        assert!(
            started.elapsed().as_secs_f64() < 5.0,
            "{data}: refused at once"
        );
    }
}

#[test]
fn an_unknown_study_is_refused_naming_the_known_ones() {
    let o = initscope(&["study", "resnet", "--quick"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("resnet") && e.contains("mlp") && e.contains("residual"),
        "{e}"
    );
}
