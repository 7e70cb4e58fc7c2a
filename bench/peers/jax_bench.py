"""JAX peer of `initscope bench` for the sweep workloads: vmap over runs + jit, one JSON object
per line. Compile time is reported apart (`compile_seconds`) and not counted in runs/s.

    python3 bench/peers/jax_bench.py [--workload tiny|tiny-moons|all] [--threads N]

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

    batched = jax.jit(jax.vmap(train, in_axes=(0, None, None)))
    for moons in (False, True):
        name = "tiny-moons" if moons else "tiny"
        if a.workload not in (name, "all"):
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
        common.report(name, "runs/s", common.TINY_RUNS / secs, flops / secs / 1e9, a.threads, secs,
                      "jax-vmap", compile_seconds=compile_secs)


if __name__ == "__main__":
    main()
