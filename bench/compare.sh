#!/usr/bin/env bash
# Runs initscope's `bench` and the PyTorch/JAX peers alternately, ROUNDS times (default 3), and
# prints per workload the median of each and the median ratio initscope/peer with its spread
# (min-max of the per-round ratios), so a noisy neighbour shows up as spread, not as a win.
# WORKLOAD (default all) limits both sides to one workload (gemm, mlp, glorot, resmlp, tiny,
# tiny-moons, sweep: the tiny workloads through `initscope sweep`, against JAX's vmap); the JAX peer (every workload but gemm: the single-net ones jit the whole SGD step,
# the tiny ones vmap the training over runs) is skipped when jax is not importable. PYTHON picks
# the interpreter the peers run under (one with torch and jax), or TORCH_PYTHON and JAX_PYTHON
# each peer's. The last table gives each workload's ratio against its strongest peer.
#
#   pip install torch jax numpy        # peers only; the tests never need them
#   cargo build --release
#   [PYTHON=venv/bin/python] bench/compare.sh [ROUNDS] [WORKLOAD]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
workload="${2:-all}"
py="${PYTHON:-python3}"
torch_py="${TORCH_PYTHON:-$py}"
jax_py="${JAX_PYTHON:-$py}"
bin=target/release/initscope
[ -x "$bin" ] || cargo build --release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
: > "$out/initscope.jsonl"
: > "$out/peers.jsonl"
tag() { python3 -c 'import json,sys; [print(json.dumps(dict(r, peer="initscope"))) for r in json.load(sys.stdin)]'; }
jax=0
case "$workload" in gemm) ;; *) "$jax_py" -c 'import jax' 2>/dev/null && jax=1 || echo "jax not importable: JAX peer skipped" >&2 ;; esac
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  "$bin" bench --json --workload "$workload" --threads 1 | tag >> "$out/initscope.jsonl"
  for w in tiny tiny-moons sweep; do
    case "$workload" in all|"$w") "$bin" bench --json --workload "$w" --threads "$(nproc)" | tag >> "$out/initscope.jsonl" ;; esac
  done
  case "$workload" in gemm|sweep) ;; *) "$torch_py" bench/peers/torch_bench.py --workload "$workload" --threads "$(nproc)" >> "$out/peers.jsonl" ;; esac
  if [ "$jax" = 1 ]; then
    # One core for the single-net workloads, as initscope's --threads 1 (XLA's CPU client
    # otherwise spreads a step over every core).
    taskset -c 0 "$jax_py" bench/peers/jax_bench.py --workload "$workload" --threads 1 >> "$out/peers.jsonl"
    for w in tiny tiny-moons sweep; do
      case "$workload" in all|"$w") "$jax_py" bench/peers/jax_bench.py --workload "$w" --threads "$(nproc)" >> "$out/peers.jsonl" ;; esac
    done
  fi
done
python3 - "$out" <<'PY'
import collections, json, statistics, sys
d = sys.argv[1]
rows = [json.loads(l) for f in ("initscope.jsonl", "peers.jsonl") for l in open(f"{d}/{f}")]
# Round by round: the k-th figure of each (workload, threads, peer) series.
series = collections.defaultdict(list)
for r in rows:
    series[(r["workload"], r["threads"], r["peer"])].append(r)
print(f"{'workload':<12}{'threads':>8}  {'peer':<11}{'initscope':>12}{'peer':>12}  {'ratio (median, min-max)':<26}{'of ceiling':>10}")
for (w, t, p), peer in sorted(series.items()):
    if p == "initscope" or (w, t, "initscope") not in series:
        continue
    ours = series[(w, t, "initscope")]
    ratios = [o["value"] / q["value"] for o, q in zip(ours, peer)]
    frac = statistics.median(o.get("fraction_of_ceiling") or 0 for o in ours)
    print(f"{w:<12}{t:>8}  {p:<11}{statistics.median(o['value'] for o in ours):>12.1f}"
          f"{statistics.median(q['value'] for q in peer):>12.1f}  "
          f"{statistics.median(ratios):>6.2f}x ({min(ratios):.2f}-{max(ratios):.2f})".ljust(26 + 52)
          + f"{frac:>9.0%}")
# Against the strongest peer of each (workload, threads): the peer with the highest median.
print()
print(f"{'workload':<12}{'threads':>8}  {'best peer':<11}{'ratio (median, min-max)':<26}")
best = {}
for (w, t, p), peer in series.items():
    if p == "initscope" or (w, t, "initscope") not in series:
        continue
    m = statistics.median(q["value"] for q in peer)
    if (w, t) not in best or m > best[(w, t)][0]:
        best[(w, t)] = (m, p, peer)
for (w, t), (_, p, peer) in sorted(best.items()):
    ours = series[(w, t, "initscope")]
    ratios = [o["value"] / q["value"] for o, q in zip(ours, peer)]
    print(f"{w:<12}{t:>8}  {p:<11}{statistics.median(ratios):>6.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
PY
