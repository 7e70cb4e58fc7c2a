//! Sweeps: stable expansion, shards + merge = one sweep, SIGKILL at any point resumes to the
//! same runs.csv, and the Slurm script.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{initscope, stderr, temp_dir};

const GRID: &str = r#"
[fixed]
data = "moons:n=128"
hidden = "8,8"
steps = 150
diagnostics = "off"

[axes]
init = ["zeros", "constant:0.1", "pytorch"]
act = ["tanh", "relu"]
seed = [0, 1]
"#;

fn grid(dir: &Path) -> String {
    let p = dir.join("grid.toml");
    std::fs::write(&p, GRID).unwrap();
    p.display().to_string()
}

fn sweep(grid: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", grid, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    initscope(&args)
}

fn completed(out: &Path) -> usize {
    std::fs::read_dir(out)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("summary.json").is_file())
                .count()
        })
        .unwrap_or(0)
}

fn reference(dir: &Path, grid: &str) -> Vec<u8> {
    let out = dir.join("reference");
    let o = sweep(grid, &out, &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::read(out.join("runs.csv")).unwrap()
}

#[test]
fn expansion_is_stable_and_runs_csv_is_in_grid_order() {
    let dir = temp_dir("sweep-order");
    let g = grid(&dir);
    let a = reference(&dir, &g);
    let out2 = dir.join("again");
    assert_eq!(sweep(&g, &out2, &["--jobs", "1"]).status.code(), Some(0));
    assert_eq!(
        std::fs::read(out2.join("runs.csv")).unwrap(),
        a,
        "same grid, same runs and numbers"
    );
    assert_eq!(
        std::fs::read(out2.join("layers.csv")).unwrap(),
        std::fs::read(dir.join("reference/layers.csv")).unwrap(),
    );
    let text = String::from_utf8(a).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 13);
    assert!(
        rows[0].starts_with("format_version,run,run_id,path,init,act,seed,data,arch,bias_init"),
        "{}",
        rows[0]
    );
    // One row per run: no per-layer strings to parse (they live in layers.csv).
    assert!(
        rows[0].ends_with(",verdict,learning,symmetry_broken,loss_constant_baseline"),
        "{}",
        rows[0]
    );
    assert!(!text.contains("never") && !text.contains(';'), "{text}");
    // Last axis fastest: seed alternates, act changes every 2, init every 4.
    let cells = |r: &str| r.split(',').map(str::to_string).collect::<Vec<_>>();
    assert!(rows[1..].iter().all(|r| cells(r)[0] == "2"), "{text}");
    assert_eq!(&cells(rows[1])[4..7], ["zeros", "tanh", "0"]);
    assert_eq!(&cells(rows[2])[4..7], ["zeros", "tanh", "1"]);
    assert_eq!(&cells(rows[3])[4..7], ["zeros", "relu", "0"]);
    assert_eq!(&cells(rows[5])[4..7], ["constant:0.1", "tanh", "0"]);
    assert!(rows[1].contains(",dead,stalled,"), "{}", rows[1]);
    assert!(rows[12].contains(",full,learned,"), "{}", rows[12]);

    // layers.csv: one row per run and layer, in grid order.
    let layers = std::fs::read_to_string(dir.join("reference/layers.csv")).unwrap();
    let lines: Vec<Vec<String>> = layers.lines().map(cells).collect();
    assert_eq!(
        lines[0],
        [
            "format_version",
            "run_id",
            "layer",
            "units",
            "wake_step",
            "width_exact_init",
            "width_exact_end",
            "width_tol_init",
            "width_tol_end",
            "grad_state",
            "grad_norm_step0",
            "grad_norm_end",
            "weights_unchanged"
        ]
    );
    assert_eq!(lines.len(), 1 + 12 * 3, "{layers}");
    let first_run = &cells(rows[1])[2];
    for (l, row) in lines[1..4].iter().enumerate() {
        // zeros + tanh: every weight gradient is exactly 0 at every step.
        assert_eq!(row[0], "2");
        assert_eq!(&row[1], first_run);
        assert_eq!(row[2], (l + 1).to_string());
        assert_eq!(row[4], "", "never woke: {row:?}");
        assert_eq!(row[9], "zero", "{row:?}");
        assert_eq!(row[12], "true", "{row:?}");
    }
    assert_eq!(lines[1][3], "8");
    assert_eq!(lines[3][3], "2");
    // The last run (pytorch, relu) woke at step 0 everywhere and kept its width.
    for row in &lines[34..] {
        assert_eq!(row[4], "0", "{row:?}");
        assert_eq!(row[9], "alive", "{row:?}");
        assert_eq!(row[8], row[3], "{row:?}");
    }
}

