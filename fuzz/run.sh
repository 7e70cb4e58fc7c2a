#!/usr/bin/env bash
# Runs each parser fuzz target for a bounded time (default 60 s each):
#   fuzz/run.sh [SECONDS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); libFuzzer's instrumentation needs nightly
# features, which RUSTC_BOOTSTRAP=1 enables on the stable toolchain. Crashes land in
# fuzz/artifacts/<target>/ and make the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
mkdir -p corpus/idx corpus/csv corpus/npy corpus/net_spec
# Seeds: a valid file of each kind.
printf '\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02\x03\x04' > corpus/idx/seed
# (The csv target reads its first byte as options: 0x0a = label column "label", 3-byte reads.)
printf '\x0aa,b,label\n1,2,0\n3,4,1\n' > corpus/csv/seed
python3 - <<'PY' 2>/dev/null || true
import struct
h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
open("corpus/npy/seed", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<2d", 1.5, -2.0))
PY
printf 'linear(64) relu res(layernorm linear(64) relu linear(64) gate(0))*2 linear(init=[uniform:-0.1,0.1])' > corpus/net_spec/seed
status=0
for target in idx csv npy net_spec; do
  echo "== fuzzing $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 || status=1
done
exit $status
