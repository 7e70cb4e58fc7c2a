"""Tests of initscope.meanfield against `initscope meanfield --json`, and of the wide history
(Run.history_wide, Run.history_frame(wide=True)) against the long form and metrics.csv.

Run by scripts/python-tests.sh; the command-line comparisons need the `initscope` binary
($INITSCOPE_BIN, by default target/debug/initscope) and are skipped without it unless
INITSCOPE_REQUIRE_CLI=1.
"""

import csv
import json
import math

import numpy as np
import pytest

import initscope

from test_api import cli, cli_error


def argv(kwargs):
    """Keyword arguments as `initscope meanfield` flags."""
    out = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False:
            out += [flag, str(value)]
    return out


# ---------------------------------------------------------------- meanfield


CASES = [
    # tanh at criticality (sigma_w^2 = 1, sigma_b^2 = 0), with the critical line.
    dict(act="tanh", sigma_w2=1.0, critical=True),
    # The critical point alone, for a bias variance.
    dict(act="tanh", sigma_b2=0.05, critical=True),
    # relu: ordered, critical (He), and beyond (no fixed point).
    dict(act="relu", sigma_w2=1.0, sigma_b2=0.1),
    dict(act="relu", sigma_w2=2.0),
    dict(act="relu", sigma_w2=2.5),
    dict(act="gelu", sigma_w2=3.0, sigma_b2=0.1, nodes=50),
    # No critical point at all: only the note.
    dict(act="tanh", sigma_b2=1e6, critical=True),
    # Residual streams: exponential (relu) and polynomial (tanh) growth, a linear branch.
    dict(act="relu", sigma_w2=2.0, residual=True, gate=0.5, depth=12),
    dict(act="tanh", sigma_w2=1.0, sigma_b2=0.05, residual=True, depth=200),
    dict(act="selu", sigma_w2=1.0, residual=True, branch_depth=1, depth=30, q0=2.0, c0=-0.3),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: " ".join(argv(k)))
def test_meanfield_equals_the_command_lines_record(kwargs):
    expected = json.loads(cli("meanfield", *argv(kwargs), "--json").stdout)
    assert initscope.meanfield(**kwargs) == expected


def test_meanfield_tanh_at_criticality():
    mf = initscope.meanfield(act="tanh", sigma_w2=1.0, critical=True)
    assert mf["activation"] == "tanh" and mf["q_star"] == 0.0
    assert abs(mf["chi_1"] - 1.0) < 1e-9
    assert abs(mf["sigma_w2_critical"] - 1.0) < 1e-6
    # The depth scales diverge at the edge of chaos (null in the JSON where exactly infinite).
    assert mf["c_star"] is None and mf["xi_q"] > 1e6 and mf["xi_c"] > 1e6
    assert any("edge of chaos" in n for n in mf["notes"])


def test_meanfield_relu_phases():
    assert initscope.meanfield(act="relu", sigma_w2=2.5)["q_star"] is None
    ordered = initscope.meanfield(act="relu", sigma_w2=1.0, sigma_b2=0.1)
    assert ordered["chi_1"] < 1 and math.isfinite(ordered["xi_c"])
    # NumPy scalars and ints are numbers too.
    assert initscope.meanfield(act="relu", sigma_w2=np.float32(1.0), sigma_b2=0.1, nodes=np.int64(100)) == ordered


def test_meanfield_residual_record():
    mf = initscope.meanfield(act="relu", sigma_w2=2.0, residual=True, gate=0.5, depth=12)
    assert len(mf["q"]) == len(mf["c"]) == 13
    np.testing.assert_allclose(mf["q"], 1.5 ** np.arange(13), rtol=1e-12)
    assert mf["growth"]["class"] == "exponential"
    assert mf["branch_depth"] == 2 and mf["gate"] == 0.5 and mf["depth"] == 12


BAD = [
    dict(act="tanh", sigma_b2=0.05),
    dict(act="relu", sigma_w2=-1),
    dict(act="relu", sigma_w2=float("nan")),
    dict(act="relu", sigma_w2=1, sigma_b2=-0.5),
    dict(act="relu", sigma_w2=1, nodes=4),
    dict(act="tanh", sigma_w2=1, nodes=500),
    dict(act="nope", sigma_w2=1),
    dict(act="tanh", residual=True),
    dict(act="tanh", residual=True, sigma_w2=1, critical=True),
    dict(act="tanh", residual=True, sigma_w2=1, branch_depth=0),
    dict(act="tanh", residual=True, sigma_w2=1, c0=2),
    dict(act="tanh", residual=True, sigma_w2=1, q0=0),
    dict(act="tanh", residual=True, sigma_w2=1, gate=float("inf")),
    dict(act="tanh", residual=True, sigma_w2=1, depth=0),
    dict(act="tanh", residual=True, sigma_w2=1, depth=20000),
]


@pytest.mark.parametrize("kwargs", BAD, ids=lambda k: " ".join(argv(k)))
def test_meanfield_errors_carry_the_cli_message(kwargs):
    expected = cli_error("meanfield", *argv(kwargs))
    with pytest.raises(ValueError) as e:
        initscope.meanfield(**kwargs)
    assert str(e.value) == expected


