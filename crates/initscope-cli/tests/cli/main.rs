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
        "not empty (use --force",
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
        "'0.weight' has shape [16, 2], expected [8, 2]",
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
    assert!(md.contains("**Verdict: dead.**"));
    let o = initscope(&[&base[..], &["--json"]].concat());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    for key in [
        "layers",
        "loss_start",
        "loss_end",
        "loss_constant_baseline",
        "symmetry_breakers",
        "verdict",
        "summary",
    ] {
        assert!(doc.get(key).is_some(), "explain --json lacks {key}");
    }
    assert_eq!(doc["verdict"], "dead");
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
    ] {
        assert!(layer.get(key).is_some(), "layer lacks {key}");
    }
    assert_eq!(layer["layer"], 1);
    assert!(layer["wake_step"].is_null());
    // Default K is 200 steps.
    let o = initscope(&["explain", "--data", "moons", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["steps"], 200);
    assert_eq!(doc["verdict"], "full");
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

mod sweep;

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
