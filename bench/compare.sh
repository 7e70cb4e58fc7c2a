#!/usr/bin/env bash
# Runs initscope's `bench` and the PyTorch/JAX peers alternately, ROUNDS times (default 3), and
# prints per workload the median of each and the median ratio initscope/peer with its spread
# (min-max of the per-round ratios), so a noisy neighbour shows up as spread, not as a win.
#
#   pip install torch jax numpy        # peers only; the tests never need them
#   cargo build --release
#   bench/compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
bin=target/release/initscope
[ -x "$bin" ] || cargo build --release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  "$bin" bench --json --threads 1 | python3 -c 'import json,sys; [print(json.dumps(dict(r, peer="initscope"))) for r in json.load(sys.stdin)]' >> "$out/initscope.jsonl"
  "$bin" bench --json --workload tiny --threads "$(nproc)" | python3 -c 'import json,sys; [print(json.dumps(dict(r, peer="initscope"))) for r in json.load(sys.stdin)]' >> "$out/initscope.jsonl"
  "$bin" bench --json --workload tiny-moons --threads "$(nproc)" | python3 -c 'import json,sys; [print(json.dumps(dict(r, peer="initscope"))) for r in json.load(sys.stdin)]' >> "$out/initscope.jsonl"
  python3 bench/peers/torch_bench.py --threads "$(nproc)" >> "$out/peers.jsonl"
  python3 bench/peers/jax_bench.py --threads 1 >> "$out/peers.jsonl"
  python3 bench/peers/jax_bench.py --threads "$(nproc)" >> "$out/peers.jsonl"
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
PY
