#!/usr/bin/env python3
"""Reads initscope's TensorBoard event files with TensorBoard's own EventAccumulator.

Usage: check-tensorboard.py RUN_DIR
Checks that the scalars (losses, accuracies, per-layer diagnostics) and the weight/gradient
histograms written by `initscope train --out RUN_DIR` are read back with their values. Needs the
`tensorboard` pip package (installed by .ci/run; never a test dependency of the Rust suite).
"""
import csv
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run_dir = sys.argv[1]
acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "histograms": 0})
acc.Reload()
tags = acc.Tags()
scalars, histograms = set(tags["scalars"]), set(tags["histograms"])
for want in ["train_loss", "test_loss", "train_acc", "layer1/grad_norm", "layer2/act_std", "jacobian_sv2_mean"]:
    assert want in scalars, f"scalar {want} missing; have {sorted(scalars)[:20]}"
for want in ["layer1/weights", "layer1/grads", "layer3/weights"]:
    assert want in histograms, f"histogram {want} missing; have {sorted(histograms)}"

# Every finite value of metrics.csv is in the event file, at its step, to f32 precision.
with open(f"{run_dir}/metrics.csv") as f:
    rows = list(csv.DictReader(f))
checked = 0
for r in rows:
    v = float(r["value"])
    if not math.isfinite(v):
        continue
    tag = f"layer{r['layer']}/{r['metric']}" if r["layer"] else r["metric"]
    events = {e.step: e.value for e in acc.Scalars(tag)}
    step = int(r["step"])
    assert step in events, f"{tag} has no step {step}"
    assert abs(events[step] - v) <= 1e-6 * max(1.0, abs(v)), f"{tag}@{step}: {events[step]} vs {v}"
    checked += 1

h = acc.Histograms("layer1/weights")[0]
assert h.step == 0 and h.histogram_value.num > 0, h
print(f"tensorboard: {len(scalars)} scalar tags, {len(histograms)} histogram tags, {checked} values match metrics.csv")