/// Runs written before the learning judgement (verdict format 1) and after it (2) are not mixed
/// into one table: merge refuses in one line naming both formats.
#[test]
fn merge_refuses_to_mix_verdict_formats() {
    let dir = temp_dir("sweep-formats");
    let g = grid(&dir);
    let out = dir.join("out");
    assert_eq!(sweep(&g, &out, &["--jobs", "2"]).status.code(), Some(0));
    let before = std::fs::read(out.join("runs.csv")).unwrap();
    // Make one run look as an older initscope wrote it.
    let (_, rows) = runs_csv(&out);
    let old = &rows[3][2];
    let p = out.join(old).join("summary.json");
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let o = s.as_object_mut().unwrap();
    o.remove("learning").unwrap();
    o.remove("verdict_version").unwrap();
    std::fs::write(&p, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let o = initscope(&["merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("verdict format 1: 1 run(s), e.g. ")
            && err.contains(old.as_str())
            && err.contains("verdict format 2: 11 run(s)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("runs.csv")).unwrap(),
        before,
        "left as it was"
    );
}

#[test]
fn shards_plus_merge_equal_the_unsharded_sweep() {
    let dir = temp_dir("sweep-shards");
    let g = grid(&dir);
    let want = reference(&dir, &g);
    let out = dir.join("sharded");
    for i in 0..3 {
        let o = sweep(&g, &out, &["--shard", &format!("{i}/3"), "--jobs", "1"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            !out.join("runs.csv").exists(),
            "shards never write runs.csv"
        );
    }
    // --shard auto reads the array index.
    let out_auto = dir.join("auto");
    for i in 0..2 {
        let o = Command::new(env!("CARGO_BIN_EXE_initscope"))
            .args([
                "sweep",
                &g,
                "--out",
                out_auto.to_str().unwrap(),
                "--shard",
                "auto",
                "--shards",
                "2",
                "--quiet",
            ])
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    for d in [&out, &out_auto] {
        let o = initscope(&["merge", d.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(std::fs::read(d.join("runs.csv")).unwrap(), want);
        assert_eq!(
            std::fs::read(d.join("layers.csv")).unwrap(),
            std::fs::read(dir.join("reference/layers.csv")).unwrap()
        );
    }
    // A missing shard is reported with the array indices to resubmit.
    let partial = dir.join("partial");
    assert_eq!(
        sweep(&g, &partial, &["--shard", "1/3"]).status.code(),
        Some(0)
    );
    let o = initscope(&["merge", partial.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("8 of 12 runs missing") && text.contains("--array=0,2"),
        "{text}"
    );
}

fn wait_until(deadline_s: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(deadline_s),
            "timed out waiting"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_sweep_killed_after_some_runs_resumes_to_the_same_runs_csv() {
    let dir = temp_dir("sweep-kill");
    let g = grid(&dir);
    let want = reference(&dir, &g);
    for k in [1, 5] {
        let out = dir.join(format!("killed-{k}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
            .args([
                "sweep",
                &g,
                "--out",
                out.to_str().unwrap(),
                "--jobs",
                "1",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(60, || completed(&out) >= k);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = sweep(&g, &out, &["--jobs", "2"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            std::fs::read(out.join("runs.csv")).unwrap(),
            want,
            "killed after {k} runs"
        );
    }
}

#[test]
fn a_sweep_killed_while_writing_a_run_resumes_to_the_same_runs_csv() {
    let dir = temp_dir("sweep-kill-write");
    let g = grid(&dir);
    let want = reference(&dir, &g);
    let out = dir.join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args([
            "sweep",
            &g,
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "1",
            "--quiet",
        ])
        .env("INITSCOPE_TEST_STALL_WRITE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run's directory is half written under its temporary name.
    let temp = || {
        std::fs::read_dir(&out)
            .map(|d| {
                d.filter_map(|e| e.ok()).any(|e| {
                    e.file_name().to_string_lossy().contains(".tmp-")
                        && e.path().join("config.json").is_file()
                })
            })
            .unwrap_or(false)
    };
    wait_until(60, temp);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(completed(&out), 0, "a half-written run is not a run");
    let o = sweep(&g, &out, &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("runs.csv")).unwrap(), want);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "stale temporaries removed");
}

#[test]
fn bad_grids_are_refused_and_a_dir_holding_another_sweep_is_protected() {
    let dir = temp_dir("sweep-bad");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[fixed]\nlearning_rate = 0.1\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    let o = initscope(&[
        "sweep",
        bad.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("learning_rate"), "{}", stderr(&o));
    std::fs::write(&bad, "[axes]\nact = [\"tanh\", \"nope\"]\n").unwrap();
    let o = initscope(&[
        "sweep",
        bad.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("run 1 (act=nope)") && stderr(&o).contains("unknown activation"),
        "{}",
        stderr(&o)
    );
    let g = grid(&dir);
    let out = dir.join("one");
    assert_eq!(sweep(&g, &out, &[]).status.code(), Some(0));
    std::fs::write(
        dir.join("other.toml"),
        "[fixed]\nsteps = 5\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    let o = initscope(&[
        "sweep",
        dir.join("other.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("holds a different sweep"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn slurm_prints_an_array_job_and_an_afterany_merge() {
    let dir = temp_dir("slurm");
    let g = grid(&dir);
    let o = initscope(&[
        "slurm",
        &g,
        "--out",
        dir.join("s").to_str().unwrap(),
        "--shards",
        "4",
        "--cpus",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "#SBATCH --array=0-3",
        "#SBATCH --cpus-per-task=2",
        "--shard auto --shards 4 --jobs 2",
        "--dependency=afterany:${array_id}",
        " merge ",
    ] {
        assert!(s.contains(needle), "{needle} missing from:\n{s}");
    }
}

/// ReLU with lr 1e30 diverges within a few steps in f32 and in f64.
const DIVERGING_GRID: &str = r#"
[fixed]
data = "moons:n=128"
hidden = "8,8"
act = "relu"
steps = 60

[axes]
lr = [0.1, 1e30]
precision = ["f32", "f64"]
"#;

/// The cells of one CSV line (quoted cells hold commas; runs.csv quotes nothing else).
fn cells(line: &str) -> Vec<String> {
    let (mut out, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    out.push(cell);
    out
}

/// runs.csv as (header, rows of cells).
fn runs_csv(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut lines = text.lines().map(cells);
    (lines.next().unwrap(), lines.collect())
}

/// A diverged run is a result: the sweep finishes (exit 0) with runs.csv, resumes to the same
/// bytes, merges, and reports.
#[test]
fn a_sweep_with_diverged_runs_finishes_resumes_merges_and_reports() {
    let dir = temp_dir("sweep-diverged");
    let g = dir.join("grid.toml");
    std::fs::write(&g, DIVERGING_GRID).unwrap();
    let g = g.to_str().unwrap();
    let out = dir.join("out");
    let o = sweep(g, &out, &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (header, rows) = runs_csv(&out);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let diverged = row[col("lr")] != "0.1";
        assert_eq!(
            row[col("status")],
            if diverged { "diverged" } else { "ok" },
            "{row:?}"
        );
        for figure in ["train_loss", "train_acc", "test_loss", "test_acc"] {
            assert_eq!(row[col(figure)].is_empty(), diverged, "{figure} of {row:?}");
        }
        assert!(!row[col("loss_start")].is_empty(), "{row:?}");
    }
    let first = std::fs::read(out.join("runs.csv")).unwrap();
    // Resume: nothing to run, the same bytes.
    let o = initscope(&["sweep", g, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 ran (0 side by side in lockstep), 4 already complete"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(out.join("runs.csv")).unwrap(), first);
    let o = initscope(&["merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("runs.csv")).unwrap(), first);
    let o = initscope(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("diverged at step ").count(), 2, "runs table");
    assert!(html.contains("2 of 4 runs diverged"), "loss-curve note");
}

/// `report` on the run directory of a diverged `train --out`.
#[test]
fn report_of_a_diverged_train_run() {
    let dir = temp_dir("report-diverged-run");
    let run = dir.join("run");
    let o = initscope(&[
        "train",
        "--data",
        "moons:n=128",
        "--hidden",
        "8,8",
        "--act",
        "relu",
        "--lr",
        "1e30",
        "--steps",
        "60",
        "--quiet",
        "--json",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["status"], "diverged");
    assert!(s["train_loss"].is_null(), "{s}");
    let at = s["diverged_at_step"].as_u64().unwrap();
    let o = initscope(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains(&format!("diverged at step {at}")));
}

/// Runs that can share a pack (plain SGD, at most 32 wide; diagnostics on or off; both
/// precisions; minibatches and full batch) next to runs that cannot (40 wide, Adam).
const MIXED: &str = r#"
[fixed]
data = "moons:n=96"
steps = 130
eval_every = 20

[axes]
hidden = ["6,6", "40"]
optim = ["sgd", "adam"]
diagnostics = ["off", "on"]
precision = ["f32", "f64"]
batch = ["16", "full"]
seed = [0, 1, 2]
"#;

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn runs_trained_side_by_side_write_the_same_files_as_runs_alone() {
    // 96 runs; those of 6,6 with SGD (24) can train side by side: the two precisions and two
    // batch sizes make four kinds, each on one data set, in packs of 6 (3 seeds x diagnostics).
    same_files_packed_and_alone("sweep-lockstep", MIXED, 96, 24);
    // 16 runs of networks of modules: the residual network's 8 share a pack, the layernorm
    // network's train alone.
    same_files_packed_and_alone("sweep-lockstep-net", NETS, 16, 8);
}

const NETS: &str = r#"
[fixed]
data = "moons:n=96"
steps = 150
eval_every = 25
batch = 16

[axes]
net = ["linear(6) tanh res(linear(6) tanh linear(6) gate(0))*2 res(relu linear(6, bias=none) shift(0)) linear", "linear(6) layernorm tanh linear"]
diagnostics = ["off", "on"]
seed = [0, 1, 2, 3]
"#;

/// Sweeps `grid` with and without lockstep: `runs` runs, `packed` of them side by side, and
/// every file the same bytes both ways, timing aside.
fn same_files_packed_and_alone(name: &str, grid_text: &str, runs: usize, packed_runs: usize) {
    let dir = temp_dir(name);
    let grid = dir.join("grid.toml");
    std::fs::write(&grid, grid_text).unwrap();
    let grid = grid.display().to_string();
    let (packed, alone) = (dir.join("packed"), dir.join("alone"));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            &grid,
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "2",
        ];
        args.extend_from_slice(extra);
        let o = initscope(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stderr(&o)
    };
    let said = run(&packed, &[]);
    assert!(
        said.contains(&format!(
            "{runs} ran ({packed_runs} side by side in lockstep)"
        )),
        "{said}"
    );
    let said = run(&alone, &["--no-lockstep"]);
    assert!(
        said.contains(&format!("{runs} ran (0 side by side in lockstep)")),
        "{said}"
    );
    let (a, b) = (files(&packed), files(&alone));
    assert_eq!(a, b);
    assert!(a.len() > runs * 6, "{} files", a.len());
    for f in &a {
        let (x, y) = (packed.join(f), alone.join(f));
        let name = f.file_name().unwrap().to_str().unwrap();
        if name.starts_with("events.out.tfevents") {
            // A wall time per event; every other byte follows from the metrics.
            assert_eq!(
                std::fs::metadata(&x).unwrap().len(),
                std::fs::metadata(&y).unwrap().len(),
                "{}",
                f.display()
            );
        } else if name == "summary.json" {
            let untimed = |p: &Path| {
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                let o = v.as_object_mut().unwrap();
                assert!(o.remove("wall_seconds").is_some());
                assert!(o.remove("samples_per_second").is_some());
                v
            };
            assert_eq!(untimed(&x), untimed(&y), "{}", f.display());
        } else {
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{} differs",
                f.display()
            );
        }
    }
}
