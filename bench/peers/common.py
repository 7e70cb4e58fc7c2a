"""Shared pieces of the peer benchmarks: workloads, data and FLOP counts, as in initscope's
`bench` module (crates/initscope/src/bench.rs), so that the JSON lines compare one to one."""

import gzip
import json
import math
import os

import numpy as np

LR = 0.1
BATCH = 128

MLP = dict(dims=[784, 256, 256, 10], act="relu", warmup=20, steps=200)
GLOROT = dict(dims=[784, 1000, 1000, 1000, 1000, 1000, 10], act="tanh", warmup=5, steps=40)
# 784 -> linear(256) relu res(layernorm linear(256) relu linear(256))*4 linear(10)
RESMLP = dict(inputs=784, width=256, blocks=4, outputs=10, warmup=10, steps=100)
TINY_DIMS = [2, 16, 16, 1]
TINY_STEPS = 1000
TINY_RUNS = 200


def step_flops(dims, batch):
    """FLOPs of one SGD step: forward, weight gradients, input gradients (none for layer 1)."""
    total = 0.0
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        total += 2.0 * batch * a * b * (2.0 if i == 0 else 3.0)
    return total


def linear_step_flops(shapes, batch):
    """FLOPs of one SGD step of a network whose linear layers are `shapes` [(fan_in, fan_out)]
    in forward order: the same three GEMMs per layer as step_flops (none for the norms)."""
    total = 0.0
    for i, (a, b) in enumerate(shapes):
        total += 2.0 * batch * a * b * (2.0 if i == 0 else 3.0)
    return total


def resmlp_linears(spec=RESMLP):
    w = spec["width"]
    return [(spec["inputs"], w)] + [(w, w)] * (2 * spec["blocks"]) + [(w, spec["outputs"])]


def image_inputs(rows):
    """Fashion-MNIST training images as f32 in [0, 1] when installed, else seeded U[0, 1)."""
    base = "/usr/share/datasets/fashion-mnist"
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        path = os.path.join(base, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)[:rows]
            with opener(path.replace("images-idx3", "labels-idx1"), "rb") as f:
                y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:rows]
            return x.astype(np.float32) / 255.0, y.astype(np.int64)
    rng = np.random.default_rng(0)
    return rng.random((rows, 784), dtype=np.float32), np.arange(rows) % 10


def xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    return x, y


def moons(n=256, noise=0.1, seed=0):
    """Two interleaving half circles (the shape of initscope's `moons:n=256`; the exact points
    do not matter for speed)."""
    rng = np.random.default_rng(seed)
    a = n // 2
    t_out = np.linspace(0, math.pi, a)
    t_in = np.linspace(0, math.pi, n - a)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)]
    )
    x += rng.normal(0, noise, x.shape)
    y = np.concatenate([np.zeros(a), np.ones(n - a)])
    return x.astype(np.float32), y.astype(np.float32)


def report(workload, unit, value, gflops, threads, seconds, peer, **extra):
    out = dict(workload=workload, unit=unit, value=value, gflops=gflops, threads=threads,
               seconds=seconds, peer=peer)
    out.update(extra)
    print(json.dumps(out), flush=True)
