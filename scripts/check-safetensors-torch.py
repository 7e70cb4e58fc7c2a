#!/usr/bin/env python3
"""Loads initscope's weights.safetensors into the torch.nn.Sequential its metadata describes.

Usage: check-safetensors-torch.py RUN_DIR   (needs torch and safetensors: pip install torch
safetensors; not part of CI, where torch is not installed)
Rebuilds the model with the lines stored in the file's metadata, loads the weights with
load_state_dict (strict), and checks a forward pass on a few inputs is finite.
"""
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

run_dir = sys.argv[1]
path = f"{run_dir}/weights.safetensors"
with safe_open(path, framework="pt") as f:
    meta = f.metadata()
code = meta["pytorch"].replace('load_file("weights.safetensors")', f'load_file("{path}")')
scope = {}
exec(code, scope)  # builds `model` and calls load_state_dict (strict) on it
model = scope["model"]
arch = [int(d) for d in meta["initscope_arch"].split("-")]
x = torch.randn(4, arch[0], dtype=next(model.parameters()).dtype)
y = model(x)
assert y.shape == (4, arch[-1]) and torch.isfinite(y).all()
state = load_file(path)
assert set(state) == set(model.state_dict()), (sorted(state), sorted(model.state_dict()))
print(f"torch: loaded {len(state)} tensors into {meta['initscope_arch']}; forward pass ok")
