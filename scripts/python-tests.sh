#!/usr/bin/env bash
# The Python package's tests: a fresh virtual environment, `pip install ./crates/initscope-py`
# (maturin builds the extension from this checkout, in the workspace's target directory so the
# compiled crates are reused), then pytest on crates/initscope-py/tests. pandas is installed so
# the DataFrame paths run; the command-line comparisons use the debug `initscope` binary, built
# here first. The PyTorch tests (test_torch.py) need torch: with INITSCOPE_REQUIRE_TORCH=1 (CI) it
# is installed from PyPI into the venv (large: the CUDA build, several GB) and the tests must
# run; otherwise they are skipped with a message.
#   scripts/python-tests.sh [PYTEST_ARGS...]
# PYTHON=python3.X picks the interpreter that makes the venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet -p initscope-cli
export INITSCOPE_BIN=${INITSCOPE_BIN:-$CARGO_TARGET_DIR/debug/initscope}
export INITSCOPE_REQUIRE_CLI=1

venv=$(mktemp -d /tmp/initscope-py.XXXXXX)
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet maturin pytest numpy pandas
if [ "${INITSCOPE_REQUIRE_TORCH:-}" = 1 ]; then
  "$venv/bin/python" -m pip install --quiet torch
fi
"$venv/bin/python" -m pip install --quiet ./crates/initscope-py
# From the tests' folder, so `import initscope` is the installed package, not the source tree.
cd crates/initscope-py/tests
"$venv/bin/python" -m pytest -q -rs "$@" test_api.py test_meanfield.py test_torch.py
