"""Tests of initscope's Python package against the library's own command line.

Run by scripts/python-tests.sh (fresh venv, the package built by maturin through pip). The
command-line comparisons need the `initscope` binary: $INITSCOPE_BIN, by default the workspace's
target/debug/initscope; they are skipped without it unless INITSCOPE_REQUIRE_CLI=1 (the script
sets it, after building the binary).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import initscope

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("INITSCOPE_BIN", ROOT / "target" / "debug" / "initscope"))
TIMING = {"wall_seconds", "samples_per_second"}


def cli(*args, check=True):
    """Runs the initscope binary; skips (or fails under INITSCOPE_REQUIRE_CLI=1) without it."""
    if not BIN.is_file():
        if os.environ.get("INITSCOPE_REQUIRE_CLI") == "1":
            pytest.fail(f"no initscope binary at {BIN} (cargo build -p initscope-cli)")
        pytest.skip(f"no initscope binary at {BIN} (set INITSCOPE_BIN)")
    p = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"initscope {' '.join(map(str, args))} failed: {p.stderr}")
    return p


def cli_error(*args):
    """The one-line message the command line prints for bad input, without its prefix."""
    p = cli(*args, check=False)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert line.startswith("initscope: error: "), line
    return line[len("initscope: error: "):]


def read_safetensors(path):
    """name -> array of a safetensors file (no dependency on the safetensors package)."""
    b = Path(path).read_bytes()
    n = int.from_bytes(b[:8], "little")
    header = json.loads(b[8 : 8 + n])
    data = b[8 + n :]
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        start, end = t["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def without_timing(summary):
    return {k: v for k, v in summary.items() if k not in TIMING}


def assert_same_weights(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


def blobs(n=120, d=3, seed=0):
    """Integer-valued features (so every dtype holds them exactly) and two classes."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 8, size=(n, d)).astype(np.float64)
    y = (X[:, 0] + X[:, 1] > 7).astype(np.int64)
    return X, y


FAST = dict(steps=40, hidden="8")


# ---------------------------------------------------------------- train on built-in data


def test_train_moons_run_object():
    run = initscope.train(data="moons", optim="adam", lr=0.01, epochs=5)
    assert len(run.run_id) == 16
    s = run.summary
    assert s["run_id"] == run.run_id and s["status"] == "ok" and s["steps"] == 20
    assert s["verdict"] == "full" and s["precision"] == "f32"
    assert run.config["data"].startswith("moons:") and run.config["arch"] == [2, 16, 16, 2]
    assert list(run.weights) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert run.weights["0.weight"].shape == (16, 2) and run.weights["0.weight"].dtype == np.float32
    assert run.weights["4.bias"].shape == (2,)
    assert "moons" in repr(run) and run.run_id in repr(run)


def test_default_data_is_moons():
    assert initscope.train(steps=3).config["data"] == initscope.train(data="moons", steps=3).config["data"]


