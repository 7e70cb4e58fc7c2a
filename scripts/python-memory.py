#!/usr/bin/env python3
"""Peak memory of initscope.train on Fashion-MNIST passed in as arrays, against the command line.

Each measurement runs in its own process and its peak RSS is the kernel's (wait4's ru_maxrss):

  python   initscope.train(data=(X, y), hidden="64", steps=200, batch=128, diagnostics="off")
           with X the 60000 training images as (60000, 784) in one of these forms:
             f32   float32, C-contiguous (pixels / 255): the default precision's own type, used
                   in place (no copy);
             u8    uint8 pixels: converted once to a float32 buffer inside the call;
             f64   float64, C-contiguous, with precision="f64": used in place;
  cli      initscope train --data fashion-mnist --hidden 64 --steps 200 --batch 128
           --diagnostics off (60000 training and 10000 test images, float32).

For a Python run, `before` is the process's RSS just before the call (the interpreter, NumPy,
initscope and the arrays) and `added` is peak - before: what the call itself needed. With X used
in place that is the training's own memory (a few MiB for this network), not another copy of X.
The command line's figure to compare is its peak minus its data (70000 x 784 float32).

  scripts/python-memory.py [--cli target/release/initscope] [--modes f32,u8,f64] [--json]

Needs initscope importable and the IDX files (.gz or not) in $INITSCOPE_DATA/fashion-mnist or
/usr/share/datasets/fashion-mnist. Exits 3 when the data is missing.
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

STEPS = dict(hidden="64", steps=200, batch=128, diagnostics="off")
MIB = 1 << 20


def data_dir():
    """The folder holding Fashion-MNIST's IDX files, or None."""
    roots = [os.environ.get("INITSCOPE_DATA"), "/usr/share/datasets"]
    for root in filter(None, roots):
        for d in (Path(root) / "fashion-mnist", Path(root)):
            if idx_file(d, "train-images-idx3-ubyte"):
                return d
    return None


def idx_file(d, name):
    for f in (d / name, d / (name + ".gz")):
        if f.is_file():
            return f
    return None


def open_idx(path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_images(d, dtype):
    """(60000, 784) training images in `dtype`, filled 1000 rows at a time, so the only large
    buffer is the result (floats are pixels / 255 in that type)."""
    import numpy as np

    with open_idx(idx_file(d, "train-images-idx3-ubyte")) as f:
        _, n, rows, cols = struct.unpack(">iiii", f.read(16))
        dim = rows * cols
        X = np.empty((n, dim), dtype=dtype)
        for start in range(0, n, 1000):
            k = min(1000, n - start)
            chunk = np.frombuffer(f.read(k * dim), dtype=np.uint8).reshape(k, dim)
            X[start : start + k] = chunk if X.dtype == np.uint8 else chunk / X.dtype.type(255)
    return X


def read_labels(d):
    import numpy as np

    with open_idx(idx_file(d, "train-labels-idx1-ubyte")) as f:
        _, n = struct.unpack(">ii", f.read(8))
        return np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)


def rss_kib():
    """The process's resident set size now (KiB)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def child(mode):
    """One Python measurement, in this process: prints {mode, array_bytes, before_kib, run_id}."""
    import numpy as np

    import initscope

    d = data_dir()
    dtype = {"f32": np.float32, "u8": np.uint8, "f64": np.float64}[mode]
    X, y = read_images(d, dtype), read_labels(d)
    before = rss_kib()
    flags = dict(STEPS, precision="f64") if mode == "f64" else STEPS
    run = initscope.train(data=(X, y), **flags)
    print(json.dumps({"mode": mode, "array_bytes": X.nbytes, "before_kib": before,
                      "run_id": run.run_id, "test_acc": run.summary["test_acc"]}))


def measure(cmd):
    """Runs `cmd`; returns its stdout, raising on failure."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def peak_of(cmd):
    """Peak RSS (KiB) and stdout of `cmd`. A fresh helper process runs it and reads
    RUSAGE_CHILDREN, the maximum over its children, here that one command alone."""
    probe = (
        "import json, resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "if p.returncode: sys.exit(p.stderr or p.returncode)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'peak_kib': peak, 'stdout': p.stdout}))\n"
    )
    out = measure([sys.executable, "-c", probe, *map(str, cmd)])
    r = json.loads(out)
    return r["peak_kib"], r["stdout"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cli", help="an initscope binary to compare with")
    ap.add_argument("--modes", default="f32,u8", help="comma-separated: f32, u8, f64")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return
    if data_dir() is None:
        print("Fashion-MNIST's IDX files are not installed", file=sys.stderr)
        sys.exit(3)
    results = {}
    for mode in a.modes.split(","):
        peak, out = peak_of([sys.executable, __file__, "--child", mode])
        r = json.loads(out)
        r["peak_kib"] = peak
        r["added_kib"] = peak - r["before_kib"]
        results[mode] = r
    if a.cli:
        peak, _ = peak_of([a.cli, "train", "--data", "fashion-mnist", "--hidden", "64",
                           "--steps", "200", "--batch", "128", "--diagnostics", "off", "--quiet"])
        data_bytes = 70000 * 784 * 4
        results["cli"] = {"peak_kib": peak, "data_bytes": data_bytes,
                          "beyond_data_kib": peak - data_bytes // 1024}
    if a.json:
        print(json.dumps(results))
        return
    for mode, r in results.items():
        if mode == "cli":
            print(f"cli: peak {r['peak_kib'] / 1024:.0f} MiB, data {r['data_bytes'] / MIB:.0f} MiB, "
                  f"beyond the data {r['beyond_data_kib'] / 1024:.0f} MiB")
        else:
            print(f"python {mode}: X {r['array_bytes'] / MIB:.0f} MiB, RSS before the call "
                  f"{r['before_kib'] / 1024:.0f} MiB, peak {r['peak_kib'] / 1024:.0f} MiB, "
                  f"added by the call {r['added_kib'] / 1024:.0f} MiB ({r['run_id']})")


if __name__ == "__main__":
    main()
