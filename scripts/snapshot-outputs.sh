#!/usr/bin/env bash
# Writes every output of a fixed set of initscope commands into one folder, with the fields that
# measure time removed, so two builds can be compared byte for byte (a restructuring must leave
# them identical):
#
#   scripts/snapshot-outputs.sh target/release/initscope /tmp/before    # on the old commit
#   scripts/snapshot-outputs.sh target/release/initscope /tmp/after     # on the new one
#   diff -r /tmp/before /tmp/after && echo identical
#
# Timing is dropped from summary.json (wall_seconds, samples_per_second), sweep.json, reproduce's
# JSON (seconds) and the printed lines that quote speed; TensorBoard event files hold a wall time
# per event, so they are compared by size (every other byte of them follows from the metrics).
# Takes about a minute in a release build on 2 cores.
set -euo pipefail
bin=$(realpath "$1")
out=$2
rm -rf "$out"
mkdir -p "$out"
cd "$out"

# Runs a command, keeping its stdout and stderr with the speed lines normalised.
run() {
  local name=$1
  shift
  "$bin" "$@" > "$name.stdout" 2> "$name.stderr" || echo "exit $?" >> "$name.stderr"
  sed -i -E 's/[0-9.]+ s \([0-9.]+ samples\/s/T s (N samples\/s/; s/in [0-9.]+ s/in T s/g; s/[0-9.]+ runs\/s/N runs\/s/g' "$name.stdout" "$name.stderr"
}

run train-default train --out train-default
run train-f64-relu-zeros train --data xor --hidden 8,8 --act relu --init zeros --bias-init constant:0.1 --precision f64 --steps 200 --out train-f64
run train-adam-dropout train --data moons:n=300,noise=0.2 --hidden 32,32 --act gelu --optim adam --lr 0.01 --dropout 0.2 --grad-noise 1e-3 --batch 32 --epochs 3 --out train-adam
run train-sgdm-wd train --data circles --hidden 16,16,16 --act leaky_relu:0.2 --init kaiming_normal --optim nesterov --momentum 0.9 --weight-decay 1e-3 --clip-grad-norm 1 --schedule cosine --warmup 10 --steps 300 --out train-sgdm
run train-teacher train --data teacher --hidden 16 --act softplus --loss mse --init orthogonal --precision f64 --steps 100 --jacobian-end --out train-teacher
run train-lsuv train --data mnist1d:n=600 --hidden 32,32 --act tanh --init lsuv --steps 100 --out train-lsuv
run train-rmsprop train --data blobs --hidden 12 --act selu --init lecun_normal --optim rmsprop --batch 16 --steps 120 --out train-rmsprop
run train-adamw train --data spirals --hidden 24,24 --act silu --optim adamw --weight-decay 0.01 --steps 150 --precision f64 --out train-adamw
run train-momentum train --data xor --hidden 4 --act sigmoid --init xavier_normal --optim momentum --steps 100 --no-bias --out train-momentum
run train-from train --data moons --init-from train-default/weights.safetensors --steps 50 --out train-from
run explain-tanh explain --data moons --act tanh --init zeros --steps 300
run explain-relu explain --data moons --act relu --layer-init 2=zeros --layer-bias-init 2=zeros --steps 300
run explain-sigmoid explain --data xor --act sigmoid --init constant:0.1 --bias-init constant:0.1 --precision f64 --steps 200
run gradcheck gradcheck --data moons --act gelu --hidden 5,4
run meanfield meanfield --act tanh --sigma-b2 0.05 --critical
run init-list init list
run init-show init show xavier_uniform --fan-in 100 --fan-out 50

cat > grid.toml <<'EOF'
[fixed]
data = "moons:n=128"
hidden = "8,8"
steps = 150

[axes]
init = ["zeros", "constant:0.1", "pytorch", "orthogonal"]
act = ["tanh", "relu"]
seed = [0, 1]
EOF
run sweep sweep grid.toml --out sweep --jobs 2
run report-sweep report sweep --out sweep-report.html
run report-run report train-adam --out run-report.html
run study study --quick --out study
for r in seed glorot2010 he2015 saxe2014 schoenholz2017 pennington2017 lsuv2016 zero2022 mnist1d; do
  run "reproduce-$r" reproduce "$r" --json
done

# Timing fields out, event files replaced by their sizes.
python3 - <<'EOF'
import json, os, re
for root, _, files in os.walk("."):
    for f in files:
        p = os.path.join(root, f)
        if f.startswith("events.out.tfevents"):
            size = os.path.getsize(p)
            os.remove(p)
            open(p + ".size", "w").write(f"{size}\n")
        elif f.endswith(".json") or f.endswith(".stdout"):
            text = open(p).read()
            text = re.sub(r'"(wall_seconds|samples_per_second|seconds|runs_per_second)": [0-9.eE+-]+',
                          r'"\1": T', text)
            open(p, "w").write(text)
EOF
echo "snapshot in $out: $(find . -type f | wc -l) files"
