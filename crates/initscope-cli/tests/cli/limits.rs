//! Sizes are checked before memory is taken: absurd data, networks, grids and `--jobs` are
//! refused in one line (exit 2) with the estimate and the limit, long before any allocation.

use std::time::{Duration, Instant};

use super::{assert_bad_input, initscope, stderr, temp_dir};

/// Refused in one line naming `needle`, quickly (nothing was generated or allocated first).
fn refused_fast(args: &[&str], needle: &str) {
    let start = Instant::now();
    assert_bad_input(args, needle);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{args:?} took {:?}",
        start.elapsed()
    );
}

#[test]
fn absurd_data_sizes_are_refused_before_generation() {
    for data in [
        "moons:n=1000000000",
        "moons:n=10,test=1000000000000",
        "mnist1d:n=1000000000",
        "teacher:dim=1000000000",
    ] {
        // An explicit limit, so the test means the same on a machine with terabytes.
        refused_fast(
            &[
                "train",
                "--data",
                data,
                "--steps",
                "1",
                "--max-memory",
                "16G",
            ],
            "needs about",
        );
        refused_fast(
            &["data", "info", data, "--max-memory", "16G"],
            "needs about",
        );
    }
    refused_fast(
        &[
            "train",
            "--data",
            "blobs:classes=1000000000",
            "--steps",
            "1",
        ],
        "classes must be at most 100000",
    );
    // The estimate names the limit it was held against.
    refused_fast(
        &["train", "--data", "moons:n=100000", "--max-memory", "1M"],
        "more than the 1.0 MiB (--max-memory) available",
    );
    assert_bad_input(
        &["train", "--max-memory", "lots"],
        "--max-memory 'lots': expected a size",
    );
}

#[test]
fn absurd_networks_are_refused_before_allocation() {
    refused_fast(
        &[
            "train",
            "--hidden",
            "1000000000",
            "--steps",
            "1",
            "--max-memory",
            "16G",
        ],
        "memory: the network 2-1000000000-2",
    );
    refused_fast(
        &[
            "train",
            "--hidden",
            "100000,100000",
            "--steps",
            "1",
            "--max-memory",
            "16G",
        ],
        "needs about",
    );
    refused_fast(
        &[
            "explain",
            "--hidden",
            "100000,100000",
            "--steps",
            "1",
            "--max-memory",
            "16G",
        ],
        "needs about",
    );
    // Without a flag the machine's limit applies (10^10 parameters exceed any machine here).
    refused_fast(
        &["train", "--hidden", "1000000,1000000", "--steps", "1"],
        "needs about",
    );
    // A small net within a generous explicit limit trains.
    let o = initscope(&[
        "train",
        "--data",
        "xor",
        "--steps",
        "2",
        "--quiet",
        "--max-memory",
        "64M",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn absurd_grids_and_jobs_are_refused_or_capped() {
    let dir = temp_dir("limits-grid");
    let big = dir.join("big.toml");
    let seeds: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let lrs: Vec<String> = (1..=100).map(|i| format!("0.00{i}")).collect();
    let evals: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    std::fs::write(
        &big,
        format!(
            "[fixed]\ndata = \"xor\"\n[axes]\nseed = [{}]\nlr = [{}]\neval_every = [{}]\n",
            seeds.join(","),
            lrs.join(","),
            evals.join(",")
        ),
    )
    .unwrap();
    let out = dir.join("out");
    refused_fast(
        &["sweep", big.to_str().unwrap(), "--out", out.to_str().unwrap()],
        "the grid has 10000000 runs (seed 1000 x lr 100 x eval_every 100); a sweep holds at most 100000",
    );
    assert!(!out.exists(), "a refused sweep created its folder");

    let small = dir.join("small.toml");
    std::fs::write(
        &small,
        "[fixed]\ndata = \"xor\"\nsteps = 3\n[axes]\nseed = [0, 1, 2]\n",
    )
    .unwrap();
    let start = Instant::now();
    let o = initscope(&[
        "sweep",
        small.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "1000000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        stderr(&o).contains("(--jobs capped at the"),
        "{}",
        stderr(&o)
    );
    // A limit no run fits is refused before any run starts.
    let tight = dir.join("tight");
    refused_fast(
        &[
            "sweep",
            small.to_str().unwrap(),
            "--out",
            tight.to_str().unwrap(),
            "--max-memory",
            "2K",
        ],
        "more than the 2.0 KiB (--max-memory) available",
    );
    assert_bad_input(
        &[
            "sweep",
            small.to_str().unwrap(),
            "--out",
            tight.to_str().unwrap(),
            "--jobs",
            "0",
        ],
        "--jobs: must be at least 1",
    );
}

#[test]
fn data_commands_refuse_a_missing_data_dir() {
    let out = temp_dir("limits-data-dir").join("never.npz");
    let out = out.to_str().unwrap();
    for args in [
        &[
            "data",
            "info",
            "fashion-mnist",
            "--data-dir",
            "/nonexistent/fm",
        ][..],
        &["data", "list", "--data-dir", "/nonexistent/fm"],
        &[
            "data",
            "export",
            "moons",
            "--out",
            out,
            "--data-dir",
            "/nonexistent/fm",
        ],
    ] {
        assert_bad_input(args, "--data-dir '/nonexistent/fm': no such directory");
    }
}

#[test]
fn a_sweeps_data_sets_count_together_against_its_limit() {
    let dir = temp_dir("limits-sweep-data");
    let grid = dir.join("g.toml");
    std::fs::write(
        &grid,
        "[fixed]\nsteps = 2\nhidden = \"4\"\n[axes]\ndata = [\"mnist1d:seed=1\", \"mnist1d:seed=2\", \"mnist1d:seed=3\", \"mnist1d:seed=4\", \"mnist1d:seed=5\", \"mnist1d:seed=6\", \"mnist1d:seed=7\", \"mnist1d:seed=8\", \"mnist1d:seed=9\"]\n",
    )
    .unwrap();
    let out = dir.join("out");
    refused_fast(
        &[
            "sweep",
            grid.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--max-memory",
            "12M",
        ],
        "data sets loaded before",
    );
    assert!(!out.exists());
}

#[test]
fn init_from_refuses_devices_and_files_beyond_the_limit() {
    refused_fast(
        &["train", "--data", "xor", "--init-from", "/dev/zero"],
        "/dev/zero: is not a regular file",
    );
    let dir = temp_dir("limits-init-from");
    let big = dir.join("big.safetensors");
    std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
    refused_fast(
        &[
            "train",
            "--data",
            "xor",
            "--init-from",
            big.to_str().unwrap(),
            "--max-memory",
            "64K",
        ],
        "--init-from: '",
    );
}
