//! The `--out` rule, the same for every command: a missing or empty folder is used; initscope's
//! own folders (marked) are replaced only with `--force` (runs) or resumed (sweeps, studies);
//! anything else is refused, and `.`, `..`, parents of the working folder, `/` and home never
//! are targets. Every case checks canary files in a scratch folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{initscope, stderr, temp_dir};

/// `initscope ARGS` run with `cwd` as its working folder.
fn initscope_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// A scratch folder holding a canary file and a canary folder with a file.
fn scratch(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    fs::write(dir.join("canary.txt"), "keep me").unwrap();
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/notes.md"), "mine").unwrap();
    dir
}

/// This machine's name as initscope's temporaries carry it.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn canaries_intact(dir: &Path) {
    assert_eq!(
        fs::read_to_string(dir.join("canary.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        fs::read_to_string(dir.join("sub/notes.md")).unwrap(),
        "mine"
    );
}

fn refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "'{needle}' not in: {err}");
}

const TRAIN: &[&str] = &["train", "--data", "xor", "--steps", "3", "--quiet"];

fn train_in(cwd: &Path, out: &str, force: bool) -> Output {
    let mut args = TRAIN.to_vec();
    args.extend(["--out", out]);
    if force {
        args.push("--force");
    }
    initscope_in(cwd, &args)
}

#[test]
fn force_never_deletes_the_working_folder_its_parents_root_or_home() {
    let dir = scratch("out-forbidden");
    for out in [".", "./", "sub/..", "..", "/"] {
        let o = train_in(&dir, out, true);
        refused(&o, "--out must name a new folder or one initscope wrote");
        canaries_intact(&dir);
    }
    let home = std::env::var("HOME").unwrap();
    refused(&train_in(&dir, &home, true), "is the home folder");
    canaries_intact(&dir);
    // Nothing was written beside or inside the scratch folder.
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn force_replaces_only_initscope_run_folders() {
    let dir = scratch("out-force");
    // A folder of someone else's files is refused, with or without --force.
    refused(
        &train_in(&dir, "sub", false),
        "holds files initscope did not write",
    );
    refused(
        &train_in(&dir, "sub", true),
        "holds files initscope did not write",
    );
    refused(
        &train_in(&dir, "canary.txt", true),
        "exists and is not a folder",
    );
    canaries_intact(&dir);
    // A run folder initscope wrote: refused without --force, replaced with it.
    assert!(train_in(&dir, "run", false).status.success());
    assert!(dir.join("run/.initscope").is_file());
    refused(
        &train_in(&dir, "run", false),
        "holds an initscope run; use --force",
    );
    let before = fs::read(dir.join("run/config.json")).unwrap();
    let mut args = TRAIN.to_vec();
    args.extend(["--out", "run", "--force", "--seed", "7"]);
    assert!(initscope_in(&dir, &args).status.success());
    assert_ne!(fs::read(dir.join("run/config.json")).unwrap(), before);
    // A sweep folder is not a run: --force does not replace it.
    let grid = dir.join("grid.toml");
    fs::write(
        &grid,
        "[fixed]\ndata = \"xor\"\nsteps = 2\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    let o = initscope_in(&dir, &["sweep", "grid.toml", "--out", "sw", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        &train_in(&dir, "sw", true),
        "holds an initscope sweep, not a run",
    );
    assert!(dir.join("sw/runs.csv").is_file());
    // No temporaries are left beside anything.
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    canaries_intact(&dir);
}

#[test]
fn sweeps_and_studies_refuse_foreign_folders_and_runs() {
    let dir = scratch("out-sweep");
    fs::write(
        dir.join("grid.toml"),
        "[fixed]\ndata = \"xor\"\nsteps = 2\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    let sweep = |out: &str| initscope_in(&dir, &["sweep", "grid.toml", "--out", out, "--quiet"]);
    refused(&sweep("sub"), "holds files initscope did not write");
    refused(&sweep("."), "is the working folder");
    assert!(train_in(&dir, "run", false).status.success());
    refused(&sweep("run"), "holds an initscope run, not a sweep");
    assert!(!dir.join("run/sweep.json").exists());
    // An empty folder (as `mkdir -p` in a Slurm script makes it) is used, and resumed; so is
    // one that holds only the logs Slurm opened for the array's tasks before they started.
    fs::create_dir(dir.join("empty")).unwrap();
    fs::write(dir.join("empty/slurm-41_0.out"), "").unwrap();
    assert!(sweep("empty").status.success());
    assert!(sweep("empty").status.success());
    assert!(dir.join("empty/runs.csv").is_file());
    refused(
        &initscope_in(&dir, &["study", "--quick", "--out", "sub"]),
        "holds files initscope did not write",
    );
    refused(
        &initscope_in(&dir, &["study", "--quick", "--out", "canary.txt"]),
        "canary.txt: exists and is not a folder",
    );
    refused(
        &initscope_in(
            &dir,
            &["slurm", "grid.toml", "--out", "sub", "--shards", "2"],
        ),
        "holds files initscope did not write",
    );
    canaries_intact(&dir);
}

#[test]
fn report_rewrites_its_own_files_and_refuses_others() {
    let dir = scratch("out-report");
    assert!(train_in(&dir, "run", false).status.success());
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "run"];
        args.extend(extra);
        initscope_in(&dir, &args)
    };
    // The derived report.html is regenerated without --force, as is an initscope report elsewhere.
    assert!(report(&[]).status.success());
    assert!(report(&[]).status.success());
    assert!(report(&["--out", "r.html"]).status.success());
    assert!(report(&["--out", "r.html"]).status.success());
    // Anything else is refused without --force.
    refused(
        &report(&["--out", "canary.txt"]),
        "canary.txt: exists and is not an initscope report (use --force",
    );
    refused(&report(&["--out", "sub"]), "sub: is a folder");
    canaries_intact(&dir);
    assert!(report(&["--out", "canary.txt", "--force"]).status.success());
}

