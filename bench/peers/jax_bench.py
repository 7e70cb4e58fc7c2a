"""JAX peer of `initscope bench`, one JSON object per line. The single-net workloads (mlp,
glorot, resmlp) jit the whole SGD step (forward, grad, update; parameters donated) and call it
once per step from Python, as a training loop does; the sweep workloads (tiny, tiny-moons) jit a
vmap over runs of the whole training. Compile time is reported apart (`compile_seconds`) and not
counted.

    python3 bench/peers/jax_bench.py [--workload mlp|glorot|resmlp|tiny|tiny-moons|sweep|all] [--threads N]

JAX's CPU thread count is set before import through XLA_FLAGS (one intra-op thread for
--threads 1)."""

import argparse
import os
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", default="all")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import time

    import jax
    import jax.numpy as jnp

    sys.path.insert(0, os.path.dirname(__file__))
    import common

    def init(key):
        params = []
        for i, (fi, fo) in enumerate(zip(common.TINY_DIMS[:-1], common.TINY_DIMS[1:])):
            key, kw, kb = jax.random.split(key, 3)
            bound = 1.0 / fi ** 0.5
            params.append((jax.random.uniform(kw, (fi, fo), minval=-bound, maxval=bound),
                           jax.random.uniform(kb, (fo,), minval=-bound, maxval=bound)))
        return params

    def loss(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i + 1 < len(params):
                h = jnp.tanh(h)
        return jnp.mean((h[:, 0] - y) ** 2)

    def train(key, x, y):
        params = init(key)

        def step(params, _):
            g = jax.grad(loss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, d: p - common.LR * d, params, g), None

        params, _ = jax.lax.scan(step, params, None, length=common.TINY_STEPS)
        return loss(params, x, y)

    def linear_init(key, fi, fo):
        """nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
        kw, kb = jax.random.split(key)
        bound = 1.0 / fi ** 0.5
        return (jax.random.uniform(kw, (fi, fo), minval=-bound, maxval=bound),
                jax.random.uniform(kb, (fo,), minval=-bound, maxval=bound))

    def mlp_forward(params, x, act):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i + 1 < len(params):
                h = act(h)
        return h

    def layernorm(h, g, b, eps=1e-5):
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        return (h - mu) / jnp.sqrt(var + eps) * g + b

    def resmlp_forward(params, x):
        """784 -> linear(256) relu res(layernorm linear(256) relu linear(256))*4 linear(10)."""
        (w0, b0), blocks, (wl, bl) = params
        h = jax.nn.relu(x @ w0 + b0)
        for g, beta, (w1, b1), (w2, b2) in blocks:
            u = layernorm(h, g, beta)
            h = h + jax.nn.relu(u @ w1 + b1) @ w2 + b2
        return h @ wl + bl

    def single(name, spec, params, forward, flops_step):
        """Plain SGD on Fashion-MNIST-shaped batches, the step jitted: samples/s."""
        x_all, y_all = common.image_inputs(common.BATCH * 64)
        x_all, y_all = jnp.asarray(x_all), jnp.asarray(y_all, dtype=jnp.int32)
        n = x_all.shape[0]

        def loss(params, x, y):
            logits = forward(params, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

        def step(params, s):
            start = (s * common.BATCH) % n
            x = jax.lax.dynamic_slice_in_dim(x_all, start, common.BATCH)
            y = jax.lax.dynamic_slice_in_dim(y_all, start, common.BATCH)
            g = jax.grad(loss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, d: p - common.LR * d, params, g)

        t = time.perf_counter()
        compiled = jax.jit(step, donate_argnums=0).lower(params, 0).compile()
        compile_secs = time.perf_counter() - t
        for s in range(spec["warmup"]):
            params = compiled(params, s)
        jax.block_until_ready(params)
        t = time.perf_counter()
        for s in range(spec["warmup"], spec["warmup"] + spec["steps"]):
            params = compiled(params, s)
        jax.block_until_ready(params)
        secs = time.perf_counter() - t
        flops = flops_step * spec["steps"]
        common.report(name, "samples/s", common.BATCH * spec["steps"] / secs, flops / secs / 1e9,
                      1, secs, "jax", compile_seconds=compile_secs)

    key = jax.random.PRNGKey(0)
    for name, spec in (("mlp", common.MLP), ("glorot", common.GLOROT)):
        if a.workload not in (name, "all"):
            continue
        dims = spec["dims"]
        keys = jax.random.split(key, len(dims) - 1)
        params = [linear_init(k, fi, fo) for k, fi, fo in zip(keys, dims[:-1], dims[1:])]
        act = jax.nn.relu if spec["act"] == "relu" else jnp.tanh
        single(name, spec, params, lambda p, x, act=act: mlp_forward(p, x, act),
               common.step_flops(dims, common.BATCH))
    if a.workload in ("resmlp", "all"):
        spec = common.RESMLP
        w = spec["width"]
        keys = iter(jax.random.split(key, 2 * spec["blocks"] + 2))
        params = (
            linear_init(next(keys), spec["inputs"], w),
            [(jnp.ones(w), jnp.zeros(w), linear_init(next(keys), w, w), linear_init(next(keys), w, w))
             for _ in range(spec["blocks"])],
            linear_init(next(keys), w, spec["outputs"]),
        )
        single("resmlp", spec, params, resmlp_forward,
               common.linear_step_flops(common.resmlp_linears(), common.BATCH))

    batched = jax.jit(jax.vmap(train, in_axes=(0, None, None)))
    for moons in (False, True):
        name = "tiny-moons" if moons else "tiny"
        # `sweep` is initscope's tiny workloads through its sweep command; JAX's side is the same
        # vmap, reported under both names.
        sweep_name = "sweep-moons" if moons else "sweep"
        names = [n for n, w in ((name, name), (sweep_name, "sweep")) if a.workload in (w, "all")]
        if not names:
            continue
        x, y = common.moons() if moons else common.xor()
        keys = jax.random.split(jax.random.PRNGKey(0), common.TINY_RUNS)
        t = time.perf_counter()
        compiled = batched.lower(keys, x, y).compile()
        compile_secs = time.perf_counter() - t
        compiled(keys, x, y).block_until_ready()  # warm-up
        t = time.perf_counter()
        compiled(keys, x, y).block_until_ready()
        secs = time.perf_counter() - t
        flops = common.step_flops(common.TINY_DIMS, x.shape[0]) * common.TINY_STEPS * common.TINY_RUNS
        for n in names:
            common.report(n, "runs/s", common.TINY_RUNS / secs, flops / secs / 1e9, a.threads,
                          secs, "jax-vmap", compile_seconds=compile_secs)


if __name__ == "__main__":
    main()
