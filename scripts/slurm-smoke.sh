#!/usr/bin/env bash
# Slurm smoke test: a single-node Slurm cluster on this machine runs a 4-task array sweep plus
# the afterany merge job printed by `initscope slurm`; the merged runs.csv must equal a local
# sweep's. Needs root (it installs slurm-wlm and munge from Debian when missing, and runs the
# daemons as root with proctrack/linuxproc, task/none and no cgroups). Every daemon it starts is
# stopped by pid on exit.
#   scripts/slurm-smoke.sh [PATH_TO_INITSCOPE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/initscope}
[ -x "$bin" ] || { echo "slurm-smoke: $bin not built (cargo build --release)"; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/initscope-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for f in "$work"/slurmd.pid "$work"/slurmctld.pid "$work"/munge/munged.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for f in "$work"/slurmd.pid "$work"/slurmctld.pid "$work"/munge/munged.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
}
trap cleanup EXIT

# munge, with its own key, socket and pid file under $work.
mkdir -p "$work/munge"
chown munge:munge "$work/munge" 2>/dev/null || true
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$work/munge/munge.key" 2>/dev/null || true
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
export MUNGE_SOCKET="$socket"

host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<CONF
ClusterName=initscope-smoke
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$socket
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=smoke Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Wait for the node.
for _ in $(seq 1 60); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  case "$state" in idle*|mix*|alloc*) break ;; esac
  sleep 1
done
sinfo -h -o "%P %t %D" | grep -qE "idle|mix" || { echo "slurm-smoke: node not ready"; tail -n 20 "$work"/slurm*.log; exit 1; }

cat > "$work/grid.toml" <<'GRID'
[fixed]
data = "moons:n=128"
hidden = "8,8"
steps = 100
diagnostics = "off"
[axes]
init = ["zeros", "constant:0.1", "pytorch"]
act = ["tanh", "relu"]
seed = [0, 1]
GRID

"$bin" slurm "$work/grid.toml" --out "$work/cluster" --shards 4 --cpus 1 --time 00:10:00 > "$work/submit.sh"
bash "$work/submit.sh"

# Poll the queue (not sbatch --wait) until every job is gone.
for _ in $(seq 1 300); do
  [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -o %i)" ] || { echo "slurm-smoke: jobs still queued"; squeue; exit 1; }

"$bin" sweep "$work/grid.toml" --out "$work/local" --quiet > /dev/null
if cmp -s "$work/cluster/runs.csv" "$work/local/runs.csv"; then
  echo "slurm-smoke: PASS (4-task array + merge equals the local sweep: $(($(wc -l < "$work/local/runs.csv") - 1)) runs)"
else
  echo "slurm-smoke: FAIL"; ls "$work/cluster"; cat "$work"/cluster/slurm-*.out 2>/dev/null | tail -n 20
  diff "$work/cluster/runs.csv" "$work/local/runs.csv" | head || true
  exit 1
fi
