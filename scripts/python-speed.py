#!/usr/bin/env python3
"""Speed of the Python package against the command line on the README's mnist1d run (the
"MLP 40-100-100-10 ReLU, Adam 2e-3, 100 epochs" row of README.md's mnist1d section).

    cargo build --release -p initscope-cli
    python3 -m venv /tmp/v && /tmp/v/bin/pip install ./crates/initscope-py   # release build
    /tmp/v/bin/python scripts/python-speed.py [--bin target/release/initscope] [--rounds 5]

Each round runs the same run once through each, alternating which goes first:
  CLI:    `initscope train --data mnist1d ... --json --quiet` as a subprocess, timed by its wall
          time (process start, data generation, training, printing the summary);
  Python: `initscope.train(data="mnist1d", ...)` in this process (the package imported once,
          before the rounds), timed around the call (data generation and training).
Both also report summary.json's `wall_seconds`, the training loop's own time (no process start,
no data generation). Prints the medians with their spreads (min-max) and the ratios
Python / CLI; exit code 1 when Python's median call time is more than 5% over the CLI's median
wall time (the target of issue 21).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import initscope

ROOT = Path(__file__).resolve().parents[1]

# The README's mnist1d run, as keyword arguments (the flags with underscores).
RUN = {
    "hidden": "100,100",
    "act": "relu",
    "optim": "adam",
    "lr": 2e-3,
    "epochs": 100,
}


def cli_args():
    args = ["train", "--data", "mnist1d"]
    for key, value in RUN.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args + ["--json", "--quiet"]


def run_cli(binary):
    began = time.perf_counter()
    p = subprocess.run([binary, *cli_args()], capture_output=True, text=True, check=True)
    took = time.perf_counter() - began
    return took, json.loads(p.stdout)


def run_python():
    began = time.perf_counter()
    run = initscope.train(data="mnist1d", **RUN)
    took = time.perf_counter() - began
    return took, run.summary


def spread(xs):
    return f"{statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "initscope"))
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if not os.path.isfile(a.bin):
        sys.exit(f"no initscope binary at {a.bin} (cargo build --release -p initscope-cli)")
    print(f"initscope {' '.join(cli_args())}")
    print(f"initscope.train(data='mnist1d', {', '.join(f'{k}={v!r}' for k, v in RUN.items())})")
    # One untimed run each: page cache, CPU frequency, lazy initialisation.
    run_cli(a.bin)
    run_python()
    cli_wall, cli_loop, py_call, py_loop = [], [], [], []
    ids = set()
    for r in range(a.rounds):
        order = ["cli", "py"] if r % 2 == 0 else ["py", "cli"]
        for which in order:
            if which == "cli":
                took, s = run_cli(a.bin)
                cli_wall.append(took)
                cli_loop.append(s["wall_seconds"])
            else:
                took, s = run_python()
                py_call.append(took)
                py_loop.append(s["wall_seconds"])
            ids.add((s["run_id"], s["test_loss"]))
        print(
            f"round {r + 1}: CLI wall {cli_wall[-1]:.3f} s (loop {cli_loop[-1]:.3f}), "
            f"Python call {py_call[-1]:.3f} s (loop {py_loop[-1]:.3f})",
            flush=True,
        )
    if len(ids) != 1:
        sys.exit(f"the runs differ: {sorted(ids)}")
    print(f"CLI    process wall time : {spread(cli_wall)}")
    print(f"Python train() call      : {spread(py_call)}")
    print(f"CLI    summary wall_seconds: {spread(cli_loop)}")
    print(f"Python summary wall_seconds: {spread(py_loop)}")
    ratio = statistics.median(py_call) / statistics.median(cli_wall)
    loop_ratio = statistics.median(py_loop) / statistics.median(cli_loop)
    print(f"ratio Python / CLI: call vs process {ratio:.3f}, wall_seconds {loop_ratio:.3f}")
    if ratio > 1.05:
        print("Python is more than 5% slower than the command line")
        sys.exit(1)


if __name__ == "__main__":
    main()