#[test]
fn unwritable_outputs_name_the_users_path_and_stale_temporaries_are_cleaned() {
    let dir = scratch("out-unwritable");
    // /proc refuses new folders even to root.
    let o = train_in(&dir, "/proc/initscope-no/run", false);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/proc/initscope-no/run") && !stderr(&o).contains(".tmp-"),
        "{}",
        stderr(&o)
    );
    // A killed writer's temporary (a process id that does not run) is removed by the next
    // writer of the same target; a live process's is kept.
    let dead = dir.join(format!(".run.tmp-{}-999999999", host()));
    fs::create_dir_all(&dead).unwrap();
    fs::write(dead.join(".initscope"), "kind = \"run\"\n").unwrap();
    let live = dir.join(format!(".run.tmp-{}-{}", host(), std::process::id()));
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join(".initscope"), "kind = \"run\"\n").unwrap();
    // Another machine's temporary (its process cannot be seen from here) and a user's folder
    // that merely looks like a temporary are never touched.
    let remote = dir.join(".job7.tmp-othermachine-999999999");
    fs::create_dir_all(&remote).unwrap();
    fs::write(remote.join(".initscope"), "kind = \"run\"\n").unwrap();
    let users = dir.join(".run.old-2023");
    fs::create_dir_all(&users).unwrap();
    fs::write(users.join("data.bin"), "mine").unwrap();
    assert!(train_in(&dir, "run", false).status.success());
    assert!(!dead.exists(), "stale temporary left behind");
    assert!(live.exists(), "a running process's temporary was removed");
    assert!(remote.exists(), "another machine's temporary was removed");
    assert!(
        users.join("data.bin").exists(),
        "a user's folder was removed"
    );
    fs::remove_dir_all(&live).unwrap();
    // The same for a killed merge's runs.csv temporary.
    fs::write(
        dir.join("grid.toml"),
        "[fixed]\ndata = \"xor\"\nsteps = 2\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    let o = initscope_in(&dir, &["sweep", "grid.toml", "--out", "sw", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stale = dir.join(format!("sw/.runs.csv.tmp-{}-999999999", host()));
    fs::write(&stale, "run,run_id\n").unwrap();
    let o = initscope(&["merge", dir.join("sw").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists(), "stale runs.csv temporary left behind");
    canaries_intact(&dir);
}

#[test]
fn a_train_killed_mid_write_leaves_nothing_that_the_next_write_keeps() {
    let dir = scratch("out-killed");
    let mut args = TRAIN.to_vec();
    args.extend(["--out", "victim"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(&args)
        .current_dir(&dir)
        .env("INITSCOPE_TEST_STALL_WRITE_MS", "20000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = dir.join(format!(".victim.tmp-{}-{}", host(), child.id()));
    let start = std::time::Instant::now();
    while !tmp.join("config.json").exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the writer never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(tmp.is_dir(), "the killed writer's temporary is the subject");
    assert!(!dir.join("victim").exists());
    // The next run written beside it clears the dead process's temporary.
    assert!(train_in(&dir, "other", false).status.success());
    assert!(!tmp.exists(), "stale temporary left behind");
    canaries_intact(&dir);
}

#[test]
fn a_marker_does_not_make_a_folder_replaceable() {
    let dir = scratch("out-marker");
    assert!(train_in(&dir, "run", false).status.success());
    // A user's file added to a run folder: --force no longer replaces it.
    fs::write(dir.join("run/notes.md"), "precious").unwrap();
    refused(
        &train_in(&dir, "run", true),
        "holds files initscope did not write (e.g. 'notes.md')",
    );
    assert_eq!(
        fs::read_to_string(dir.join("run/notes.md")).unwrap(),
        "precious"
    );
    // A marker copied into a foreign folder does not make it initscope's.
    fs::copy(dir.join("run/.initscope"), dir.join("sub/.initscope")).unwrap();
    refused(
        &train_in(&dir, "sub", true),
        "holds files initscope did not write",
    );
    // A folder holding only something that looks like a temporary is refused before training.
    fs::create_dir_all(dir.join("e/.x.tmp-1")).unwrap();
    refused(
        &train_in(&dir, "e", false),
        "holds files initscope did not write",
    );
    // A folder with a sweep.json that is not initscope's is refused and left unmarked.
    fs::create_dir_all(dir.join("wandb")).unwrap();
    fs::write(dir.join("wandb/sweep.json"), "{\"method\": \"grid\"}").unwrap();
    fs::write(dir.join("wandb/train.py"), "print()").unwrap();
    fs::write(
        dir.join("grid.toml"),
        "[fixed]\ndata = \"xor\"\nsteps = 2\n[axes]\nseed = [0, 1]\n",
    )
    .unwrap();
    refused(
        &initscope_in(&dir, &["sweep", "grid.toml", "--out", "wandb", "--quiet"]),
        "holds files initscope did not write",
    );
    assert!(!dir.join("wandb/.initscope").exists());
    canaries_intact(&dir);
}

#[test]
fn a_folder_that_appears_while_a_run_trains_is_never_clobbered() {
    let dir = scratch("out-race");
    let mut args = TRAIN.to_vec();
    args.extend(["--out", "late"]);
    let child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(&args)
        .current_dir(&dir)
        .env("INITSCOPE_TEST_STALL_WRITE_MS", "1500")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While the run is being written (its check passed: the folder was missing), a user creates
    // the folder with a file in it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    fs::create_dir_all(dir.join("late")).unwrap();
    fs::write(dir.join("late/canary.txt"), "keep me").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(dir.join("late/canary.txt")).unwrap(),
        "keep me"
    );
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    canaries_intact(&dir);
}

#[test]
fn a_refused_study_leaves_the_folder_as_it_was() {
    let dir = scratch("out-study");
    let o = initscope_in(&dir, &["study", "--quick", "--data", "xor", "--out", "s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = fs::read(dir.join("s/grid.toml")).unwrap();
    refused(
        &initscope_in(&dir, &["study", "--quick", "--data", "moons", "--out", "s"]),
        "holds a different sweep",
    );
    assert_eq!(fs::read(dir.join("s/grid.toml")).unwrap(), grid);
    canaries_intact(&dir);
}
