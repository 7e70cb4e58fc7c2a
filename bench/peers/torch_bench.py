"""PyTorch peer of `initscope bench`: same workloads, one JSON object per line.

    python3 bench/peers/torch_bench.py [--workload mlp|glorot|resmlp|tiny|tiny-moons|all] [--threads N]

CPU only, torch.set_num_threads(1) for single-run workloads (as initscope). `tiny` is run twice:
a plain per-run Python loop (200 runs would take minutes, so it times 10 and reports runs/s) and
a batched version with every run's weights stacked and bmm (vmap by hand)."""

import argparse
import time

import numpy as np
import torch
import torch.nn as nn

import common


class Res(nn.Module):
    """y = x + body(x), the body an nn.Sequential (initscope's res(...))."""

    def __init__(self, *body):
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return x + self.body(x)


def resmlp(spec):
    """784 -> linear(256) relu res(layernorm linear(256) relu linear(256))*4 linear(10)."""
    w = spec["width"]
    blocks = [Res(nn.LayerNorm(w), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, w))
              for _ in range(spec["blocks"])]
    return nn.Sequential(nn.Linear(spec["inputs"], w), nn.ReLU(), *blocks,
                         nn.Linear(w, spec["outputs"]))


def mlp_net(spec):
    dims = spec["dims"]
    act = nn.ReLU if spec["act"] == "relu" else nn.Tanh
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def mlp_like(spec, net=None, flops_step=None):
    """Plain SGD on Fashion-MNIST-shaped batches: samples/s, GFLOP/s and seconds."""
    torch.set_num_threads(1)
    if net is None:
        net = mlp_net(spec)
        flops_step = common.step_flops(spec["dims"], common.BATCH)
    opt = torch.optim.SGD(net.parameters(), lr=common.LR)
    loss_fn = nn.CrossEntropyLoss()
    x, y = common.image_inputs(common.BATCH * 64)
    x, y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, dtype=np.int64))
    n = x.shape[0]

    def step(s):
        idx = torch.arange(s * common.BATCH, (s + 1) * common.BATCH) % n
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()

    for s in range(spec["warmup"]):
        step(s)
    t = time.perf_counter()
    for s in range(spec["warmup"], spec["warmup"] + spec["steps"]):
        step(s)
    secs = time.perf_counter() - t
    flops = flops_step * spec["steps"]
    return common.BATCH * spec["steps"] / secs, flops / secs / 1e9, secs


def tiny_loop(x, y, runs):
    """A plain PyTorch training loop per run."""
    torch.set_num_threads(1)
    x, y = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    t = time.perf_counter()
    for seed in range(runs):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
        opt = torch.optim.SGD(net.parameters(), lr=common.LR)
        for _ in range(common.TINY_STEPS):
            opt.zero_grad(set_to_none=True)
            loss = ((net(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
    return time.perf_counter() - t


def tiny_bmm(x, y, runs, threads):
    """Every run's weights stacked: (runs, out, in) tensors, bmm forward, autograd backward."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    dims = common.TINY_DIMS
    t = time.perf_counter()
    params = []
    for a, b in zip(dims[:-1], dims[1:]):
        bound = 1.0 / a ** 0.5  # nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        params.append(((torch.rand(runs, a, b, generator=g) * 2 - 1) * bound).requires_grad_())
        params.append(((torch.rand(runs, 1, b, generator=g) * 2 - 1) * bound).requires_grad_())
    opt = torch.optim.SGD(params, lr=common.LR)
    xb = torch.from_numpy(x).expand(runs, *x.shape)
    yb = torch.from_numpy(y).reshape(1, -1, 1)
    for _ in range(common.TINY_STEPS):
        opt.zero_grad(set_to_none=True)
        h = xb
        for i in range(0, len(params), 2):
            h = torch.baddbmm(params[i + 1], h, params[i])
            if i + 2 < len(params):
                h = torch.tanh(h)
        # Sum over runs of each run's mean loss: each run's gradient is its own.
        loss = ((h - yb) ** 2).mean(dim=(1, 2)).sum()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def tiny(moons, threads):
    x, y = common.moons() if moons else common.xor()
    name = "tiny-moons" if moons else "tiny"
    dims, n = common.TINY_DIMS, x.shape[0]
    flops_run = common.step_flops(dims, n) * common.TINY_STEPS
    loop_runs = 10 if not moons else 3
    secs = tiny_loop(x, y, loop_runs)
    common.report(name, "runs/s", loop_runs / secs, flops_run * loop_runs / secs / 1e9, 1, secs,
                  "torch-loop")
    for th in sorted({1, threads}):
        secs = tiny_bmm(x, y, common.TINY_RUNS, th)
        common.report(name, "runs/s", common.TINY_RUNS / secs,
                      flops_run * common.TINY_RUNS / secs / 1e9, th, secs, "torch-bmm")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", default="all")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args()
    w = a.workload
    if w in ("mlp", "all"):
        v, g, s = mlp_like(common.MLP)
        common.report("mlp", "samples/s", v, g, 1, s, "torch")
    if w in ("glorot", "all"):
        v, g, s = mlp_like(common.GLOROT)
        common.report("glorot", "samples/s", v, g, 1, s, "torch")
    if w in ("resmlp", "all"):
        torch.manual_seed(0)
        flops = common.linear_step_flops(common.resmlp_linears(), common.BATCH)
        v, g, s = mlp_like(common.RESMLP, resmlp(common.RESMLP), flops)
        common.report("resmlp", "samples/s", v, g, 1, s, "torch")
    if w in ("tiny", "all"):
        tiny(False, a.threads)
    if w in ("tiny-moons", "all"):
        tiny(True, a.threads)


if __name__ == "__main__":
    main()