def test_history_columns_match_metrics_csv(tmp_path):
    run = initscope.train(data="moons", steps=30)
    h = run.history
    run.save(tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert list(h) == rows[0] == ["run_id", "step", "metric", "layer", "value"]
    body = rows[1:]
    assert len(h["step"]) == len(body) > 0
    assert h["step"].dtype == np.int64 and h["layer"].dtype == np.float64
    assert h["value"].dtype == np.float64 and h["metric"].dtype.kind == "U"
    for i, (run_id, step, metric, layer, value) in enumerate(body):
        assert h["run_id"][i] == run_id
        assert h["step"][i] == int(step) and h["metric"][i] == metric
        assert (np.isnan(h["layer"][i]) and layer == "") or h["layer"][i] == int(layer)
        v = float(value)
        assert (np.isnan(v) and np.isnan(h["value"][i])) or h["value"][i] == v
    assert {"train_loss", "test_loss", "test_acc", "grad_norm"} <= set(h["metric"])


def test_history_frame_with_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    run = initscope.train(data="moons", steps=30)
    df = run.history_frame()
    run.save(tmp_path / "run")
    expected = pd.read_csv(tmp_path / "run" / "metrics.csv", dtype={"run_id": str})
    assert list(df.columns) == list(expected.columns)
    for col in ["step", "layer", "value"]:
        np.testing.assert_array_equal(df[col].to_numpy(), expected[col].to_numpy())
    assert (df["metric"].astype(str) == expected["metric"].astype(str)).all()


def test_history_frame_without_pandas(monkeypatch):
    run = initscope.train(data="moons", steps=3)
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(ImportError, match=r"needs pandas \(pip install pandas\)"):
        run.history_frame()


def test_net_spec_and_module_column():
    run = initscope.train(data="moons", net="linear(8) layernorm relu linear", steps=20)
    assert "1.weight" in run.weights  # the layernorm's gain
    h = run.history
    assert "module" in h and h["module"].dtype == object
    assert any(m == "1.weight" for m in h["module"])


def test_flag_forms():
    a = initscope.train(data="moons", hidden=[8, 4], layer_init={2: "zeros"}, steps=0)
    b = initscope.train(data="moons", hidden="8,4", layer_init=["2=zeros"], steps=0)
    c = initscope.train(data="moons", hidden="8,4", layer_init="2=zeros", steps=np.int64(0))
    assert a.run_id == b.run_id == c.run_id
    assert not a.weights["2.weight"].any()
    assert initscope.train(data="moons", arch=[2, 8, 2], steps=2).config["arch"] == [2, 8, 2]
    assert initscope.train(data="moons", hidden=[], steps=2).config["arch"] == [2, 2]


def test_zero_steps_and_divergence():
    assert initscope.train(data="moons", steps=0).summary["steps"] == 0
    s = initscope.train(data="moons", act="relu", lr=1e30, steps=50).summary
    assert s["status"] == "diverged"


def test_warnings_as_the_cli_prints_them():
    with pytest.warns(UserWarning, match="--momentum has no effect with --optim adam"):
        initscope.train(data="moons", optim="adam", momentum=0.5, steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        initscope.train(data=blobs(), task="classification", steps=2)  # --task applies to arrays


# ---------------------------------------------------------------- the same as the CLI


def test_save_equals_cli_run_directory(tmp_path):
    flags = dict(data="moons", optim="adam", lr=0.01, steps=60, seed=3, dropout=0.1)
    run = initscope.train(**flags)
    written = run.save(tmp_path / "py")
    cli("train", "--data", "moons", "--optim", "adam", "--lr", "0.01", "--steps", "60",
        "--seed", "3", "--dropout", "0.1", "--quiet", "--out", tmp_path / "cli")
    py_files = sorted(p.name for p in (tmp_path / "py").iterdir())
    assert py_files == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert sorted(written) == py_files
    for name in ["config.json", "metrics.csv", "weights.safetensors", "histograms.json"]:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    py_summary = json.loads((tmp_path / "py" / "summary.json").read_text())
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert without_timing(py_summary) == without_timing(cli_summary)
    assert run.run_id == cli_summary["run_id"]
    assert without_timing(run.summary) == without_timing(cli_summary)
    assert_same_weights(run.weights, read_safetensors(tmp_path / "cli" / "weights.safetensors"))


def test_save_refusal_rules(tmp_path):
    run = initscope.train(data="moons", steps=5)
    out = tmp_path / "run"
    run.save(out)
    with pytest.raises(ValueError) as e:
        run.save(out)
    p = cli("train", "--data", "moons", "--steps", "5", "--quiet", "--out", out, check=False)
    assert str(e.value) == p.stderr.strip().removeprefix("initscope: error: ")
    run.save(out, force=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files initscope did not write"):
        run.save(other, force=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_arrays_equal_npy_files_through_the_cli(tmp_path):
    X, y = blobs(150, 4, seed=5)
    X = X.astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    run = initscope.train(data=(X, y), steps=50, seed=2, batch=16, test_fraction=0.3)
    cli("train", "--data", f"npy:{tmp_path / 'X.npy'},{tmp_path / 'y.npy'}", "--steps", "50",
        "--seed", "2", "--batch", "16", "--test-fraction", "0.3", "--quiet", "--out", tmp_path / "cli")
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    mine = without_timing(run.summary)
    theirs = without_timing(cli_summary)
    assert mine.pop("run_id") != theirs.pop("run_id")  # the data spec differs, the numbers do not
    assert mine == theirs
    assert_same_weights(run.weights, read_safetensors(tmp_path / "cli" / "weights.safetensors"))


# ---------------------------------------------------------------- arrays in


def test_dtypes_give_the_same_run():
    X, y = blobs()
    runs = [
        initscope.train(data=(X.astype(dt), y.astype(yt)), **FAST)
        for dt, yt in [(np.float32, np.int64), (np.float64, np.int64), (np.uint8, np.int64),
                       (np.int64, np.int32), (np.int16, np.uint8), (np.float16, np.int64)]
    ]
    for r in runs[1:]:
        assert r.run_id == runs[0].run_id
        assert_same_weights(r.weights, runs[0].weights)
    assert runs[0].config["data"].startswith("arrays:")
    assert runs[0].summary["verdict"] in ("full", "partial")


def test_layouts_give_the_same_run():
    X, y = blobs(n=100, d=4)
    X = X.astype(np.float32)
    base = initscope.train(data=(X, y), **FAST)
    wide = np.zeros((200, 9), dtype=np.float32)
    wide[::2, 1::2] = X
    views = [
        np.asfortranarray(X),
        wide[::2, 1::2],  # strided rows and columns
        np.ascontiguousarray(X[::-1])[::-1],  # a negative row stride
        np.ascontiguousarray(X.T).T,  # Fortran order through a transpose
    ]
    for v in views:
        assert not v.flags.c_contiguous
        np.testing.assert_array_equal(v, X)
        r = initscope.train(data=(v, y), **FAST)
        assert r.run_id == base.run_id
        assert_same_weights(r.weights, base.weights)
    yv = np.repeat(y, 2)[::2]
    assert initscope.train(data=(X, yv), **FAST).run_id == base.run_id


def test_arrays_are_read_not_changed():
    X, y = blobs(n=100, d=4)
    X32 = X.astype(np.float32)
    wide = np.zeros((200, 9), dtype=np.float32)
    wide[::2, 1::2] = X32
    inputs = [
        (X32, {}),  # borrowed in place
        (X, dict(precision="f64")),  # borrowed in place
        (X, {}),  # converted once
        (X.astype(np.uint8), {}),
        (np.asfortranarray(X32), {}),
        (wide[::2, 1::2], {}),
        (X32, dict(standardize=True)),  # standardizing copies, never in place
        (X, dict(precision="f64", standardize=True, val_fraction=0.2)),
    ]
    for a, flags in inputs:
        before, writeable = a.copy(), a.flags.writeable
        initscope.train(data=(a, y), **FAST, **flags)
        np.testing.assert_array_equal(a, before)
        assert a.flags.writeable == writeable
    # A read-only array is borrowed as well, and gives the same run.
    ro = X32.copy()
    ro.setflags(write=False)
    assert initscope.train(data=(ro, y), **FAST).run_id == initscope.train(data=(X32, y), **FAST).run_id


def test_fashion_mnist_float32_adds_no_copy():
    """Fashion-MNIST's 60000 training images as a float32 C-contiguous array: the call adds
    the training's own memory, not a copy of X (179 MiB); as uint8 it adds one float32
    conversion, not two. Peak RSS from scripts/python-memory.py (a process per measurement)."""
    script = ROOT / "scripts" / "python-memory.py"
    args = [sys.executable, str(script), "--modes", "f32,u8", "--json"]
    if BIN.is_file():
        args += ["--cli", str(BIN)]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode == 3:
        if os.environ.get("INITSCOPE_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"Fashion-MNIST is required: {p.stderr.strip()}")
        pytest.skip(f"Fashion-MNIST is not installed: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    f32, u8 = r["f32"], r["u8"]
    x_bytes = f32["array_bytes"]
    assert x_bytes == 60000 * 784 * 4
    added = f32["added_kib"] * 1024
    # A copy of X would add at least x_bytes; the training itself needs a few MiB.
    assert added < 0.15 * x_bytes, f"the call added {added / 2**20:.0f} MiB"
    # uint8 pixels are converted once: a float32 buffer the size of X, and not a second one.
    converted = u8["added_kib"] * 1024
    assert x_bytes <= converted < 1.15 * x_bytes + added, converted
    if "cli" in r:
        # The call needs no more beyond X than the command line needs beyond its data.
        assert added <= r["cli"]["beyond_data_kib"] * 1024 + 16 * 2**20, (added, r["cli"])


def test_arrays_f64_precision_and_regression():
    X, _ = blobs(80, 2)
    Y = np.stack([X[:, 0] * 0.5 - 1.0, X[:, 1] * 0.25], axis=1)
    run = initscope.train(data=(X, Y), precision="f64", steps=30)
    assert run.config["loss"] == "mse" and run.config["arch"][-1] == 2
    assert run.weights["0.weight"].dtype == np.float64
    assert run.summary["test_acc"] is None


def test_image_shaped_arrays_are_flattened():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=(60, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, size=60)
    run = initscope.train(data=(X, y), steps=5)
    assert run.config["arch"][0] == 16 and run.config["arch"][-1] == 3


def test_split_rules_follow_the_flags():
    X, y = blobs(100)
    assert initscope.train(data=(X, y), steps=0).summary["test_acc"] is not None
    a = initscope.train(data=(X, y), steps=5, test_fraction=0.5)
    b = initscope.train(data=(X, y), steps=5)
    assert a.run_id != b.run_id
    with pytest.raises(ValueError, match="--test-fraction: leaves no test rows out of 3"):
        initscope.train(data=(X[:3], y[:3]), steps=5)
    assert initscope.train(data=(X, y), steps=2, val_fraction=0.2).summary["val_loss"] is not None


def test_arrays_differ_run_id_differs():
    X, y = blobs()
    X2 = X.copy()
    X2[0, 0] += 1
    assert initscope.train(data=(X, y), steps=1).run_id != initscope.train(data=(X2, y), steps=1).run_id


def test_pandas_data_frames():
    pd = pytest.importorskip("pandas")
    X, y = blobs()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    a = initscope.train(data=(df, pd.Series(y)), **FAST)
    b = initscope.train(data=(X, y), **FAST)
    assert a.run_id == b.run_id


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.zeros((0, 3)), np.zeros(0, dtype=int), r"^X: holds 0 rows$"),
        (np.zeros((5, 0)), np.zeros(5, dtype=int), r"^X: has no features \(shape \(5, 0\)\)$"),
        (np.zeros((100, 3)), np.zeros(99, dtype=int), r"^y: 99 targets for 100 feature rows$"),
        (np.array(1.0), np.zeros(1, dtype=int), r"^X: is a scalar"),
        (np.zeros((4, 2), dtype=complex), np.zeros(4, dtype=int), r"^X: dtype complex128 is not supported"),
        (np.array([["a", "b"]] * 4), np.zeros(4, dtype=int), r"^X: dtype <U1 is not supported"),
    ],
)
def test_bad_arrays_are_refused(X, y, message):
    with pytest.raises(ValueError, match=message):
        initscope.train(data=(X, y), steps=1)


def test_nonfinite_values_are_refused():
    X, y = blobs()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^X: element \(3, 1\) is NaN \(NaN and Inf are not data\)$"):
        initscope.train(data=(X, y), steps=1)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"^X: element \(3, 1\) is inf"):
        initscope.train(data=(X, y), steps=1)
    Y = np.ones((len(X), 2))
    Y[7, 1] = -np.inf
    X[3, 1] = 0
    with pytest.raises(ValueError, match=r"^y: element \(7, 1\) is -inf"):
        initscope.train(data=(X, Y), steps=1)


def test_bad_labels_are_refused():
    X, y = blobs()
    yf = y.astype(float)
    yf[4] = 0.5
    with pytest.raises(ValueError, match=r"^y: row 4: label 0.5 is not a non-negative integer class index$"):
        initscope.train(data=(X, yf), task="classification", steps=1)
    assert initscope.train(data=(X, yf), steps=1).config["loss"] == "mse"  # regression, as for .npy


def test_data_argument_types():
    X, y = blobs()
    with pytest.raises(TypeError, match="data must be a spec string"):
        initscope.train(data=(X,), steps=1)
    with pytest.raises(TypeError, match="data must be a spec string"):
        initscope.train(data=X, steps=1)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "flags, argv",
    [
        (dict(lr=-1), ["--lr", "-1"]),
        (dict(init="bogus"), ["--init", "bogus"]),
        (dict(hidden="0"), ["--hidden", "0"]),
        (dict(act="nope"), ["--act", "nope"]),
        (dict(dropout=1.5), ["--dropout", "1.5"]),
        (dict(batch=0), ["--batch", "0"]),
        (dict(optim="adam", beta1=2.0), ["--optim", "adam", "--beta1", "2"]),
    ],
)
def test_errors_carry_the_cli_message(flags, argv):
    flags.setdefault("steps", 1)
    if "--steps" not in argv:
        argv = [*argv, "--steps", "1"]
    with pytest.raises(ValueError) as e:
        initscope.train(data="moons", **flags)
    assert str(e.value) == cli_error("train", "--data", "moons", *argv, "--quiet")


def test_data_spec_errors():
    with pytest.raises(ValueError, match=r"^--data 'nonsense': unknown dataset 'nonsense'"):
        initscope.train(data="nonsense")
    with pytest.raises(ValueError, match=r"cannot load them"):
        initscope.train(data="arrays:0123456789abcdef")
    with pytest.raises(OSError, match="missing.npy"):
        initscope.train(data="npy:missing.npy,y.npy")


def test_flag_names_and_types():
    assert {"net", "hidden", "act", "init", "bias_init", "layer_init", "optim", "lr", "steps",
            "epochs", "batch", "seed", "precision", "dropout", "grad_noise"} <= set(initscope.FLAGS)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'lrr' \(did you mean 'lr'\?\)"):
        initscope.train(lrr=0.1)
    with pytest.raises(ValueError, match=r"^--steps: invalid type: string \"many\", expected i64"):
        initscope.train(steps="many")
    with pytest.raises(ValueError, match=r"^--seed: must be >= 0, got -1$"):
        initscope.train(seed=-1, steps=1)


# ---------------------------------------------------------------- explain


def test_explain_zero_init_is_dead():
    ex = initscope.explain(data="xor", hidden="3", init="zeros", batch="full")
    assert ex.verdict == "dead" and ex.learning == "stalled"
    assert [layer["wake_step"] for layer in ex.layers] == [None, None]
    assert ex.widths == {"init": [2, 1, 2], "end": [2, 1, 2]}
    assert "VERDICT: dead" in ex.text and "ZERO: W_2 = 0" in ex.text
    assert ex._repr_markdown_() == ex.markdown and "$" in ex.markdown
    assert ex.json["verdict"] == "dead" and ex.tensors == []
    assert ex.run.summary["steps"] == 200 and ex.run.run_id == ex.run_id
    assert "dead" in repr(ex)


def test_explain_default_init_is_full():
    ex = initscope.explain(data="moons")
    assert ex.verdict == "full" and ex.learning == "learned"
    assert all(layer["grad_state"] == "alive" for layer in ex.layers)


def test_explain_constant_is_symmetric_and_arrays_work():
    ex = initscope.explain(data=blobs(), init="constant:0.5", steps=50)
    assert ex.verdict == "symmetric"
    assert ex.widths["init"][1:-1] == [1, 1]


def test_explain_net_has_tensors():
    ex = initscope.explain(data="moons", net="linear(8) relu res(layernorm linear(8) gate(0)) linear",
                           steps=20)
    assert ex.tensors and all({"name", "wake_predicted", "wake_measured"} <= set(t) for t in ex.tensors)


def test_explain_equals_cli_json():
    ex = initscope.explain(data="xor", hidden="3", init="zeros", batch="full")
    out = cli("explain", "--data", "xor", "--hidden", "3", "--init", "zeros", "--batch", "full", "--json")
    assert ex.json == json.loads(out.stdout)
    text = cli("explain", "--data", "xor", "--hidden", "3", "--init", "zeros", "--batch", "full")
    assert ex.text.strip() == text.stdout.strip()


# ---------------------------------------------------------------- init_tensor


def test_init_tensor_statistics():
    z = initscope.init_tensor("zeros", (4, 3))
    assert z.shape == (4, 3) and z.dtype == np.float64 and not z.any()
    w = initscope.init_tensor("kaiming_normal", (256, 256), seed=1)
    assert abs(w.std() / np.sqrt(2 / 256) - 1) < 0.03 and abs(w.mean()) < 0.01
    q = initscope.init_tensor("orthogonal", (32, 64))
    np.testing.assert_allclose(q @ q.T, np.eye(32), atol=1e-12)
    u = initscope.init_tensor("pytorch", (100,), fan_in=25)
    assert u.shape == (100,) and np.abs(u).max() <= 0.2 and np.abs(u).max() > 0.15
    assert not np.array_equal(w, initscope.init_tensor("kaiming_normal", (256, 256), seed=2))


def test_init_tensor_equals_the_runs_draw():
    run = initscope.train(data="moons", init="kaiming_normal", act="relu", steps=0, precision="f64")
    w = initscope.init_tensor("kaiming_normal", (16, 2), act="relu")
    assert w.tobytes() == run.weights["0.weight"].tobytes()
    w2 = initscope.init_tensor("kaiming_normal", (16, 16), act="relu", layer=2)
    assert w2.tobytes() == run.weights["2.weight"].tobytes()
    pt = initscope.train(data="moons", steps=0, seed=4)
    b = initscope.init_tensor("pytorch", (16,), fan_in=2, seed=4)
    assert b.astype(np.float32).tobytes() == pt.weights["0.bias"].tobytes()


def test_init_tensor_errors():
    with pytest.raises(ValueError, match=r"^init_tensor 'bogus': unknown initializer"):
        initscope.init_tensor("bogus", (2, 2))
    with pytest.raises(ValueError, match="needs its layer's fan_in"):
        initscope.init_tensor("zeros", (3,))
    with pytest.raises(ValueError, match="needs a weight matrix"):
        initscope.init_tensor("orthogonal", (3,), fan_in=2)
    with pytest.raises(ValueError, match="neither a weight"):
        initscope.init_tensor("zeros", (2, 2, 2))
    with pytest.raises(ValueError, match="shape: must be at least 1, got 0"):
        initscope.init_tensor("zeros", (0, 2))
    with pytest.raises(ValueError, match="seed: must be >= 0"):
        initscope.init_tensor("zeros", (2, 2), seed=-1)
    with pytest.raises(ValueError, match="shape"):
        initscope.init_tensor("zeros", (1 << 40, 1 << 20))
    with pytest.raises(TypeError):
        initscope.init_tensor("zeros", (2, 2), seed=1.5)


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_raises_keyboard_interrupt_promptly():
    code = textwrap.dedent(
        """
        import sys, initscope
        print("ready", flush=True)
        try:
            initscope.train(data="moons", steps=10**9, eval_every=10**8, diagnostics="off")
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        print("finished", flush=True)
        sys.exit(1)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if p.poll() is None:
            p.kill()
    assert out.strip() == "interrupted" and p.returncode == 0
    assert took < 2.0, f"KeyboardInterrupt took {took:.2f} s"


# ---------------------------------------------------------------- the README


def readme_python_blocks():
    """The README Python section's ```python blocks (test_torch.py runs the ones that import
    torch)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python", 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = [b for b in readme_python_blocks() if "import torch" not in b]
    assert blocks, "no Python example in the README's Python section"
    monkeypatch.chdir(tmp_path)
    scope = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)
    assert (tmp_path / "runs" / "moons-py" / "summary.json").is_file()
    assert scope["ex"].verdict == "dead" and scope["ex"].learning == "stalled"
    assert "dead stalled" in capsys.readouterr().out
    assert scope["w"].shape == (16, 2) and scope["w0"].shape == (256, 256)