def test_meanfield_residual_options_need_residual():
    # The command line's words (clap's), without its pointer to --help.
    expected = cli_error("meanfield", "--act", "tanh", "--sigma-w2", "1", "--gate", "0.5")
    with pytest.raises(ValueError) as e:
        initscope.meanfield(act="tanh", sigma_w2=1, gate=0.5)
    assert expected == f"{e.value} (see 'initscope meanfield --help')"
    for key in ["branch_depth", "depth", "q0", "c0"]:
        with pytest.raises(ValueError, match="--residual"):
            initscope.meanfield(act="tanh", sigma_w2=1, **{key: 1})


def test_meanfield_negative_counts_and_wrong_types():
    with pytest.raises(ValueError, match=r"^--nodes: must be in 8\.\.=400, got -1$"):
        initscope.meanfield(sigma_w2=1, nodes=-1)
    with pytest.raises(ValueError, match=r"^--depth: must be in 1\.\.=10000, got -3$"):
        initscope.meanfield(sigma_w2=1, residual=True, depth=-3)
    with pytest.raises(TypeError):
        initscope.meanfield(sigma_w2=1, nodes=10.5)
    with pytest.raises(TypeError):
        initscope.meanfield(sigma_w2=1, sigma=1)


# ---------------------------------------------------------------- wide history


def tag(metric, layer, module):
    """TensorBoard's name of a series (the run directory's event file)."""
    if module:
        return f"{module}/{metric}"
    if layer == layer and layer is not None and layer != "":  # not NaN, not empty
        return f"layer{int(float(layer))}/{metric}"
    return metric


def assert_wide_matches_long(wide, steps, metrics, layers, modules, values):
    assert wide["step"].dtype == np.int64
    assert list(wide["step"]) == sorted(set(int(s) for s in steps))
    row = {int(s): i for i, s in enumerate(wide["step"])}
    seen = {}
    for s, m, l, mod, v in zip(steps, metrics, layers, modules, values):
        name = tag(m, l, mod)
        seen.setdefault(name, set()).add(int(s))
        got = wide[name][row[int(s)]]
        assert (np.isnan(v) and np.isnan(got)) or got == v, (name, s)
    # First-appearance order, and NaN exactly where a series has no record.
    assert list(wide)[1:] == list(dict.fromkeys(tag(m, l, mod) for m, l, mod in zip(metrics, layers, modules)))
    for name, at in seen.items():
        col = wide[name]
        assert col.dtype == np.float64 and len(col) == len(wide["step"])
        missing = [i for s, i in row.items() if s not in at]
        assert np.isnan(col[missing]).all()


@pytest.mark.parametrize(
    "flags",
    [
        dict(data="moons", steps=30, eval_every=5),
        dict(data="moons", net="linear(8) layernorm relu linear", steps=20, eval_every=5),
    ],
    ids=["mlp", "net"],
)
def test_history_wide_against_long_form_and_metrics_csv(tmp_path, flags):
    run = initscope.train(**flags)
    wide = run.history_wide()
    h = run.history
    modules = h.get("module", [None] * len(h["step"]))
    assert_wide_matches_long(wide, h["step"], h["metric"], h["layer"], modules, h["value"])
    assert {"train_loss", "test_loss", "layer1/grad_norm"} <= set(wide)
    # Evaluations every 5 steps: NaN in between, values at 0, 5, 10, ...
    evaluated = ~np.isnan(wide["test_loss"])
    assert list(wide["step"][evaluated]) == list(range(0, flags["steps"] + 1, 5))
    run.save(tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert_wide_matches_long(
        wide,
        [r["step"] for r in rows],
        [r["metric"] for r in rows],
        [r["layer"] for r in rows],
        [r.get("module") or None for r in rows],
        [float(r["value"]) for r in rows],
    )
    if "net" in flags:
        assert any(name.startswith("1.weight/") for name in wide)


def test_history_wide_names_are_the_tensorboard_tags():
    # The library's own event-file tags: `layer2/grad_norm`, never `grad_norm[2]`.
    wide = initscope.train(data="moons", hidden="4,4", steps=5).history_wide()
    assert "layer2/grad_norm" in wide and "layer3/grad_norm" in wide
    assert not any("[" in name for name in wide)


def test_history_frame_wide():
    pd = pytest.importorskip("pandas")
    run = initscope.train(data="moons", steps=30, eval_every=5)
    df = run.history_frame(wide=True)
    wide = run.history_wide()
    assert df.index.name == "step"
    np.testing.assert_array_equal(df.index.to_numpy(), wide["step"])
    assert list(df.columns) == [k for k in wide if k != "step"]
    for name in df.columns:
        np.testing.assert_array_equal(df[name].to_numpy(), wide[name])
    long = run.history_frame()
    pivot = long.assign(
        name=[tag(m, l, None) for m, l in zip(long["metric"], long["layer"])]
    ).pivot(index="step", columns="name", values="value")
    pd.testing.assert_frame_equal(
        df[sorted(df.columns)], pivot[sorted(pivot.columns)], check_names=False
    )
