"""Tests of initscope.meanfield against `initscope meanfield --json`.

Run by scripts/python-tests.sh; the command-line comparisons need the `initscope` binary
($INITSCOPE_BIN, by default target/debug/initscope) and are skipped without it unless
INITSCOPE_REQUIRE_CLI=1.
"""

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import initscope

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("INITSCOPE_BIN", ROOT / "target" / "debug" / "initscope"))


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