def test_init_tensor_memory_is_checked_before_drawing():
    with pytest.raises(ValueError, match=r"^shape: \[1048576, 1\] needs about"):
        initscope.init_tensor("zero_hadamard", (1 << 20, 1))
    assert initscope.init_tensor("zero_hadamard", (8, 2)).shape == (8, 2)


# ---------------------------------------------------------------- reproductions


def test_reproduce_returns_the_command_lines_record():
    names = [name for name, _ in initscope.reproductions()]
    assert names[0] == "seed" and "layernorm_const" in names and "fixup2019" in names
    r = initscope.reproduce("layernorm_const")
    assert r["name"] == "layernorm_const" and r["pass"] is True
    assert r["rows"] and all(set(row) == {"quantity", "measured", "reference", "ok"} for row in r["rows"])
    # The same record as `initscope reproduce layernorm_const --json`, timing aside.
    out = json.loads(cli("reproduce", "layernorm_const", "--json").stdout)
    theirs = out[0] if isinstance(out, list) else out
    for record in (r, theirs):
        record.pop("seconds")
    assert r == theirs


def test_reproduce_refuses_an_unknown_name_with_the_list():
    with pytest.raises(ValueError, match=r"^reproduce 'nosuch': unknown reproduction; known: seed, "):
        initscope.reproduce("nosuch")


def test_data_can_be_given_positionally_or_by_keyword():
    X, y = blobs()
    by_keyword = initscope.train(data=(X, y), steps=5)
    for run in (
        initscope.train(X, y, steps=5),
        initscope.train((X, y), steps=5),
        initscope.train(None, X, y, steps=5),
    ):
        assert run.run_id == by_keyword.run_id
    assert initscope.train("moons", steps=5).run_id == initscope.train(data="moons", steps=5).run_id
    with pytest.raises(TypeError, match="not both"):
        initscope.train(None, X, y, data="moons")
    with pytest.raises(TypeError, match="give both X and y"):
        initscope.train(None, X)
    with pytest.raises(TypeError, match="PyTorch model"):
        initscope.train("moons", X, y)
