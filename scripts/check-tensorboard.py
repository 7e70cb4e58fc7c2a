#!/usr/bin/env python3
"""Reads initscope's TensorBoard event files with TensorBoard's own EventAccumulator.

Usage: check-tensorboard.py RUN_DIR
Checks that the scalars (losses, accuracies, per-layer diagnostics) and the weight/gradient
histograms written by `initscope train --out RUN_DIR` are read back with their values, and that
the hyperparameters are there for the HParams tab (the hparams plugin's session start info, with
the config's main fields and the run id as the session group). Needs the
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

# The hyperparameters, as TensorBoard's HParams tab reads them: the session start info of the
# hparams plugin (tensorboard.plugins.hparams), with the config's main fields.
import json

from tensorboard.plugins.hparams import metadata as hparams_metadata

contents = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
assert hparams_metadata.SESSION_START_INFO_TAG in contents, f"no hparams session start; have {sorted(contents)}"
start = hparams_metadata.parse_session_start_info_plugin_data(
    contents[hparams_metadata.SESSION_START_INFO_TAG]
)
with open(f"{run_dir}/config.json") as f:
    config = json.load(f)
with open(f"{run_dir}/summary.json") as f:
    summary = json.load(f)
hp = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
for want in ["data", "arch", "act", "init", "bias_init", "loss", "optim", "lr", "batch", "steps", "seed", "precision"]:
    assert want in hp, f"hparam {want} missing; have {sorted(hp)}"
assert hp["lr"] == config["optim"]["lr"], (hp["lr"], config["optim"]["lr"])
assert hp["arch"] == "-".join(str(d) for d in config["arch"]), hp["arch"]
assert hp["seed"] == config["seed"] and hp["steps"] == config["steps"], hp
assert start.group_name == summary["run_id"], (start.group_name, summary["run_id"])
print(f"tensorboard: hparams {', '.join(f'{k}={v}' for k, v in sorted(hp.items()))}")
